// Pod volumes as host directories, bind-mounted at the containers' mountPaths by sandbox.ts.
//   persistentVolumeClaim → the bound PV's hostPath (provisioner.ts makes one dir per claim under
//                           <dataDir>/volumes, so data outlives pods); fsGroup applied when the
//                           root's group differs (fsGroupChangePolicy OnRootMismatch)
//   configMap / secret / projected / downwardAPI → files under <dataDir>/pods/<uid>/volumes/<name>,
//                           rewritten (temp file + rename) when the source changes: refresh() runs
//                           every second against the informer caches
//   projected serviceAccountToken → a TokenRequest bound to the pod, renewed at 80% of its life
//   emptyDir → a dir under the pod dir; medium Memory → under /dev/shm
//   hostPath → the path itself
import { chmod, chown, lstat, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { V1ConfigMap, V1KeyToPath, V1Pod, V1Secret, V1Volume, V1VolumeProjection } from '@kubernetes/client-node';
import type { KubeApi } from './api.js';
import { errorText } from '../../src/util/error-text.js';

/** A volume that cannot be set up yet (missing ConfigMap, unbound claim...): the pod waits. */
export class VolumeNotReady extends Error {}

export interface VolumeSources {
  configMap(namespace: string, name: string): V1ConfigMap | undefined;
  secret(namespace: string, name: string): V1Secret | undefined;
}

interface FileSpec {
  data: Buffer;
  mode: number;
}

interface CachedToken {
  token: string;
  renewAt: number;
}

export class PodVolumes {
  /** volume name → host path */
  readonly paths = new Map<string, string>();
  private readonly written = new Map<string, Set<string>>();
  private readonly tokens = new Map<string, CachedToken>();

  constructor(
    private readonly api: KubeApi,
    private readonly sources: VolumeSources,
    private readonly pod: V1Pod,
    private readonly podDir: string,
    private readonly shmDir: string,
  ) {}

  private get ns(): string {
    return this.pod.metadata!.namespace!;
  }
  private get fsGroup(): number | undefined {
    return this.pod.spec!.securityContext?.fsGroup;
  }

  /** Creates every volume; throws VolumeNotReady while one cannot be made yet. */
  async setup(): Promise<void> {
    for (const v of this.pod.spec!.volumes ?? []) {
      if (!this.paths.has(v.name)) this.paths.set(v.name, await this.create(v));
    }
    await this.refresh();
  }

  /** Rewrites file-backed volumes whose sources changed (and tokens due for renewal). */
  async refresh(): Promise<void> {
    for (const v of this.pod.spec!.volumes ?? []) {
      const dir = this.paths.get(v.name);
      if (!dir) continue;
      const files = await this.filesOf(v);
      if (files) await this.sync(v.name, dir, files);
    }
  }

  private async create(v: V1Volume): Promise<string> {
    if (v.persistentVolumeClaim) return this.claimDir(v.persistentVolumeClaim.claimName);
    if (v.hostPath) {
      if (!v.hostPath.type || v.hostPath.type === 'DirectoryOrCreate') await mkdir(v.hostPath.path, { recursive: true });
      return v.hostPath.path;
    }
    const dir = v.emptyDir?.medium === 'Memory' ? join(this.shmDir, v.name) : join(this.podDir, 'volumes', v.name);
    await mkdir(dir, { recursive: true });
    if (v.emptyDir) {
      await chmod(dir, 0o777); // as the kubelet makes emptyDirs: any runAsUser may write
      return dir;
    }
    if (v.configMap || v.secret || v.projected || v.downwardAPI) {
      await chmod(dir, 0o755);
      if (this.fsGroup !== undefined) await chown(dir, 0, this.fsGroup);
      return dir;
    }
    throw new VolumeNotReady(`volume ${v.name}: this volume type is not supported by the process kubelet`);
  }

  private async claimDir(claimName: string): Promise<string> {
    const pvc = await this.api.get<{ spec?: { volumeName?: string }; status?: { phase?: string } }>(
      `/api/v1/namespaces/${this.ns}/persistentvolumeclaims/${claimName}`,
    ).catch((err: unknown) => {
      throw new VolumeNotReady(`persistentvolumeclaim ${claimName}: ${errorText(err)}`);
    });
    if (pvc.status?.phase !== 'Bound' || !pvc.spec?.volumeName) throw new VolumeNotReady(`persistentvolumeclaim ${claimName} is not bound yet`);
    const pv = await this.api.get<{ spec?: { hostPath?: { path: string }; local?: { path: string } } }>(`/api/v1/persistentvolumes/${pvc.spec.volumeName}`);
    const path = pv.spec?.hostPath?.path ?? pv.spec?.local?.path;
    if (!path) throw new VolumeNotReady(`persistentvolume ${pvc.spec.volumeName} has no hostPath/local path`);
    await mkdir(path, { recursive: true });
    if (this.fsGroup !== undefined) await applyFsGroup(path, this.fsGroup);
    return path;
  }

  /** The files a file-backed volume should hold now, or undefined for directory volumes. */
  private async filesOf(v: V1Volume): Promise<Map<string, FileSpec> | undefined> {
    if (v.configMap) {
      const cm = this.sources.configMap(this.ns, v.configMap.name!);
      if (!cm && !v.configMap.optional) throw new VolumeNotReady(`configmap ${v.configMap.name} not found`);
      return keyFiles(cmData(cm), v.configMap.items, v.configMap.defaultMode ?? 0o644, `configmap ${v.configMap.name}`, v.configMap.optional);
    }
    if (v.secret) {
      const s = this.sources.secret(this.ns, v.secret.secretName!);
      if (!s && !v.secret.optional) throw new VolumeNotReady(`secret ${v.secret.secretName} not found`);
      return keyFiles(secretData(s), v.secret.items, v.secret.defaultMode ?? 0o644, `secret ${v.secret.secretName}`, v.secret.optional);
    }
    if (v.downwardAPI) {
      const files = new Map<string, FileSpec>();
      for (const item of v.downwardAPI.items ?? []) {
        if (item.fieldRef) files.set(item.path, { data: Buffer.from(downward(this.pod, item.fieldRef.fieldPath)), mode: item.mode ?? v.downwardAPI.defaultMode ?? 0o644 });
      }
      return files;
    }
    if (v.projected) {
      const files = new Map<string, FileSpec>();
      const mode = v.projected.defaultMode ?? 0o644;
      for (const [i, src] of (v.projected.sources ?? []).entries()) {
        for (const [p, f] of await this.projection(`${v.name}/${i}`, src, mode)) files.set(p, f);
      }
      return files;
    }
    return undefined;
  }

  private async projection(key: string, src: V1VolumeProjection, mode: number): Promise<Map<string, FileSpec>> {
    if (src.configMap) {
      const cm = this.sources.configMap(this.ns, src.configMap.name!);
      if (!cm && !src.configMap.optional) throw new VolumeNotReady(`configmap ${src.configMap.name} not found`);
      return keyFiles(cmData(cm), src.configMap.items, mode, `configmap ${src.configMap.name}`, src.configMap.optional);
    }
    if (src.secret) {
      const s = this.sources.secret(this.ns, src.secret.name!);
      if (!s && !src.secret.optional) throw new VolumeNotReady(`secret ${src.secret.name} not found`);
      return keyFiles(secretData(s), src.secret.items, mode, `secret ${src.secret.name}`, src.secret.optional);
    }
    if (src.downwardAPI) {
      const files = new Map<string, FileSpec>();
      for (const item of src.downwardAPI.items ?? []) {
        if (item.fieldRef) files.set(item.path, { data: Buffer.from(downward(this.pod, item.fieldRef.fieldPath)), mode: item.mode ?? mode });
      }
      return files;
    }
    if (src.serviceAccountToken) {
      const t = src.serviceAccountToken;
      return new Map([[t.path, { data: Buffer.from(await this.token(key, t.audience, t.expirationSeconds ?? 3600)), mode }]]);
    }
    return new Map(); // clusterTrustBundle, podCertificate: not used by pgpilot
  }

  private async token(key: string, audience: string | undefined, expirationSeconds: number): Promise<string> {
    const cached = this.tokens.get(key);
    if (cached && Date.now() < cached.renewAt) return cached.token;
    const sa = this.pod.spec!.serviceAccountName ?? 'default';
    const tr = await this.api.post<{ status: { token: string; expirationTimestamp: string } }>(
      `/api/v1/namespaces/${this.ns}/serviceaccounts/${sa}/token`,
      {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenRequest',
        spec: {
          audiences: audience ? [audience] : [],
          expirationSeconds,
          boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: this.pod.metadata!.name, uid: this.pod.metadata!.uid },
        },
      },
    );
    const now = Date.now();
    const life = Math.max(60_000, Date.parse(tr.status.expirationTimestamp) - now);
    this.tokens.set(key, { token: tr.status.token, renewAt: now + life * 0.8 });
    return tr.status.token;
  }

  /** Writes changed files atomically (rename within the volume dir) and removes dropped ones. */
  private async sync(name: string, dir: string, files: Map<string, FileSpec>): Promise<void> {
    const fsGroup = this.fsGroup;
    for (const [rel, f] of files) {
      const path = join(dir, rel);
      // Secrets and ConfigMaps are read-only volumes: with fsGroup the kubelet adds group read.
      const mode = fsGroup === undefined ? f.mode : f.mode | 0o440;
      const current = await readFile(path).catch(() => undefined);
      const st = current ? await stat(path) : undefined;
      if (current && current.equals(f.data) && (st!.mode & 0o7777) === mode && (fsGroup === undefined || st!.gid === fsGroup)) continue;
      await mkdir(dirname(path), { recursive: true });
      const tmp = `${path}.tmp-${process.pid}`;
      await writeFile(tmp, f.data, { mode });
      await chmod(tmp, mode);
      if (fsGroup !== undefined) await chown(tmp, 0, fsGroup);
      await rename(tmp, path);
    }
    const before = this.written.get(name) ?? new Set<string>();
    for (const rel of before) if (!files.has(rel)) await rm(join(dir, rel), { force: true });
    this.written.set(name, new Set(files.keys()));
  }
}

function cmData(cm: V1ConfigMap | undefined): Map<string, Buffer> {
  const m = new Map<string, Buffer>();
  for (const [k, v] of Object.entries(cm?.data ?? {})) m.set(k, Buffer.from(v));
  for (const [k, v] of Object.entries(cm?.binaryData ?? {})) m.set(k, Buffer.from(v, 'base64'));
  return m;
}

function secretData(s: V1Secret | undefined): Map<string, Buffer> {
  const m = new Map<string, Buffer>();
  for (const [k, v] of Object.entries(s?.data ?? {})) m.set(k, Buffer.from(v, 'base64'));
  for (const [k, v] of Object.entries(s?.stringData ?? {})) m.set(k, Buffer.from(v));
  return m;
}

/** A missing key is an error unless the source is optional (then the file is left out), as the kubelet does. */
function keyFiles(data: Map<string, Buffer>, items: V1KeyToPath[] | undefined, mode: number, what: string, optional = false): Map<string, FileSpec> {
  const files = new Map<string, FileSpec>();
  if (!items) {
    for (const [k, v] of data) files.set(k, { data: v, mode });
    return files;
  }
  for (const item of items) {
    const v = data.get(item.key);
    if (!v && optional) continue;
    if (!v) throw new VolumeNotReady(`${what} has no key ${item.key}`);
    files.set(item.path, { data: v, mode: item.mode ?? mode });
  }
  return files;
}

/** metadata.labels / metadata.annotations as a whole: sorted key="value" lines. */
const sortedPairs = (map: Record<string, string> | undefined): string =>
  Object.entries(map ?? {}).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join('\n');

/** The whole-field paths the downward API supports, each with how it reads the pod. */
const DOWNWARD_FIELDS = new Map<string, (pod: V1Pod) => string>([
  ['metadata.name', (pod) => pod.metadata?.name ?? ''],
  ['metadata.namespace', (pod) => pod.metadata?.namespace ?? ''],
  ['metadata.uid', (pod) => pod.metadata?.uid ?? ''],
  ['metadata.labels', (pod) => sortedPairs(pod.metadata?.labels)],
  ['metadata.annotations', (pod) => sortedPairs(pod.metadata?.annotations)],
  ['spec.nodeName', (pod) => pod.spec?.nodeName ?? ''],
  ['spec.serviceAccountName', (pod) => pod.spec?.serviceAccountName ?? 'default'],
  ['status.podIP', (pod) => pod.status?.podIP ?? ''],
  ['status.podIPs', (pod) => (pod.status?.podIPs ?? []).map((p) => p.ip).join(',')],
  ['status.hostIP', (pod) => pod.status?.hostIP ?? '127.0.0.1'],
]);

/** Downward API values for a fieldPath (fieldRef env and downwardAPI volumes). */
export function downward(pod: V1Pod, fieldPath: string): string {
  const meta = pod.metadata ?? {};
  const m = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(fieldPath);
  if (m) return (m[1] === 'labels' ? meta.labels : meta.annotations)?.[m[2]!] ?? '';
  const field = DOWNWARD_FIELDS.get(fieldPath);
  if (!field) throw new Error(`fieldRef ${fieldPath} is not supported by the process kubelet`);
  return field(pod);
}

/**
 * fsGroup with fsGroupChangePolicy OnRootMismatch: the volume root gets group fsGroup and
 * setgid+group rwx; the tree below is only re-grouped when the root's group differs. Group
 * write is not forced on files below: PostgreSQL refuses a data dir with group write.
 */
async function applyFsGroup(path: string, fsGroup: number): Promise<void> {
  const st = await stat(path);
  if (st.gid === fsGroup && (st.mode & 0o2070) === 0o2070) return;
  const walk = async (p: string): Promise<void> => {
    const s = await lstat(p);
    if (s.isSymbolicLink()) return;
    await chown(p, s.uid, fsGroup);
    if (s.isDirectory()) for (const e of await readdir(p)) await walk(join(p, e));
  };
  await walk(path);
  await chmod(path, (st.mode & 0o777) | 0o2070);
}
