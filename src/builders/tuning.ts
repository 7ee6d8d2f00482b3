// Settings tuned from the instance's resources (pure). The reference is pgtune's published
// formulas (profiles web, oltp, olap = pgtune's "dw", mixed; storage ssd, hdd, san), with three
// deliberate differences, each kept so that an operator upgrade restarts no running instance:
//   - shared_buffers is never below PostgreSQL's default 128MB;
//   - max_worker_processes is never below PostgreSQL's default 8 (parallel settings apply from 1 core);
//   - wal_buffers is set only with spec.postgresql.tuning (without it PostgreSQL's own rule,
//     1/32 of shared_buffers up to 16MB, gives nearly pgtune's value).
// max_wal_size is also capped by the volume holding pg_wal: pgtune assumes a disk, not a claim.
// Every value carries its reason; user parameters win (postgres-config.ts), and the status shows both.
import type { ClusterSpec, STORAGE_TYPES, TUNING_PROFILES } from '../api/cluster.js';
import { parseQuantity } from '../api/quantity.js';

export type TuningProfile = (typeof TUNING_PROFILES)[number];
export type StorageType = (typeof STORAGE_TYPES)[number];

export const DEFAULT_PROFILE: TuningProfile = 'mixed';
export const DEFAULT_STORAGE_TYPE: StorageType = 'ssd';

const KB = 1024;
const MB = KB * KB;
const GB = MB * KB;

/** pgtune's max_connections per profile (mixed: PostgreSQL's default, 100). */
export const PROFILE_CONNECTIONS: Record<TuningProfile, number> = { web: 200, oltp: 300, olap: 40, mixed: 100 };
/** pgtune's min_wal_size / max_wal_size per profile. */
const PROFILE_WAL: Record<TuningProfile, [number, number]> = { web: [1 * GB, 4 * GB], oltp: [2 * GB, 8 * GB], olap: [4 * GB, 16 * GB], mixed: [1 * GB, 4 * GB] };
const RANDOM_PAGE_COST: Record<StorageType, string> = { ssd: '1.1', hdd: '4', san: '1.1' };
const IO_CONCURRENCY: Record<StorageType, string> = { ssd: '200', hdd: '2', san: '300' };

export interface TunedSetting {
  value: string;
  reason: string;
}

export interface Tuning {
  profile: TuningProfile;
  storageType: StorageType;
  /** The memory and CPU the values come from (limits, else requests), as given. */
  memory?: string;
  cpu?: string;
  /** The max_connections the per-connection values assume. */
  connections: number;
  settings: Record<string, TunedSetting>;
}

/** Whole kB, written in MB when it is whole MB: "2048MB", "5242kB" (as pgtune writes them). */
export function sizeSetting(bytes: number): string {
  const kb = Math.max(1, Math.floor(bytes / KB));
  return kb % 1024 === 0 ? `${kb / 1024}MB` : `${kb}kB`;
}

/** Whole MB: shared_buffers as pgpilot always wrote it (a restart setting: its text must not change under running instances). */
const mib = (bytes: number) => `${Math.floor(bytes / MB)}MB`;

function memorySettings(t: Tuning, bytes: number, parallelPerGather: number, explicit: boolean): void {
  const s = t.settings;
  const quarter = bytes / 4;
  const sharedBuffers = Math.max(128 * MB, quarter);
  s.shared_buffers = { value: mib(sharedBuffers), reason: quarter >= 128 * MB ? `25% of ${t.memory} memory` : `PostgreSQL's default 128MB (25% of ${t.memory} would be less)` };
  s.effective_cache_size = { value: sizeSetting(bytes * 0.75), reason: `75% of ${t.memory} memory: what the planner may assume the OS and shared_buffers cache` };
  const maintenanceShare = t.profile === 'olap' ? 8 : 16;
  const maintenance = Math.min(bytes / maintenanceShare, 2 * GB);
  s.maintenance_work_mem = { value: sizeSetting(maintenance), reason: maintenance === 2 * GB ? `1/${maintenanceShare} of memory, at most 2GB` : `1/${maintenanceShare} of ${t.memory} memory (${t.profile})` };
  // pgtune: (RAM - shared_buffers) / (max_connections * 3) / workers per gather, halved for olap and mixed, at least 64kB.
  const divisor = t.profile === 'olap' || t.profile === 'mixed' ? 2 : 1;
  const workMem = Math.max(64 * KB, (bytes - sharedBuffers) / (t.connections * 3) / parallelPerGather / divisor);
  s.work_mem = {
    value: sizeSetting(workMem),
    reason: `(memory - shared_buffers) / (${t.connections} connections × 3)${parallelPerGather > 1 ? ` / ${parallelPerGather} workers per gather` : ''}${divisor > 1 ? ` / 2 (${t.profile})` : ''}`,
  };
  if (explicit) {
    // pgtune: 3% of shared_buffers, at most 16MB (and 16MB from 14MB up), at least 32kB.
    let wal = Math.min(sharedBuffers * 0.03, 16 * MB);
    if (wal > 14 * MB) wal = 16 * MB;
    s.wal_buffers = { value: sizeSetting(Math.max(32 * KB, wal)), reason: '3% of shared_buffers, at most 16MB' };
  }
}

function cpuSettings(t: Tuning, cores: number): number {
  const s = t.settings;
  const perGather = t.profile === 'olap' ? Math.ceil(cores / 2) : Math.min(4, Math.ceil(cores / 2));
  s.max_worker_processes = { value: String(Math.max(8, cores)), reason: cores > 8 ? `${cores} cores` : `PostgreSQL's default 8 (${cores} cores)` };
  s.max_parallel_workers = { value: String(cores), reason: `${cores} cores` };
  s.max_parallel_workers_per_gather = { value: String(perGather), reason: `half of ${cores} cores${t.profile === 'olap' ? '' : ', at most 4'}` };
  s.max_parallel_maintenance_workers = { value: String(Math.min(4, Math.ceil(cores / 2))), reason: `half of ${cores} cores, at most 4` };
  return perGather;
}

function walSizes(t: Tuning, spec: ClusterSpec): void {
  const [min, max] = PROFILE_WAL[t.profile];
  const volume = spec.walStorage?.size ?? spec.storage?.size;
  const room = volume === undefined ? Infinity : parseQuantity(volume) / 4;
  const maxWal = Math.max(64 * MB, Math.min(max, room));
  const which = spec.walStorage ? 'the WAL volume' : 'the data volume (it holds pg_wal)';
  t.settings.max_wal_size = { value: sizeSetting(maxWal), reason: maxWal < max ? `a quarter of ${which}, ${volume} (${t.profile} would take ${sizeSetting(max)})` : `${t.profile} profile` };
  const minWal = Math.min(min, maxWal / 4);
  t.settings.min_wal_size = { value: sizeSetting(minWal), reason: minWal < min ? 'a quarter of max_wal_size' : `${t.profile} profile` };
}

/** The memory and CPU an instance may use: limits, else requests. */
function resourcesOf(spec: ClusterSpec): { memory?: string; cpu?: string } {
  const r = spec.resources;
  const memory = r?.limits?.memory ?? r?.requests?.memory;
  const cpu = r?.limits?.cpu ?? r?.requests?.cpu;
  return { ...(memory !== undefined ? { memory: String(memory) } : {}), ...(cpu !== undefined ? { cpu: String(cpu) } : {}) };
}

/** Pure: the tuned settings of a cluster with their reasons (user parameters are applied later and win). */
export function computeTuning(spec: ClusterSpec): Tuning {
  const asked = spec.postgresql?.tuning;
  const profile = asked?.profile ?? DEFAULT_PROFILE;
  const storageType = asked?.storageType ?? DEFAULT_STORAGE_TYPE;
  const userConnections = spec.postgresql?.parameters?.max_connections;
  const connections = Number(userConnections ?? asked?.maxConnections ?? PROFILE_CONNECTIONS[profile]) || PROFILE_CONNECTIONS[profile];
  const t: Tuning = { profile, storageType, ...resourcesOf(spec), connections, settings: {} };
  t.settings.max_connections = {
    value: String(asked?.maxConnections ?? PROFILE_CONNECTIONS[profile]),
    reason: asked?.maxConnections !== undefined ? 'spec.postgresql.tuning.maxConnections' : `${profile} profile`,
  };
  const cores = t.cpu === undefined ? undefined : Math.max(1, Math.ceil(parseQuantity(t.cpu)));
  const perGather = cores === undefined ? 1 : cpuSettings(t, cores);
  if (t.memory !== undefined) memorySettings(t, parseQuantity(t.memory), perGather, asked !== undefined);
  walSizes(t, spec);
  t.settings.random_page_cost = { value: RANDOM_PAGE_COST[storageType], reason: `${storageType} storage` };
  t.settings.effective_io_concurrency = { value: IO_CONCURRENCY[storageType], reason: `${storageType} storage` };
  if (profile === 'olap') t.settings.default_statistics_target = { value: '500', reason: 'olap profile: better estimates for large analytic queries' };
  return t;
}

/** The tuned values alone, as postgresql.conf parameters. */
export function tunedParameters(spec: ClusterSpec): Record<string, string> {
  return Object.fromEntries(Object.entries(computeTuning(spec).settings).map(([k, v]) => [k, v.value]));
}
