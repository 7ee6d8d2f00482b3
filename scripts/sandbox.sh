#!/usr/bin/env bash
# npm run sandbox: the main job on a fresh machine (installs what it needs first).
set -euo pipefail
cd "$(dirname "$0")/.."
# Everything below runs on the project's Node (24, cached by ensure-deps), not the machine's own.
node_bin=$(bash scripts/ensure-deps.sh | tail -n1)
export PATH="$node_bin:$PATH"
echo "sandbox: $(command -v node) $(node --version)" >&2
npm run build --silent
exec npx tsx scripts/sandbox.ts "$@"
