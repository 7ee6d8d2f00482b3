#!/usr/bin/env bash
# npm run sandbox: the main job on a fresh machine (installs what it needs first).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
npm run build --silent
exec npx tsx scripts/sandbox.ts "$@"
