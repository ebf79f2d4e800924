#!/usr/bin/env bash
# Create .venv in the clone and install autozero (editable) with its dev tools.
# Re-installs only when a pyproject.toml changed since the last install.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
python="${PYTHON:-python3}"
stamp="$venv/.pyproject.sha256"
shopt -s nullglob
want="$(cat "$root/pyproject.toml" "$root"/emulators/*/pyproject.toml | sha256sum | cut -d' ' -f1)"
if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  exit 0
fi
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
# pip's build chatter goes to a log, shown only if the install fails.
if ! {
  "$python" -m venv "$venv" &&
    "$venv/bin/python" -m pip install -q --upgrade pip &&
    "$venv/bin/python" -m pip install -q -e "$root[dev]" &&
    # The GCE emulator is its own package, installed beside autozero.
    "$venv/bin/python" -m pip install -q -e "$root/emulators/gce"
} >"$log" 2>&1; then
  echo "[python] setting up $venv failed; the last 40 lines of its output:" >&2
  tail -40 "$log" >&2
  exit 1
fi
echo "$want" >"$stamp"
