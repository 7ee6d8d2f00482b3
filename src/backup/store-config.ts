// The resolved backup destination handed to pods (instance agent, backup Job, restore): built by
// the operator from spec.backup (or the operator-wide default store, or a recovery source) and
// passed as JSON in an environment variable. Credentials never travel in it: it names where to
// read them — files of a mounted Secret volume (what the operator gives pods: postgres, which
// inherits the agent's environment, never holds a key) or, for tools and tests, environment
// variables.
/** S3 credentials as files, read at each use (a rotated Secret is picked up without a restart). */
export interface S3CredentialFiles {
  accessKeyIdFile: string;
  secretAccessKeyFile: string;
}

/** S3 credentials in environment variables (tools and tests; pods get files). */
export interface S3CredentialEnv {
  accessKeyIdEnv: string;
  secretAccessKeyEnv: string;
}

export type S3StoreConfig = S3StoreSettings & (S3CredentialFiles | S3CredentialEnv);

export interface S3StoreSettings {
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

