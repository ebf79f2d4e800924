#!/usr/bin/env bash
# Everything a fresh machine needs before the tests or the demo: the Python environment, the Debian
# servers, and the Go-built control plane and tools. Each step prints how long it took.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
step() {
  local name="$1"
  shift
  local start=$SECONDS
  "$@"
  printf '[setup] %-28s %4ss\n' "$name" "$((SECONDS - start))"
}
step "python venv + packages" bash "$here/setup-python.sh"
step "debian packages" bash "$here/install-debian-packages.sh"
step "go-built servers and tools" bash "$here/build-go-tools.sh" >/dev/null
