// `kubectl pgpilot logs CLUSTER [INSTANCE] [--operator] [-f] [--tail N] [--previous] [--level L] [--raw]`:
// the JSON logs of a cluster's instances (agent and PostgreSQL, one stream per pod) or of the
// operator's work on it, pretty-printed (log-format.ts). Without -f, the pods' logs are merged in
// time order; with -f, lines are printed as they come until every stream ends or ^C.
import { Writable } from 'node:stream';
import { Log, type V1Pod } from '@kubernetes/client-node';
import { LABELS } from '../../api/constants.js';
import { errorText } from '../../util/error-text.js';
import { INSTANCE_CONTAINER } from './agent-status.js';
import { EXIT, PluginError, usage } from './errors.js';
import type { Kube } from './kube.js';
import { aboutCluster, atLeast, formatLine, LEVELS, mergeByTime, parseLine, parseLines, type Level, type LogLine } from './log-format.js';
import type { Colors } from './ui.js';
import { OPERATOR_SELECTOR } from './version.js';

export interface LogsOptions {
  instance?: string;
  operator?: boolean;
  follow?: boolean;
  tail?: number;
  previous?: boolean;
  level?: Level;
  raw?: boolean;
}

interface Source {
  label: string;
  pod: string;
  namespace: string;
  container: string;
  /** Operator lines: only those about this cluster. */
  filter?: (line: LogLine) => boolean;
}

export function parseLevel(v: string | undefined): Level | undefined {
  if (v === undefined) return undefined;
  if (!(LEVELS as readonly string[]).includes(v)) throw usage(`option --level must be one of ${LEVELS.join(', ')} (got ${JSON.stringify(v)})`);
  return v as Level;
}

export function parseTail(v: string | undefined): number | undefined {
  if (v === undefined || v === '-1') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw usage(`option --tail must be a whole number of lines, or -1 for all (got ${JSON.stringify(v)})`);
  return n;
}

const operatorContainer = (p: V1Pod) => (p.spec?.containers.find((c) => c.name === 'operator' || c.name === 'pgpilot') ?? p.spec?.containers[0])?.name ?? 'operator';

async function sources(kube: Kube, name: string, o: LogsOptions): Promise<Source[]> {
  await kube.getCluster(name); // an unknown cluster is exit 3, not an empty log
  if (o.operator) {
    const pods = (await kube.podsEverywhere(OPERATOR_SELECTOR)).filter((p) => p.status?.phase === 'Running' || o.previous);
    if (pods.length === 0) throw new PluginError('no operator pod found (pods labelled as the pgpilot chart labels its operator): is the operator installed and running?', EXIT.failed);
    return pods.map((p) => ({ label: p.metadata!.name!, pod: p.metadata!.name!, namespace: p.metadata!.namespace!, container: operatorContainer(p), filter: (l: LogLine) => aboutCluster(l, name, kube.namespace) }));
  }
  const pods = (await kube.instancePods(name)).sort((a, b) => (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''));
  const chosen = o.instance ? pods.filter((p) => p.metadata?.labels?.[LABELS.instance] === o.instance) : pods;
  if (o.instance && chosen.length === 0) throw usage(`${name} has no instance ${o.instance} (instances: ${pods.map((p) => p.metadata?.labels?.[LABELS.instance]).join(', ') || 'none'})`);
  if (chosen.length === 0) throw new PluginError(`${name} has no instance pods yet`, EXIT.failed);
  return chosen.map((p) => ({ label: p.metadata?.labels?.[LABELS.instance] ?? p.metadata!.name!, pod: p.metadata!.name!, namespace: kube.namespace, container: INSTANCE_CONTAINER }));
}

function printer(o: LogsOptions, c: Colors, out: (line: string) => void) {
  return (line: LogLine) => {
    if (o.level && !atLeast(line, o.level)) return;
    out(o.raw ? line.raw : formatLine(line, c, { hide: ['cluster', 'namespace'] }));
  };
}

/** Without -f: every source's log, merged in time order. A source that cannot be read says so on stderr. */
async function snapshot(kube: Kube, list: Source[], o: LogsOptions, print: (l: LogLine) => void, err: (line: string) => void): Promise<void> {
  const texts = await Promise.all(
    list.map(async (s) => {
      try {
        return parseLines(s.label, await kube.podLog(s.pod, s.container, { tailLines: s.filter ? undefined : o.tail, previous: o.previous, namespace: s.namespace })).filter((l) => !s.filter || s.filter(l));
      } catch (e) {
        err(`${s.label}: ${errorText(e)}`);
        return [];
      }
    }),
  );
  // The operator's log is filtered after reading: the tail applies to what is left.
  const lines = mergeByTime(texts.map((t) => (o.tail !== undefined ? t.slice(-o.tail) : t)));
  lines.forEach(print);
}

class LineSplitter extends Writable {
  private rest = '';
  private t: number | undefined;
  constructor(
    private readonly source: Source,
    private readonly onLine: (l: LogLine) => void,
  ) {
    super();
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    const parts = (this.rest + chunk.toString('utf8')).split('\n');
    this.rest = parts.pop() ?? '';
    for (const raw of parts) this.line(raw);
    done();
  }
  override _final(done: () => void): void {
    if (this.rest) this.line(this.rest);
    done();
  }
  private line(raw: string) {
    const l = parseLine(this.source.label, raw, this.t);
    this.t = l.time;
    if (!this.source.filter || this.source.filter(l)) this.onLine(l);
  }
}

/** With -f: one stream per source, lines printed as they arrive, until all end or the signal aborts. */
async function followAll(kube: Kube, list: Source[], o: LogsOptions, print: (l: LogLine) => void, err: (line: string) => void, signal: AbortSignal): Promise<void> {
  const log = new Log(kube.kc);
  await Promise.all(
    list.map(async (s) => {
      const sink = new LineSplitter(s, print);
      const ended = new Promise<void>((resolve) => {
        sink.on('finish', resolve);
        sink.on('error', resolve);
        signal.addEventListener('abort', () => resolve(), { once: true });
      });
      try {
        // Not aborted on ^C: client-node pipes the response into the sink without an error
        // handler, so an aborted body would crash the process; the plugin exits instead.
        await log.log(s.namespace, s.pod, s.container, sink, { follow: true, tailLines: s.filter ? 0 : o.tail, previous: o.previous });
        await ended;
      } catch (e) {
        if (!signal.aborted) err(`${s.label}: ${errorText(e)}`);
      }
    }),
  );
}

/** Resolves with the exit code: 0, or 130 when ^C ended a follow (as it ends `kubectl logs -f`). */
export async function runLogs(kube: Kube, name: string, o: LogsOptions, c: Colors, out: (line: string) => void, err: (line: string) => void, signal: AbortSignal): Promise<number> {
  if (o.instance && o.operator) throw usage('give INSTANCE or --operator, not both');
  const list = await sources(kube, name, o);
  const print = printer(o, c, out);
  if (!o.follow) {
    await snapshot(kube, list, o, print, err);
    return EXIT.ok;
  }
  await followAll(kube, list, o, print, err, signal);
  return signal.aborted ? EXIT.interrupted : EXIT.ok;
}
