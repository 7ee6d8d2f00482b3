#!/usr/bin/env bash
# npm test: every test on a fresh machine. Installs what it needs (scripts/ensure-deps.sh),
# typechecks, checks generated files, builds dist/ (the e2e suite runs the built operator), then
# runs vitest's unit, integration and e2e projects. Extra arguments go to vitest (e.g. --project unit).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
npx tsc -p tsconfig.json --noEmit
npx tsx scripts/generate.ts --check
npm run build --silent
mkdir -p .cache
npx vitest run --reporter=default --reporter=json --outputFile.json=.cache/vitest-results.json "$@"
