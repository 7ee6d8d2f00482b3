#!/usr/bin/env bash
# npm run bench -- <suite>: run one benchmark suite (no suite: all of them, one after another).
# Each suite prints a table and, as its last line, {"suite": ..., "metrics": {...}}.
set -euo pipefail
cd "$(dirname "$0")/.."
# Everything below runs on the project's Node (24, cached by ensure-deps), not the machine's own.
node_bin=$(bash scripts/ensure-deps.sh | tail -n1)
export PATH="$node_bin:$PATH"
echo "bench: $(command -v node) $(node --version)" >&2
suites=("$@")
[ ${#suites[@]} -eq 0 ] && suites=($(ls bench/*.ts | xargs -n1 basename | sed 's/\.ts$//' | grep -v '^report$'))
# The backup suite compares with Debian's pgBackRest.
if [[ " ${suites[*]} " == *" backup "* ]] && ! command -v pgbackrest >/dev/null 2>&1; then
  echo "bench: apt-get install pgbackrest" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq pgbackrest >&2
fi
# The monitoring suite compares with Debian's prometheus-postgres-exporter.
if [[ " ${suites[*]} " == *" monitoring "* ]] && [ ! -x /usr/bin/prometheus-postgres-exporter ]; then
  echo "bench: apt-get install prometheus-postgres-exporter" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq prometheus-postgres-exporter >&2
fi
for s in "${suites[@]}"; do
  [ -f "bench/$s.ts" ] || { echo "unknown benchmark suite '$s'; suites: $(ls bench/*.ts | xargs -n1 basename | sed 's/\.ts$//' | grep -v '^report$' | tr '\n' ' ')" >&2; exit 2; }
  npx tsx "bench/$s.ts"
done
