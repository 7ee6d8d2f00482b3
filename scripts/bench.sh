#!/usr/bin/env bash
# npm run bench -- <suite>: run one benchmark suite (no suite: all of them, one after another).
# Each suite prints a table and, as its last line, {"suite": ..., "metrics": {...}}.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
suites=("$@")
[ ${#suites[@]} -eq 0 ] && suites=($(ls bench/*.ts | xargs -n1 basename | sed 's/\.ts$//' | grep -v '^report$'))
for s in "${suites[@]}"; do
  [ -f "bench/$s.ts" ] || { echo "unknown benchmark suite '$s'; suites: $(ls bench/*.ts | xargs -n1 basename | sed 's/\.ts$//' | grep -v '^report$' | tr '\n' ' ')" >&2; exit 2; }
  npx tsx "bench/$s.ts"
done
