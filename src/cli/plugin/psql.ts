// `kubectl pgpilot psql CLUSTER [--replica | --instance NAME] [-d DB] [-- PSQL ARGS…]`: psql in
// the instance pod, run through `kubectl exec` (which owns the terminal: raw mode, resize, ^C).
// It connects over the pod's own Unix socket as the superuser `postgres`, which pg_hba admits by
// peer authentication (the container runs as that user): no password is read, sent or put on a
// command line — exec arguments land in the apiserver's audit log.
import { spawn } from 'node:child_process';
import type { V1Pod } from '@kubernetes/client-node';
import type { PostgreSQLCluster } from '../../api/cluster.js';
import { LABELS, POSTGRES_PORT, ROLE_PRIMARY, ROLE_REPLICA } from '../../api/constants.js';
import { resolveSpec } from '../../api/resolve-spec.js';
import { INSTANCE_CONTAINER } from './agent-status.js';
import { EXIT, PluginError, usage } from './errors.js';
import type { GlobalOptions, Kube } from './kube.js';

/** The instance pods' Unix socket directory (an emptyDir at /var/run/postgresql). */
export const SOCKET_DIR = '/var/run/postgresql';

export interface PsqlTarget {
  replica?: boolean;
  instance?: string;
}

const ready = (p: V1Pod) => !p.metadata?.deletionTimestamp && (p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false);
const instanceOf = (p: V1Pod) => p.metadata?.labels?.[LABELS.instance];

/** Pure: the pod to connect to — the named instance's, the ready primary's, or a ready replica's. */
export function choosePod(cluster: string, pods: V1Pod[], t: PsqlTarget): V1Pod {
  const sorted = [...pods].sort((a, b) => (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''));
  if (t.instance) {
    const pod = sorted.find((p) => instanceOf(p) === t.instance);
    if (!pod) throw usage(`${cluster} has no instance ${t.instance} (instances: ${sorted.map(instanceOf).filter(Boolean).join(', ') || 'none'})`);
    if (pod.status?.phase !== 'Running') throw new PluginError(`${t.instance} is not running (pod ${pod.metadata?.name} is ${pod.status?.phase ?? 'Unknown'})`, EXIT.failed);
    return pod;
  }
  const role = t.replica ? ROLE_REPLICA : ROLE_PRIMARY;
  const pod = sorted.find((p) => p.metadata?.labels?.[LABELS.role] === role && ready(p));
  if (!pod) {
    const seen = sorted.map((p) => `${p.metadata?.name} (${p.metadata?.labels?.[LABELS.role] ?? 'no role'}, ${ready(p) ? 'ready' : 'not ready'})`).join(', ');
    throw new PluginError(`${cluster} has no ready ${role} to connect to${seen ? `: ${seen}` : ''}`, EXIT.failed);
  }
  return pod;
}

/** Pure: kubectl's arguments for the session. */
export function psqlArgs(kube: { namespace: string }, g: GlobalOptions, pod: string, database: string, extra: string[], tty: boolean): string[] {
  return [
    ...(g.kubeconfig ? ['--kubeconfig', g.kubeconfig] : []),
    ...(g.context ? ['--context', g.context] : []),
    '--namespace',
    kube.namespace,
    'exec',
    tty ? '-it' : '-i',
    pod,
    '-c',
    INSTANCE_CONTAINER,
    '--',
    'psql',
    '--host',
    SOCKET_DIR,
    '--port',
    String(POSTGRES_PORT),
    '--username',
    'postgres',
    '--dbname',
    database,
    ...extra,
  ];
}

/** The application database of the cluster (spec.bootstrap.initdb.database and its default). */
export function databaseOf(c: PostgreSQLCluster): string {
  return resolveSpec(c.spec).initdb.database;
}

/** Runs the session; resolves with psql's exit code (kubectl passes it on). */
export async function runPsql(kube: Kube, g: GlobalOptions, name: string, o: PsqlTarget & { dbname?: string; extra: string[] }, err: (line: string) => void): Promise<number> {
  if (o.replica && o.instance) throw usage('give --replica or --instance, not both');
  const cluster = await kube.getCluster(name);
  const pod = choosePod(name, await kube.instancePods(name), o);
  const tty = !!process.stdin.isTTY && !!process.stdout.isTTY;
  const args = psqlArgs(kube, g, pod.metadata!.name!, o.dbname ?? databaseOf(cluster), o.extra, tty);
  const kubectl = process.env.KUBECTL || 'kubectl';
  if (tty) err(`connecting to ${pod.metadata!.name} (${pod.metadata?.labels?.[LABELS.role] ?? 'no role'}) as postgres…`);
  return new Promise((resolve, reject) => {
    const child = spawn(kubectl, args, { stdio: 'inherit' });
    // ^C belongs to psql (it cancels the query): the plugin itself waits for kubectl to end.
    const ignore = () => undefined;
    process.on('SIGINT', ignore);
    child.on('error', (e: NodeJS.ErrnoException) => {
      process.off('SIGINT', ignore);
      reject(e.code === 'ENOENT' ? new PluginError(`${kubectl} not found: psql runs through kubectl exec (put kubectl on PATH, or set KUBECTL to its path)`, EXIT.failed) : e);
    });
    child.on('close', (code, signal) => {
      process.off('SIGINT', ignore);
      resolve(code ?? (signal ? 128 + 2 : EXIT.failed));
    });
  });
}
