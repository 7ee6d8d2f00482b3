#!/usr/bin/env bash
# Installs what the tests, benchmarks and the sandbox need on a fresh machine; quick when all is there.
#   Debian: etcd-server (control plane), postgresql-15 (instances). npm: the locked dependencies.
#   Go → kube-apiserver, kube-controller-manager, kube-scheduler (cached outside the work tree).
set -euo pipefail
cd "$(dirname "$0")/.."
need_apt=()
command -v etcd >/dev/null 2>&1 || [ -x /usr/bin/etcd ] || need_apt+=(etcd-server)
# PostgreSQL with the full tool set (pg_basebackup, pg_rewind, pgbench) for the agent and the process kubelet.
[ -x /usr/lib/postgresql/15/bin/pg_rewind ] || need_apt+=(postgresql-15)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "ensure-deps: apt-get install ${need_apt[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq "${need_apt[@]}" >&2
fi
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "ensure-deps: npm ci" >&2
  npm ci --no-audit --no-fund >&2
fi
bash e2e/controlplane/build-k8s.sh >/dev/null
