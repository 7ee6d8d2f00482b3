// The instance agents' own status (GET /v1/status), read from inside each instance pod: the
// agent API needs the cluster's agent token, which the pod has mounted, and on the pod IP the
// operator's client certificate too — so the script asks the agent's Unix socket (a pod made
// before agent TLS: its plain-HTTP port). A short Node script runs in the postgres container (the
// image's `node`), so no credential leaves the pod and no command line carries one.
import type { V1Pod } from '@kubernetes/client-node';
import { AGENT_PORT, LABELS } from '../../api/constants.js';
import { POD_ENV } from '../../api/pod-env.js';
import { SECRETS_MOUNT } from '../../builders/statefulset.js';
import type { InstanceStatus } from '../../instance/api-types.js';
import { lsnDiff } from '../../postgres/lsn.js';
import { errorText } from '../../util/error-text.js';
import type { Kube } from './kube.js';
import { execInPod } from './pod-exec.js';

/** The container of an instance pod that runs the agent and PostgreSQL. */
export const INSTANCE_CONTAINER = 'postgres';

/** Node script: prints the local agent's status JSON (exit 1 and the reason on stderr otherwise). */
export const AGENT_STATUS_SCRIPT = [
  `const e = process.env;`,
  `const token = require('fs').readFileSync((e.${POD_ENV.secretsDir} || '${SECRETS_MOUNT}') + '/agent/token', 'utf8').trim();`,
  `const where = e.${POD_ENV.agentSocket} ? { socketPath: e.${POD_ENV.agentSocket} } : { host: e.${POD_ENV.podIp}, port: e.${POD_ENV.agentPort} || ${AGENT_PORT} };`,
  `const fail = (err) => { process.stderr.write(String(err && err.message || err)); process.exitCode = 1; };`,
  `require('http').get({ ...where, path: '/v1/status', headers: { authorization: 'Bearer ' + token }, timeout: 5000 }, (r) => {`,
  `  let body = ''; r.setEncoding('utf8').on('data', (c) => (body += c)).on('error', fail);`,
  `  r.on('end', () => { process.stdout.write(body); process.exitCode = r.statusCode === 200 ? 0 : 1; });`,
  `}).on('timeout', function () { this.destroy(new Error('the agent did not answer within 5 s')); }).on('error', fail);`,
].join('\n');

export const AGENT_STATUS_COMMAND = ['node', '-e', AGENT_STATUS_SCRIPT];

export type AgentAnswer = { instance: string; pod: string; status: InstanceStatus } | { instance: string; pod: string; error: string };

const instanceOf = (pod: V1Pod) => pod.metadata?.labels?.[LABELS.instance] ?? pod.metadata?.name?.replace(/-0$/, '') ?? '?';

/** Reads every running pod's agent status concurrently; a pod that cannot answer gets its reason. */
export async function readAgentStatuses(kube: Kube, pods: V1Pod[], timeoutMs = 8000): Promise<AgentAnswer[]> {
  const running = pods.filter((p) => p.status?.phase === 'Running' && !p.metadata?.deletionTimestamp);
  return Promise.all(
    running.map(async (pod): Promise<AgentAnswer> => {
      const name = pod.metadata!.name!;
      const instance = instanceOf(pod);
      const r = await execInPod(kube, name, INSTANCE_CONTAINER, AGENT_STATUS_COMMAND, timeoutMs);
      if (r.code !== 0) return { instance, pod: name, error: (r.failure ?? r.stderr.trim()) || `exit code ${r.code}` };
      try {
        return { instance, pod: name, status: JSON.parse(r.stdout) as InstanceStatus };
      } catch (err) {
        return { instance, pod: name, error: `unreadable agent status: ${errorText(err)}` };
      }
    }),
  );
}

export interface InstancePosition {
  timeline?: number;
  /** The primary's current write location; a replica's replayed location. */
  lsn?: string;
  /** Bytes a replica's replay is behind the primary's current location. */
  lagBytes?: number;
  /** A replica: whether its WAL receiver streams. */
  streaming?: boolean;
  fenced?: boolean;
  /** The PostgreSQL version the instance runs. */
  version?: string;
}

/** Pure: timeline, LSN and lag of each instance from the agents' statuses. */
export function positions(answers: AgentAnswer[]): Map<string, InstancePosition> {
  const out = new Map<string, InstancePosition>();
  const statuses = answers.flatMap((a) => ('status' in a ? [a.status] : []));
  const primary = statuses.find((s) => s.role === 'primary' && s.running && s.currentLsn);
  for (const s of statuses) {
    const lsn = s.role === 'primary' ? (s.currentLsn ?? undefined) : (s.replayLsn ?? s.receiveLsn ?? undefined);
    const lag = s.role !== 'primary' && primary?.currentLsn && lsn ? lsnDiff(primary.currentLsn, lsn) : undefined;
    out.set(s.instance, {
      timeline: s.timeline ?? undefined,
      lsn,
      lagBytes: lag === undefined ? undefined : Number(lag > 0n ? lag : 0n),
      streaming: s.role === 'primary' ? undefined : s.streaming,
      fenced: s.fenced,
      ...(s.postgresVersion ? { version: s.postgresVersion } : {}),
    });
  }
  return out;
}
