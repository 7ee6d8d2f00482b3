// `kubectl pgpilot report CLUSTER [-o FILE]`: a support bundle in one .tar.gz — the cluster, its
// backups, every object labelled as the cluster's (Secrets with their keys but never their
// values), the Events about them, each pod's container logs (and the previous instance's after a
// restart), each instance agent's status, the operator's Deployment and its log lines about this
// cluster, and MANIFEST.json saying what was collected and what could not be (and why).
import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { CoreV1Event, KubernetesObject, V1Pod } from '@kubernetes/client-node';
import { pack } from 'tar-stream';
import { stringify } from 'yaml';
import { LABELS } from '../../api/constants.js';
import { errorText } from '../../util/error-text.js';
import { readAgentStatuses } from './agent-status.js';
import { PLUGIN_VERSION } from './program.js';
import type { Kube } from './kube.js';
import { aboutCluster, parseLines } from './log-format.js';
import { OPERATOR_SELECTOR, operatorVersion } from './version.js';

/** The kinds collected by the cluster's label (apiVersion, kind, file). */
export const OWNED_KINDS: readonly [string, string, string][] = [
  ['apps/v1', 'StatefulSet', 'statefulsets'],
  ['v1', 'Pod', 'pods'],
  ['v1', 'Service', 'services'],
  ['v1', 'PersistentVolumeClaim', 'persistentvolumeclaims'],
  ['v1', 'ConfigMap', 'configmaps'],
  ['v1', 'Secret', 'secrets'],
  ['v1', 'ServiceAccount', 'serviceaccounts'],
  ['rbac.authorization.k8s.io/v1', 'Role', 'roles'],
  ['rbac.authorization.k8s.io/v1', 'RoleBinding', 'rolebindings'],
  ['policy/v1', 'PodDisruptionBudget', 'poddisruptionbudgets'],
  ['batch/v1', 'Job', 'jobs'],
  ['batch/v1', 'CronJob', 'cronjobs'],
  ['monitoring.coreos.com/v1', 'PodMonitor', 'podmonitors'],
];

/** Lines of each container log kept (the newest). */
export const LOG_TAIL_LINES = 20_000;

type Obj = KubernetesObject & Record<string, unknown>;

/** Pure: an object without managedFields and the last-applied annotation (which can hold a Secret's data). */
export function stripNoise<T extends Obj>(o: T): T {
  const { managedFields: _m, ...metadata } = (o.metadata ?? {}) as Record<string, unknown>;
  const annotations = { ...((metadata.annotations as Record<string, string> | undefined) ?? {}) };
  delete annotations['kubectl.kubernetes.io/last-applied-configuration'];
  return { ...o, metadata: { ...metadata, ...(Object.keys(annotations).length ? { annotations } : { annotations: undefined }) } } as T;
}

/** Pure: a Secret with each value replaced by its size — the keys show what is there, nothing can be read. */
export function redactSecret(o: Obj): Obj {
  const redact = (data: unknown, base64: boolean) =>
    data && typeof data === 'object'
      ? Object.fromEntries(Object.entries(data as Record<string, string>).map(([k, v]) => [k, `[redacted: ${base64 ? Buffer.from(String(v), 'base64').length : Buffer.byteLength(String(v))} bytes]`]))
      : undefined;
  const { data, stringData, ...rest } = stripNoise(o);
  return { ...rest, ...(data ? { data: redact(data, true) } : {}), ...(stringData ? { stringData: redact(stringData, false) } : {}) } as Obj;
}

/** Pure: the archive's name, e.g. pgpilot-report-production-prod-db-20261205T051500Z.tar.gz. */
export function reportFileName(namespace: string, cluster: string, now: Date): string {
  return `pgpilot-report-${namespace}-${cluster}-${now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}.tar.gz`;
}

/** Pure: whether an Event is about the cluster, one of its backups or one of its objects. */
export function eventMatters(e: CoreV1Event, names: Set<string>): boolean {
  return names.has(`${e.involvedObject?.kind}/${e.involvedObject?.name}`);
}

interface Bundle {
  files: Map<string, string>;
  problems: string[];
}

async function attempt(b: Bundle, what: string, fn: () => Promise<unknown>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    b.problems.push(`${what}: ${errorText(err)}`);
  }
}

const yamlList = (items: unknown[]) => items.map((i) => `---\n${stringify(i)}`).join('');

async function collectObjects(kube: Kube, name: string, b: Bundle, names: Set<string>): Promise<V1Pod[]> {
  let pods: V1Pod[] = [];
  const selector = `${LABELS.cluster}=${name}`;
  for (const [apiVersion, kind, file] of OWNED_KINDS) {
    await attempt(b, `list ${file}`, async () => {
      const list = await kube.clients.objects.list<Obj>(apiVersion, kind, kube.namespace, undefined, undefined, undefined, undefined, selector).catch((err: unknown) => {
        // A kind whose API is not served (the Prometheus Operator's CRDs not installed) has nothing to collect.
        if ((err as { code?: number }).code === 404) return { items: [] as Obj[] };
        throw err;
      });
      const items = list.items.map((o) => (kind === 'Secret' ? redactSecret(o) : stripNoise(o)));
      for (const o of list.items) names.add(`${kind}/${o.metadata?.name}`);
      if (kind === 'Pod') pods = list.items as unknown as V1Pod[];
      b.files.set(`objects/${file}.yaml`, yamlList(items.map((o) => ({ apiVersion, kind, ...o }))));
    });
  }
  return pods;
}

async function collectLogs(kube: Kube, pods: V1Pod[], b: Bundle): Promise<void> {
  for (const pod of pods) {
    const podName = pod.metadata!.name!;
    const statuses = [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])];
    for (const cs of statuses) {
      await attempt(b, `log of ${podName}/${cs.name}`, async () => b.files.set(`logs/${podName}/${cs.name}.log`, await kube.podLog(podName, cs.name, { tailLines: LOG_TAIL_LINES })));
      if ((cs.restartCount ?? 0) > 0)
        await attempt(b, `previous log of ${podName}/${cs.name}`, async () => b.files.set(`logs/${podName}/${cs.name}.previous.log`, await kube.podLog(podName, cs.name, { tailLines: LOG_TAIL_LINES, previous: true })));
    }
  }
}

async function collectOperator(kube: Kube, name: string, b: Bundle): Promise<void> {
  await attempt(b, 'operator version', async () => b.files.set('operator/version.txt', `plugin: ${PLUGIN_VERSION}\noperator: ${await operatorVersion(kube)}\n`));
  await attempt(b, 'operator Deployments', async () => b.files.set('operator/deployments.yaml', yamlList((await kube.deploymentsEverywhere(OPERATOR_SELECTOR)).map((d) => stripNoise(d as unknown as Obj)))));
  await attempt(b, 'operator logs', async () => {
    for (const p of await kube.podsEverywhere(OPERATOR_SELECTOR)) {
      const container = p.spec?.containers[0]?.name ?? 'operator';
      const text = await kube.podLog(p.metadata!.name!, container, { tailLines: LOG_TAIL_LINES * 5, namespace: p.metadata!.namespace });
      // Lines about this cluster, and those about no cluster (start, leadership); never another tenant's.
      const kept = parseLines('', text).filter((l) => !l.json || l.json.cluster === undefined || aboutCluster(l, name, kube.namespace));
      b.files.set(`operator/logs/${p.metadata!.name}.log`, kept.map((l) => l.raw).join('\n') + '\n');
    }
  });
}

/** Gathers everything into memory (file path → content); what failed is listed, never fatal. */
export async function collectReport(kube: Kube, name: string, now = new Date()): Promise<Bundle> {
  const cluster = await kube.getCluster(name); // unknown cluster: exit 3
  const b: Bundle = { files: new Map(), problems: [] };
  const names = new Set([`${cluster.kind ?? 'PostgreSQLCluster'}/${name}`]);
  b.files.set('cluster.yaml', stringify(stripNoise(cluster as unknown as Obj)));
  await attempt(b, 'list postgresqlbackups', async () => {
    const backups = (await kube.listBackups()).filter((x) => x.spec?.cluster?.name === name);
    for (const x of backups) names.add(`PostgreSQLBackup/${x.metadata?.name}`);
    b.files.set('backups.yaml', yamlList(backups.map((x) => stripNoise(x as unknown as Obj))));
  });
  const pods = await collectObjects(kube, name, b, names);
  await attempt(b, 'list events', async () => {
    const events = (await kube.call({ verb: 'list', resource: 'events', namespace: kube.namespace }, async () => (await kube.clients.core.listNamespacedEvent({ namespace: kube.namespace })).items)).filter((e) => eventMatters(e, names));
    b.files.set('events.yaml', yamlList(events.map((e) => stripNoise(e as unknown as Obj))));
  });
  await collectLogs(kube, pods, b);
  const instancePods = pods.filter((p) => p.metadata?.labels?.[LABELS.component] === 'instance');
  for (const a of await readAgentStatuses(kube, instancePods))
    if ('status' in a) b.files.set(`agents/${a.instance}.json`, `${JSON.stringify(a.status, null, 2)}\n`);
    else b.problems.push(`agent status of ${a.instance}: ${a.error}`);
  await collectOperator(kube, name, b);
  b.files.set('MANIFEST.json', `${JSON.stringify({ cluster: name, namespace: kube.namespace, createdAt: now.toISOString(), plugin: PLUGIN_VERSION, files: [...b.files.keys()].sort(), problems: b.problems }, null, 2)}\n`);
  return b;
}

/** Writes the bundle as a gzipped tar whose entries sit under one top folder. */
export async function writeArchive(b: Bundle, path: string, top: string, now = new Date()): Promise<void> {
  const tar = pack();
  const done = pipeline(tar, createGzip(), createWriteStream(path, { mode: 0o600 }));
  for (const [file, content] of [...b.files].sort(([a], [c]) => a.localeCompare(c))) tar.entry({ name: `${top}/${file}`, mtime: now, mode: 0o644 }, content);
  tar.finalize();
  await done;
}

export async function runReport(kube: Kube, name: string, o: { output?: string; now?: Date }, out: (line: string) => void): Promise<void> {
  const now = o.now ?? new Date();
  const file = o.output ?? reportFileName(kube.namespace, name, now);
  const b = await collectReport(kube, name, now);
  await writeArchive(b, file, file.replace(/^.*\//, '').replace(/\.tar\.gz$|\.tgz$/, ''), now);
  out(`${file}: ${b.files.size} files${b.problems.length ? `, ${b.problems.length} things not collected (see MANIFEST.json)` : ''}`);
  for (const p of b.problems) out(`  not collected: ${p}`);
}
