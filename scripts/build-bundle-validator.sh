#!/usr/bin/env bash
# Builds the OLM bundle checker (test/bundle/validator: the validators of
# github.com/operator-framework/api that `operator-sdk bundle validate --select-optional
# suite=operatorframework` runs) into the test cache, once per version of its source:
#   ${PGPILOT_CACHE:-~/.cache/pgpilot}/bundle-validator-<api version>-<source hash>/validate-bundle
# Idempotent and quick when built; needs `go` and, on the first build, the Go module proxy only
# (go.mod and go.sum pin every module). Prints the binary's path on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=test/bundle/validator
CACHE="${PGPILOT_CACHE:-$HOME/.cache/pgpilot}"
api_version=$(awk '$1 == "github.com/operator-framework/api" {print $2; exit}' "$SRC/go.mod")
[ -n "$api_version" ] || { echo "build-bundle-validator: no github.com/operator-framework/api in $SRC/go.mod" >&2; exit 1; }
hash=$(cat "$SRC/go.mod" "$SRC/go.sum" "$SRC/main.go" | sha256sum | cut -c1-12)
OUT="$CACHE/bundle-validator-$api_version-$hash"
BIN="$OUT/validate-bundle"
if [ -x "$BIN" ]; then echo "$BIN"; exit 0; fi

command -v go >/dev/null || { echo "build-bundle-validator: go is required to build the bundle checker" >&2; exit 1; }
mkdir -p "$OUT"
echo "build-bundle-validator: building $SRC (operator-framework/api $api_version)" >&2
start=$(date +%s)
# -mod=readonly: go.sum is the lock; a concurrent builder writes its own temporary file.
tmp="$BIN.tmp.$$"
(cd "$SRC" && GOFLAGS="-mod=readonly -buildvcs=false" CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$tmp" .) >&2
mv "$tmp" "$BIN"
echo "build-bundle-validator: built in $(( $(date +%s) - start ))s" >&2
echo "$BIN"
