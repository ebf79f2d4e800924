#!/usr/bin/env bash
# Create .venv in the clone and install autozero (editable) with its dev tools, every dependency
# at the version pinned in requirements-dev.lock (which includes requirements.lock, the image's),
# each file checked against its hash. Re-installs only when a pyproject.toml or a lock changed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
python="${PYTHON:-python3}"
stamp="$venv/.pyproject.sha256"
shopt -s nullglob
want="$(cat "$root/pyproject.toml" "$root"/emulators/*/pyproject.toml "$root"/requirements*.lock |
  sha256sum | cut -d' ' -f1)"
if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  exit 0
fi
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
# pip's build chatter goes to a log, shown only if the install fails.
if ! {
  "$python" -m venv "$venv" &&
    "$venv/bin/python" -m pip install -q --upgrade pip &&
    "$venv/bin/python" -m pip install -q --require-hashes -r "$root/requirements-dev.lock" &&
    # autozero and the GCE emulator (its own package), editable; their dependencies came from the
    # lock, and so did the setuptools that builds them.
    "$venv/bin/python" -m pip install -q --no-deps --no-build-isolation \
      -e "$root" -e "$root/emulators/gce" &&
    "$venv/bin/python" -m pip check
} >"$log" 2>&1; then
  echo "[python] setting up $venv failed; the last 40 lines of its output:" >&2
  tail -40 "$log" >&2
  exit 1
fi
echo "$want" >"$stamp"
