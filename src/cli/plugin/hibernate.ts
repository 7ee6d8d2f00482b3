// `kubectl pgpilot hibernate CLUSTER on|off`: sets spec.hibernation (a merge patch) and follows the
// Hibernated condition until it says so. The field and the condition belong to the operator's
// side of hibernation; against a CRD without the field, the patch is refused (strict field
// validation) and the command says so rather than sending a change the apiserver would drop.
import type { PostgreSQLCluster } from '../../api/cluster.js';
import { EXIT, PluginError, usage } from './errors.js';
import type { Kube } from './kube.js';
import { follow, type Progress, type Step } from './ui.js';

export const HIBERNATED = 'Hibernated';

export function parseOnOff(value: string): boolean {
  if (value === 'on') return true;
  if (value === 'off') return false;
  throw usage(`hibernate takes "on" or "off" (got ${JSON.stringify(value)})`);
}

/** Judges one look: the Hibernated condition of the generation we asked for says so. */
export function hibernateStep(c: PostgreSQLCluster, on: boolean, generation: number | undefined): Step<PostgreSQLCluster> {
  const s = c.status ?? {};
  const cond = s.conditions?.find((x) => x.type === HIBERNATED);
  const want = on ? 'True' : 'False';
  const said = cond ? `${cond.status} (${cond.reason}: ${cond.message})` : 'not reported yet';
  const line = `${c.metadata.name}: phase ${s.phase ?? 'Unknown'}, ${s.readyInstances ?? 0} ready, ${HIBERNATED} ${said}`;
  const current = generation === undefined || (cond?.observedGeneration ?? s.observedGeneration ?? 0) >= generation;
  // Off: awake once the primary accepts writes again (the condition is False while waking, too).
  const settled = on ? s.phase === 'Hibernated' : cond?.reason === 'Awake';
  if (cond?.status === want && current && settled) return { state: 'done', line, value: c };
  return { state: 'waiting', line };
}

export async function runHibernate(kube: Kube, name: string, o: { on: boolean; timeoutMs: number; wait: boolean }, out: (line: string) => void, progress: Progress, signal?: AbortSignal): Promise<void> {
  let patched: PostgreSQLCluster;
  try {
    patched = await kube.patchCluster(name, { spec: { hibernation: o.on } }, { strict: true });
  } catch (err) {
    if (err instanceof PluginError && err.exitCode === EXIT.usage && /unknown field/i.test(err.message)) {
      throw new PluginError(`the PostgreSQLCluster CRD in this cluster has no spec.hibernation: the operator installed does not support hibernation yet (upgrade pgpilot)`, EXIT.failed);
    }
    throw err;
  }
  out(`${name}: spec.hibernation set to ${o.on}`);
  if (!o.wait) return;
  await follow({ what: `${name} to ${o.on ? 'hibernate' : 'wake up'}`, timeoutMs: o.timeoutMs, poll: () => kube.getCluster(name), judge: (c) => hibernateStep(c, o.on, patched.metadata.generation), progress, signal });
  progress.end();
  out(`${name} is ${o.on ? 'hibernated: every instance is stopped, its volumes kept' : 'awake'} (${progress.seconds()} s)`);
}
