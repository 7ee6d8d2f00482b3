#!/usr/bin/env bash
# Builds the Kubernetes control-plane binaries the e2e suite runs (kube-apiserver,
# kube-controller-manager, kube-scheduler) from the official Go modules, into a cache
# outside the work tree so later runs (and CI on the same machine) reuse them.
# Prints the directory holding the binaries on its last line.
#   KUBEBUILDER_ASSETS set and holding kube-apiserver → that directory is used as is.
set -euo pipefail
K8S_VERSION="${PGPILOT_K8S_VERSION:-v1.36.3}"
CACHE="${PGPILOT_CACHE:-$HOME/.cache/pgpilot}"
OUT="$CACHE/k8s-$K8S_VERSION"
BINS=(kube-apiserver kube-controller-manager kube-scheduler)

if [ -n "${KUBEBUILDER_ASSETS:-}" ] && [ -x "$KUBEBUILDER_ASSETS/kube-apiserver" ]; then
  echo "$KUBEBUILDER_ASSETS"; exit 0
fi
# version.gitMajor/gitMinor are the bare numbers ("1", "36"), as in official builds: /version
# reports them and clients compare them.
k8s_major=${K8S_VERSION#v}; k8s_major=${k8s_major%%.*}
k8s_minor=${K8S_VERSION#v*.}; k8s_minor=${k8s_minor%%.*}
LDFLAGS="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=$k8s_major -X k8s.io/component-base/version.gitMinor=$k8s_minor"
# The stamp records how the binaries were built, so a change of flags rebuilds them (compiled
# packages stay in Go's build cache: a rebuild is mostly linking).
STAMP="$OUT/bin/.build-stamp"
have_all() {
  for b in "${BINS[@]}"; do [ -x "$OUT/bin/$b" ] || return 1; done
  [ "$(cat "$STAMP" 2>/dev/null)" = "$LDFLAGS" ]
}
if have_all; then echo "$OUT/bin"; exit 0; fi

command -v go >/dev/null || { echo "build-k8s: go is required to build the control plane" >&2; exit 1; }
mkdir -p "$OUT/src" "$OUT/bin"
cd "$OUT/src"
staging_version="v0.${K8S_VERSION#v1.}"
echo "build-k8s: resolving k8s.io/kubernetes@$K8S_VERSION (staging modules at $staging_version)" >&2
modjson=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION")
gomod=$(printf '%s' "$modjson" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
{
  echo "module pgpilot.local/k8sbuild"
  echo
  grep -E '^go [0-9]' "$gomod"
  echo
  echo "require k8s.io/kubernetes $K8S_VERSION"
  echo
  # Every staging module k8s.io/kubernetes replaces with ./staging/... is published at v0.X.Y.
  grep -oE '^\s*k8s\.io/[a-z0-9-]+ => \./staging/src/k8s\.io/[a-z0-9-]+' "$gomod" | awk -v v="$staging_version" '{print "replace " $1 " => " $1 " " v}'
} > go.mod
cat > tools.go <<'GO'
//go:build tools

package k8sbuild

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
GO
echo "build-k8s: go mod tidy" >&2
GOFLAGS=-mod=mod go mod tidy -e >&2 2>&1 || true
for b in "${BINS[@]}"; do
  echo "build-k8s: building $b" >&2
  start=$(date +%s)
  GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -ldflags "$LDFLAGS" -o "$OUT/bin/$b.tmp" "k8s.io/kubernetes/cmd/$b" >&2
  mv "$OUT/bin/$b.tmp" "$OUT/bin/$b"
  echo "build-k8s: $b built in $(( $(date +%s) - start ))s" >&2
done
printf '%s' "$LDFLAGS" > "$STAMP"
echo "$OUT/bin"
