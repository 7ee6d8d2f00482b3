// The resolved backup destination handed to pods (instance agent, backup Job, restore): built by
// the operator from spec.backup (or the operator-wide default store, or a recovery source) and
// passed as JSON in an environment variable. Credentials never travel in it: they come from
// environment variables that reference the Secret (see credentialEnv in the builders).
export interface S3StoreConfig {
  kind: 's3';
  /** https://host:port, or omitted for AWS. */
  endpoint?: string;
  bucket: string;
  region: string;
  forcePathStyle: boolean;
  /** WHEN_REQUIRED for S3-compatible servers that mishandle streamed checksums (s3rver, older MinIO). */
  checksums: 'WHEN_SUPPORTED' | 'WHEN_REQUIRED';
  /** Server-side encryption of every object written. */
  serverSideEncryption?: { algorithm: 'AES256' | 'aws:kms'; kmsKeyId?: string };
  /** Skip TLS certificate verification (self-signed test servers only). */
  insecureSkipTlsVerify?: boolean;
  /** Names of the environment variables holding the access key id and secret key. */
  accessKeyIdEnv: string;
  secretAccessKeyEnv: string;
}

export interface VolumeStoreConfig {
  kind: 'volume';
  /** Mount path of the backup volume inside the pod. */
  path: string;
}

/** A store plus the cluster's root path inside it (no leading or trailing "/"). */
export interface ArchiveLocation {
  store: S3StoreConfig | VolumeStoreConfig;
  /** e.g. "pgpilot/production/prod-db": prefix / namespace / cluster. */
  path: string;
}

