#!/usr/bin/env bash
# Build the Go-based real servers and tools from the Go module proxy, cached outside the clone:
#   kube-apiserver, kube-controller-manager, kubectl,
#   kubelet, kube-scheduler (the test ground's node)  (k8s.io/kubernetes, pinned)
#   etcd                                              (go.etcd.io/etcd/server/v3, pinned)
#   helm                                              (helm.sh/helm/v3, pinned)
#   ferretdb (MongoDB wire protocol on SQLite)        (github.com/FerretDB/FerretDB, pinned)
# and, only when asked with --keda (the KEDA comparison benchmark; `make test` never pays for it):
#   keda-operator and KEDA's CRDs                     (github.com/kedacore/keda/v2, pinned)
# A cold build takes 10-25 minutes on 2 cores (KEDA: ~7 more); a warm run only checks the stamps.
# Usage: scripts/build-go-tools.sh [--keda]   -> prints the bin directory on its last line
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

bin="$AUTOZERO_CACHE/bin"
src="$AUTOZERO_CACHE/src"
mkdir -p "$bin" "$src"
export GOFLAGS="${GOFLAGS:--buildvcs=false}"

log() { printf '[build %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# Print a heartbeat while a long command runs, so a cold build never looks hung.
with_heartbeat() {
  local what="$1"
  shift
  local start=$SECONDS
  ("$@") &
  local pid=$! sleeper rc=0
  while kill -0 "$pid" 2>/dev/null; do
    sleep 30 &
    sleeper=$!
    # Whichever ends first: a build that is done does not sit out the rest of the 30 s.
    wait -n "$pid" "$sleeper" || true
    kill "$sleeper" 2>/dev/null || true
    if kill -0 "$pid" 2>/dev/null; then
      log "$what: still building ($((SECONDS - start))s)"
    fi
  done
  wait "$pid" || rc=$?
  if ((rc != 0)); then
    log "$what: build failed (exit $rc) after $((SECONDS - start))s"
    exit "$rc"
  fi
  log "$what: done in $((SECONDS - start))s"
}

# `go mod download -json` reports a failure inside its JSON on stdout: show it, or the step
# would end with no word of why.
go_download() {
  local module="$1" out="$2"
  go mod download -json "$module" >"$out" || {
    cat "$out" >&2
    log "go mod download $module failed"
    exit 1
  }
}

with_keda=0
for arg in "$@"; do
  case "$arg" in
  --keda) with_keda=1 ;;
  *)
    log "unknown argument: $arg (usage: $0 [--keda])"
    exit 2
    ;;
  esac
done

# Only one build at a time (the test suite and the demo may both ask).
exec 9>"$AUTOZERO_CACHE/build.lock"
if ! flock -n 9; then
  log "another build holds $AUTOZERO_CACHE/build.lock: waiting for it to finish"
  flock 9
fi

# The Kubernetes binaries, "name:main file in cmd/name". One wrapper module builds them all; a cache
# that lacks some (an older one, from before the node) builds only those.
KUBE_COMMANDS=(
  kube-apiserver:apiserver.go kube-controller-manager:controller-manager.go kubectl:kubectl.go
  kubelet:kubelet.go kube-scheduler:scheduler.go
)

build_kubernetes() {
  local out="$bin/kubernetes-$KUBERNETES_VERSION" missing=() cmd
  for cmd in "${KUBE_COMMANDS[@]}"; do
    [[ -x "$out/${cmd%%:*}" ]] || missing+=("${cmd%%:*}")
  done
  ((${#missing[@]} > 0)) || return 0
  if ((${#missing[@]} == ${#KUBE_COMMANDS[@]})); then
    log "kubernetes $KUBERNETES_VERSION: cold build of ${missing[*]} (10-25 min on 2 cores)"
  else
    log "kubernetes $KUBERNETES_VERSION: building ${missing[*]} (~1 min with a warm Go build cache)"
  fi
  local mod="$src/kubernetes-$KUBERNETES_VERSION"
  rm -rf "$mod" && mkdir -p "$mod"
  go_download "k8s.io/kubernetes@$KUBERNETES_VERSION" "$mod/download.json"
  local kdir
  kdir="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["Dir"])' "$mod/download.json")"
  # Staging modules are published as v0.<minor>.<patch> for release v1.<minor>.<patch>.
  local staging="v0.${KUBERNETES_VERSION#v1.}"
  {
    echo "module autozero.local/kubernetes"
    echo
    grep -E '^go [0-9]' "$kdir/go.mod"
    grep -E '^godebug ' "$kdir/go.mod" || true
    echo
    echo "require k8s.io/kubernetes $KUBERNETES_VERSION"
    echo
    echo "replace ("
    # Generated from the release's own go.mod: every "k8s.io/x => ./staging/src/k8s.io/x".
    sed -nE 's#^[[:space:]]*(k8s\.io/[^ ]+) => \./staging/src/k8s\.io/.*#\t\1 => \1 '"$staging"'#p' "$kdir/go.mod"
    echo ")"
  } >"$mod/go.mod"
  # The upstream main packages, unchanged: each calls the app's New...Command().
  for cmd in "${KUBE_COMMANDS[@]}"; do
    mkdir -p "$mod/${cmd%%:*}"
    cp "$kdir/cmd/${cmd%%:*}/${cmd#*:}" "$mod/${cmd%%:*}/main.go"
    chmod u+w "$mod/${cmd%%:*}/main.go"
  done
  (cd "$mod" && go mod tidy >"$mod/tidy.log" 2>&1) || {
    tail -30 "$mod/tidy.log" >&2
    exit 1
  }
  local minor="${KUBERNETES_VERSION#v1.}"
  minor="${minor%%.*}"
  local ld="-s -w"
  local pkg
  for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    ld+=" -X '$pkg.gitVersion=$KUBERNETES_VERSION' -X '$pkg.gitMajor=1' -X '$pkg.gitMinor=$minor'"
    ld+=" -X '$pkg.gitTreeState=clean' -X '$pkg.buildDate=1970-01-01T00:00:00Z'"
  done
  rm -rf "$out.tmp" && mkdir -p "$out.tmp"
  with_heartbeat "kubernetes $KUBERNETES_VERSION" \
    bash -c "cd '$mod' && go build -trimpath -ldflags \"$ld\" -o '$out.tmp/' ${missing[*]/#/./}"
  mkdir -p "$out"
  for cmd in "${missing[@]}"; do
    mv "$out.tmp/$cmd" "$out/$cmd"
  done
  rm -rf "$out.tmp"
}

build_etcd() {
  local out="$bin/etcd-$ETCD_VERSION"
  [[ -x "$out/etcd" ]] && return
  log "etcd $ETCD_VERSION: cold build (2-5 min)"
  local mod="$src/etcd-$ETCD_VERSION"
  rm -rf "$mod" && mkdir -p "$mod"
  cat >"$mod/go.mod" <<EOF
module autozero.local/etcd

go 1.26.0

require (
	go.etcd.io/etcd/api/v3 $ETCD_VERSION
	go.etcd.io/etcd/client/pkg/v3 $ETCD_VERSION
	go.etcd.io/etcd/client/v3 $ETCD_VERSION
	go.etcd.io/etcd/pkg/v3 $ETCD_VERSION
	go.etcd.io/etcd/server/v3 $ETCD_VERSION
)
EOF
  cat >"$mod/main.go" <<'EOF'
// Command etcd is the upstream etcd server, built from its Go module.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
EOF
  (cd "$mod" && go mod tidy >"$mod/tidy.log" 2>&1) || {
    tail -30 "$mod/tidy.log" >&2
    exit 1
  }
  mkdir -p "$out.tmp"
  with_heartbeat "etcd $ETCD_VERSION" \
    bash -c "cd '$mod' && go build -trimpath -ldflags '-s -w' -o '$out.tmp/etcd' ."
  rm -rf "$out" && mv "$out.tmp" "$out"
}

build_helm() {
  local out="$bin/helm-$HELM_VERSION"
  [[ -x "$out/helm" ]] && return
  log "helm $HELM_VERSION: cold build (2-5 min)"
  mkdir -p "$out.tmp"
  with_heartbeat "helm $HELM_VERSION" \
    env GOBIN="$out.tmp" go install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  rm -rf "$out" && mv "$out.tmp" "$out"
}

build_ferretdb() {
  local out="$bin/ferretdb-$FERRETDB_VERSION"
  [[ -x "$out/ferretdb" ]] && return
  log "ferretdb $FERRETDB_VERSION: cold build (1-3 min)"
  # A wrapper module with a writable copy of the pinned release: `go install pkg@version` would
  # ask the proxy for the module's version list (not served for this module), and the release
  # expects build/version/version.txt, which its published module does not contain.
  local mod="$src/ferretdb-$FERRETDB_VERSION"
  rm -rf "$mod" && mkdir -p "$mod" "$out.tmp"
  go_download "github.com/FerretDB/FerretDB@$FERRETDB_VERSION" "$mod/download.json"
  local fdir
  fdir="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["Dir"])' "$mod/download.json")"
  cp -r "$fdir" "$mod/ferretdb" && chmod -R u+w "$mod/ferretdb"
  echo "$FERRETDB_VERSION" >"$mod/ferretdb/build/version/version.txt"
  printf 'module autozero.local/ferretdb\n\ngo 1.26.0\n\nrequire github.com/FerretDB/FerretDB %s\n\nreplace github.com/FerretDB/FerretDB => ./ferretdb\n' \
    "$FERRETDB_VERSION" >"$mod/go.mod"
  with_heartbeat "ferretdb $FERRETDB_VERSION" \
    bash -c "cd '$mod' && GOFLAGS=-mod=mod go build -trimpath -ldflags '-s -w' -o '$out.tmp/ferretdb' github.com/FerretDB/FerretDB/cmd/ferretdb"
  rm -rf "$out" && mv "$out.tmp" "$out"
}

build_keda() {
  local out="$bin/keda-$KEDA_VERSION"
  [[ -x "$out/keda-operator" ]] && return
  log "keda $KEDA_VERSION: cold build of the operator (~7 min on 2 cores)"
  # A wrapper module, as for kube-apiserver: KEDA's go.mod has `replace` and `exclude` lines, which
  # `go install pkg@version` refuses. The wrapper carries the same lines, read from that go.mod.
  local mod="$src/keda-$KEDA_VERSION"
  rm -rf "$mod" && mkdir -p "$mod/operator"
  go_download "github.com/kedacore/keda/v2@$KEDA_VERSION" "$mod/download.json"
  local kdir
  kdir="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["Dir"])' "$mod/download.json")"
  printf 'module autozero.local/keda\n\ngo 1.26.0\n\nrequire github.com/kedacore/keda/v2 %s\n' \
    "$KEDA_VERSION" >"$mod/go.mod"
  local edits
  edits="$(go mod edit -json "$kdir/go.mod" | python3 -c '
import json, sys
m = json.load(sys.stdin)
def at(v):
    return v["Path"] + ("@" + v["Version"] if v.get("Version") else "")
for r in m.get("Replace") or []:
    print("-replace=" + at(r["Old"]) + "=" + at(r["New"]))
for e in m.get("Exclude") or []:
    print("-exclude=" + at(e))
')"
  if [[ -n "$edits" ]]; then
    # shellcheck disable=SC2086  # one go mod edit flag per line, none with spaces
    (cd "$mod" && go mod edit $edits)
  fi
  # The upstream main package, unchanged.
  cp "$kdir/cmd/operator/main.go" "$mod/operator/main.go"
  chmod u+w "$mod/operator/main.go"
  (cd "$mod" && go mod tidy >"$mod/tidy.log" 2>&1) || {
    tail -30 "$mod/tidy.log" >&2
    exit 1
  }
  local ld="-s -w -X github.com/kedacore/keda/v2/version.Version=${KEDA_VERSION#v}"
  rm -rf "$out.tmp" && mkdir -p "$out.tmp/crds"
  with_heartbeat "keda $KEDA_VERSION" \
    bash -c "cd '$mod' && go build -trimpath -ldflags '$ld' -o '$out.tmp/keda-operator' ./operator"
  cp "$kdir"/config/crd/bases/*.yaml "$out.tmp/crds/"
  chmod u+w "$out.tmp"/crds/*.yaml
  rm -rf "$out" && mv "$out.tmp" "$out"
}

start=$SECONDS
build_etcd
build_helm
build_ferretdb
build_kubernetes
((with_keda)) && build_keda
log "go tools ready in $((SECONDS - start))s"
echo "$bin"
