// npm run sandbox: a local pgpilot playground. Starts a real Kubernetes control plane on
// loopback, installs the operator's Helm chart, runs the operator with the chart's
// ServiceAccount and RBAC, applies examples/cluster.yaml, and shows the cluster's progress until
// Ctrl-C, which tears everything down.
//
// Until the process kubelet arrives (issue 3) nothing runs pods here: the operator's own
// Deployment pod and the PostgreSQL pods stay Pending, and the operator runs as a local process.
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { startControlPlane } from '../e2e/harness/control-plane.js';
import { E2E_KUBECONFIG_ENV, waitFor } from '../e2e/harness/env.js';
import { kubectl, kubectlOk } from '../e2e/harness/kubectl.js';
import { REPO_ROOT, startOperator } from '../e2e/harness/operator.js';
import { kubectlPath } from '../test/support/binaries.js';

const say = (msg: string) => console.log(`[sandbox] ${msg}`);

const cp = await startControlPlane({});
process.env[E2E_KUBECONFIG_ENV] = cp.kubeconfigPath;
say(`control plane up at ${cp.server} in ${(cp.startupMs / 1000).toFixed(1)} s`);

const example = parse(readFileSync(join(REPO_ROOT, 'examples/cluster.yaml'), 'utf8'));
const ns = example.metadata.namespace as string;
await kubectl(['create', 'namespace', ns]);
say('installing the operator from charts/pgpilot (helm) and starting it with the chart\'s ServiceAccount');
const operator = await startOperator({ watchNamespaces: [ns], leaseName: 'pgpilot-sandbox' });
say(`operator running (pid ${operator.pid}); metrics at http://127.0.0.1:${operator.port}/metrics; log ${operator.logPath}`);
await kubectlOk(['apply', '-f', '-'], stringify(example));
say(`applied examples/cluster.yaml (${ns}/${example.metadata.name})`);

// A stable copy of the kubeconfig and a kubectl for the person at the terminal.
const dir = join(REPO_ROOT, '.cache', 'sandbox');
mkdirSync(dir, { recursive: true });
const kubeconfig = join(dir, 'kubeconfig');
writeFileSync(kubeconfig, readFileSync(cp.kubeconfigPath));
say(`try:  ${await kubectlPath()} --kubeconfig ${kubeconfig} get pgc -A`);
say('      … describe pgc -n production prod-db   |   get statefulsets,services,secrets -n production');

let last = '';
const shutdown = async () => {
  say('stopping');
  await operator.stop();
  await cp.stop();
  process.exit(0);
};
process.on('SIGINT', () => void shutdown());
process.on('SIGTERM', () => void shutdown());

await waitFor('forever', async () => {
  const r = await kubectl(['get', 'pgc', '-n', ns, '--no-headers']);
  const line = r.stdout.trim().replace(/\s+/g, ' ');
  if (line && line !== last) say(`pgc: ${line}`);
  last = line;
  return false;
}, { timeoutMs: 365 * 24 * 3600_000, intervalMs: 2000 });
