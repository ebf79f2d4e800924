#!/usr/bin/env bash
# Everything a fresh machine needs before the tests or the demo: the Python environment, the Debian
# servers and the node's packages, the Go-built control plane and tools, and the node's images. Each step prints how long it took; a step that
# fails names itself and shows the tail of its output, so `make` never ends on a bare "Error 1".
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
logs="$AUTOZERO_CACHE/setup"
mkdir -p "$logs"

# Run one step with its whole output in $logs/<log>.log. Its stderr (progress lines, such as the
# Go build's heartbeat) also streams to the terminal; its stdout goes to the log only.
step() {
  local name="$1" log="$logs/$2.log"
  shift 2
  local start=$SECONDS rc=0
  : >"$log"
  "$@" 2>&1 >>"$log" | tee -a "$log" >&2 || rc=$?
  if ((rc != 0)); then
    {
      printf '[setup] %s: failed (exit %s) after %ss; the last 30 lines of its output:\n' \
        "$name" "$rc" "$((SECONDS - start))"
      tail -n 30 "$log" | sed 's/^/  | /'
      printf '[setup] its whole output: %s\n' "$log"
    } >&2
    exit "$rc"
  fi
  printf '[setup] %-28s %4ss\n' "$name" "$((SECONDS - start))"
}
step "python venv + packages" python bash "$here/setup-python.sh"
step "debian packages" debian bash "$here/install-debian-packages.sh"
step "go-built servers and tools" go bash "$here/build-go-tools.sh"
# The operator's image from the Dockerfile, the worker's, a Debian Python base and the pause image,
# cached by the hash of their inputs (scripts/testground/images.py).
step "node images" images env PYTHONPATH="$here" "$here/../.venv/bin/python" -m testground.images
