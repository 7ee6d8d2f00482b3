// Capacity and use of the instance's volumes, from statfs, for the operator's storage auto-grow
// (InstanceStatus.volumes): the data directory's file system, and pg_wal's when it has its own.
import { statfs } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { VolumeUsage } from './api-types.js';
import { usedPercent } from './archiving.js';

/** statfs of `path`, or of its parent while it does not exist yet (the mount point holds it). */
async function usageOf(volume: VolumeUsage['volume'], path: string): Promise<VolumeUsage | null> {
  for (const p of [path, dirname(path)]) {
    try {
      const s = await statfs(p);
      return {
        volume,
        capacityBytes: s.blocks * s.bsize,
        usedBytes: (s.blocks - s.bfree) * s.bsize,
        availableBytes: s.bavail * s.bsize,
        usedPercent: usedPercent(s) ?? 0,
      };
    } catch {
      /* try the parent */
    }
  }
  return null;
}

/** The data volume, and the WAL volume when pg_wal has its own (walDir). Measured on every call: statfs is cheap. */
export async function volumeUsage(pgdata: string, walDir: string | undefined): Promise<VolumeUsage[]> {
  const all = await Promise.all([usageOf('data', pgdata), ...(walDir ? [usageOf('wal', walDir)] : [])]);
  return all.filter((v): v is VolumeUsage => v !== null);
}
