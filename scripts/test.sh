#!/usr/bin/env bash
# npm test: every test on a fresh machine, on Node 24. Installs what it needs (scripts/ensure-deps.sh),
# typechecks, lints (eslint.config.js), checks generated files, builds dist/ (the e2e suite runs the built operator), then
# runs vitest's unit, integration and e2e projects. Extra arguments go to vitest (e.g. --project unit).
set -euo pipefail
cd "$(dirname "$0")/.."
# Everything below runs on the project's Node (24, cached by ensure-deps), not the machine's own.
node_bin=$(bash scripts/ensure-deps.sh | tail -n1)
export PATH="$node_bin:$PATH"
echo "test: $(command -v node) $(node --version)" >&2
# `tsc` must be TypeScript 7 (@typescript/native), not the TypeScript 6 that typescript-eslint
# needs beside it (README, "Runtime and dependencies"): its `tsc` could take the binary's place.
tsc_version=$(npx tsc --version)
[[ "$tsc_version" == "Version 7."* ]] || { echo "test: npx tsc is $tsc_version, not TypeScript 7: see README" >&2; exit 1; }
npx tsc -p tsconfig.json --noEmit
npm run lint --silent
npx tsx scripts/generate.ts --check
npm run build --silent
mkdir -p .cache
npx vitest run --reporter=default --reporter=json --outputFile.json=.cache/vitest-results.json "$@"
