#!/usr/bin/env bash
# Install the real servers that come from Debian's packages: Redis, RabbitMQ (with its management
# plugin, which ships in the package) and Prometheus. Idempotent: a machine that has them does nothing.
# The packages' own system services are not started: the tests start their own instances on loopback.
set -euo pipefail

log() { printf '[install %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

need=()
for pair in redis-server:redis-server rabbitmq-server:rabbitmq-server prometheus:prometheus; do
  command -v "${pair#*:}" >/dev/null 2>&1 || [[ -x "/usr/lib/rabbitmq/bin/${pair#*:}" ]] || need+=("${pair%%:*}")
done
if [[ ${#need[@]} -eq 0 ]]; then
  log "debian packages present"
  exit 0
fi

sudo=""
[[ $(id -u) -eq 0 ]] || sudo="sudo"
start=$SECONDS
log "installing ${need[*]}"
# Keep the packages' init scripts from starting system-wide daemons during the install.
guard=""
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
  guard=/usr/sbin/policy-rc.d
  printf '#!/bin/sh\nexit 101\n' | $sudo tee "$guard" >/dev/null
  $sudo chmod +x "$guard"
fi
cleanup() { [[ -n "$guard" ]] && $sudo rm -f "$guard"; }
trap cleanup EXIT
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# Stop anything the packages started anyway; our servers use their own ports and data dirs.
for svc in redis-server rabbitmq-server prometheus; do
  $sudo service "$svc" stop >/dev/null 2>&1 || true
done
log "installed in $((SECONDS - start))s"
