#!/usr/bin/env bash
# Install the real servers that come from Debian's packages: Redis, RabbitMQ (with its management
# plugin, which ships in the package) and Prometheus; and the test ground's node: containerd, runc,
# the CNI plugins and iptables (the kubelet's), buildah and debootstrap (its images), gcc (the
# pause binary). Idempotent: a machine that has them does nothing. The packages' own system
# services are not started: the tests start their own instances on loopback.
# AUTOZERO_POLICY_RC_D, AUTOZERO_RABBITMQ_BIN, AUTOZERO_CNI_BIN and AUTOZERO_SBIN move the system
# paths it looks at, so that its install path can be tested without touching the machine.
set -euo pipefail

log() { printf '[install %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

policy_rc_d="${AUTOZERO_POLICY_RC_D:-/usr/sbin/policy-rc.d}"
# rabbitmq-server is in /usr/sbin, not on a normal user's PATH; the test ground runs it from here.
rabbitmq_bin="${AUTOZERO_RABBITMQ_BIN:-/usr/lib/rabbitmq/bin}"
cni_bin="${AUTOZERO_CNI_BIN:-/usr/lib/cni}"
# iptables and debootstrap are in /usr/sbin, not on a normal user's PATH either.
sbin="${AUTOZERO_SBIN:-/usr/sbin}"
# The packages that install a system service (stopped after the install).
services=(redis-server rabbitmq-server prometheus containerd)

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v rabbitmq-server >/dev/null 2>&1 || [[ -x "$rabbitmq_bin/rabbitmq-server" ]] ||
  need+=(rabbitmq-server)
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
# The node (containerd brings ctr).
command -v containerd >/dev/null 2>&1 || need+=(containerd)
command -v runc >/dev/null 2>&1 || need+=(runc)
[[ -x "$cni_bin/loopback" ]] || need+=(containernetworking-plugins)
command -v iptables >/dev/null 2>&1 || [[ -x "$sbin/iptables" ]] || need+=(iptables)
command -v buildah >/dev/null 2>&1 || need+=(buildah)
command -v debootstrap >/dev/null 2>&1 || [[ -x "$sbin/debootstrap" ]] || need+=(debootstrap)
command -v gcc >/dev/null 2>&1 || need+=(gcc libc6-dev)
if [[ ${#need[@]} -eq 0 ]]; then
  log "debian packages present"
  exit 0
fi

sudo=""
[[ $(id -u) -eq 0 ]] || sudo="sudo"
start=$SECONDS
log "installing ${need[*]}"

# The guard policy-rc.d this script created, if any. The trap keeps the script's own status: under
# set -e a trap that ends on a failed test (no guard to remove) would turn success into exit 1.
guard=""
cleanup() {
  local rc=$?
  if [[ -n "$guard" ]] && ! $sudo rm -f "$guard"; then
    log "could not remove $guard, which keeps every service on this machine from starting"
    ((rc != 0)) || rc=1
  fi
  exit "$rc"
}
trap cleanup EXIT
# Keep the packages' init scripts from starting system-wide daemons during the install. A machine
# that has its own policy-rc.d (container images ship one) keeps it, untouched.
if [[ ! -e "$policy_rc_d" ]]; then
  guard="$policy_rc_d"
  printf '#!/bin/sh\nexit 101\n' | $sudo tee "$guard" >/dev/null
  $sudo chmod +x "$guard"
fi
# Passed through env: sudo resets the environment, so an exported variable would not reach apt-get.
apt_get() { $sudo env DEBIAN_FRONTEND=noninteractive apt-get "$@"; }
apt_get update -qq
apt_get install -y -qq --no-install-recommends "${need[@]}"
# Stop anything the new packages started anyway; our servers use their own ports and data dirs. A
# server that was already installed is not ours to stop.
for svc in "${need[@]}"; do
  [[ " ${services[*]} " == *" $svc "* ]] || continue
  $sudo service "$svc" stop >/dev/null 2>&1 || true
done
log "installed in $((SECONDS - start))s"
