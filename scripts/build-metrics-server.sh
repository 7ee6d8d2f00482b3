#!/usr/bin/env bash
# Builds metrics-server (cmd/metrics-server of the Go module sigs.k8s.io/metrics-server) into the
# test cache, once per version, the way build-k8s.sh builds the control plane:
#   ${PGPILOT_CACHE:-~/.cache/pgpilot}/metrics-server-<version>/metrics-server
# The e2e suite (e2e/harness/metrics-server.ts) and the sandbox run it against the process
# kubelet's /metrics/resource and register it as the APIService v1beta1.metrics.k8s.io (HPA,
# `kubectl top`). Idempotent and quick when built; needs `go` and, on the first build, the Go
# module proxy only (the module's own go.mod/go.sum pin every dependency). Prints the binary's
# path on its last line.
set -euo pipefail
VERSION="${PGPILOT_METRICS_SERVER_VERSION:-v0.8.0}"
CACHE="${PGPILOT_CACHE:-$HOME/.cache/pgpilot}"
OUT="$CACHE/metrics-server-$VERSION"
BIN="$OUT/metrics-server"
# As the project's Makefile stamps it (client-go's version package), so --version tells the truth.
LDFLAGS="-s -w -X k8s.io/client-go/pkg/version.gitVersion=$VERSION -X k8s.io/client-go/pkg/version.gitCommit=go-module-proxy"
STAMP="$OUT/.build-stamp"
if [ -x "$BIN" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$LDFLAGS" ]; then echo "$BIN"; exit 0; fi

command -v go >/dev/null || { echo "build-metrics-server: go is required to build metrics-server" >&2; exit 1; }
mkdir -p "$OUT"
echo "build-metrics-server: resolving sigs.k8s.io/metrics-server@$VERSION" >&2
modjson=$(go mod download -json "sigs.k8s.io/metrics-server@$VERSION")
dir=$(printf '%s' "$modjson" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
echo "build-metrics-server: building cmd/metrics-server (a few minutes the first time)" >&2
start=$(date +%s)
tmp="$BIN.tmp.$$"
# Built inside the downloaded module (read-only; nothing is written there): its go.mod is the main
# module, so its go.sum is the lock and no replace or version drift can creep in.
(cd "$dir" && GOFLAGS="-mod=readonly -buildvcs=false" CGO_ENABLED=0 go build -trimpath -ldflags "$LDFLAGS" -o "$tmp" ./cmd/metrics-server) >&2
mv "$tmp" "$BIN"
printf '%s' "$LDFLAGS" > "$STAMP"
echo "build-metrics-server: built in $(( $(date +%s) - start ))s" >&2
echo "$BIN"
