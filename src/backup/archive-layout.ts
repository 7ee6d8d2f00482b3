// Keys of a cluster's archive inside its location (pure). Everything of one cluster lives under
// ArchiveLocation.path:
//
//   <path>/archive.json                         which database this archive belongs to (system id)
//   <path>/wal/<timeline+log, 16 hex>/<segment>.gz   WAL segments, gzip, x-amz-meta-sha256 of the raw bytes
//   <path>/wal/<timeline>.history.gz            timeline history files (and *.partial, *.backup)
//   <path>/base/<backup id>/data.tar.gz         base backup: tar of PGDATA, gzip
//   <path>/base/<backup id>/backup.json         its manifest (BackupManifest), written last:
//                                               a backup without one is incomplete
export const archiveKeys = {
  identity: (path: string) => `${path}/archive.json`,
  walPrefix: (path: string) => `${path}/wal/`,
  /** Segment names (24 hex) are grouped by timeline+log id; other WAL files sit at the top. */
  wal(path: string, fileName: string): string {
    return /^[0-9A-F]{24}$/.test(fileName) ? `${path}/wal/${fileName.slice(0, 16)}/${fileName}.gz` : `${path}/wal/${fileName}.gz`;
  },
  basePrefix: (path: string) => `${path}/base/`,
  baseData: (path: string, id: string) => `${path}/base/${id}/data.tar.gz`,
  baseManifest: (path: string, id: string) => `${path}/base/${id}/backup.json`,
};

/** The WAL file name a key holds, or null for other keys. */
export function walFileOfKey(key: string): string | null {
  const m = /\/wal\/(?:[0-9A-F]{16}\/)?([^/]+)\.gz$/.exec(key);
  return m ? m[1]! : null;
}

/** Metadata key holding the hex sha256 of an object's uncompressed content. */
export const SHA256_METADATA = 'sha256';

/** Content of archive.json: refuses to mix two databases' WAL in one place. */
export interface ArchiveIdentity {
  systemIdentifier: string;
  cluster: string;
  namespace: string;
  createdAt: string;
}

/** backup.json: everything a restore and the retention need about one base backup. */
export interface BackupManifest {
  /** UTC start time, e.g. 20261125T020000Z; also the folder name. */
  id: string;
  cluster: string;
  namespace: string;
  /** The PostgreSQLBackup resource that took it. */
  backupName: string;
  systemIdentifier: string;
  postgresVersion: string;
  /** Instance it was taken from, and whether that was a replica. */
  instance: string;
  fromReplica: boolean;
  timeline: number;
  startLsn: string;
  stopLsn: string;
  /** First WAL segment the backup needs (on `timeline`), and the one holding stopLsn. */
  startWal: string;
  stopWal: string;
  /** RFC 3339. stopTime: the backup is consistent from then on (earliest recovery target). */
  startTime: string;
  stopTime: string;
  compression: { algorithm: 'gzip'; level: number };
  /** Bytes of the tar before and after compression, and their sha256 (hex). */
  dataBytes: number;
  storedBytes: number;
  dataSha256: string;
  storedSha256: string;
}
