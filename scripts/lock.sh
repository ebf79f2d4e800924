#!/usr/bin/env bash
# Make requirements.lock and requirements-dev.lock again from pyproject.toml's ranges, with uv
# (installed in .venv by `make setup`). Run it after changing a dependency; pass --upgrade to move
# every pin to the newest version the ranges allow. A test fails while the locks are stale.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
PYTHONPATH=scripts exec .venv/bin/python -m testground.lockfile "$@"
