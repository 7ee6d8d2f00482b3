// Object stores as the APIs name them (spec.backup, a recovery source, the operator-wide default
// store, PostgreSQLBackup): S3 buckets and ReadWriteMany volumes.
import { Type, type Static } from '@sinclair/typebox';
import { DEFAULTS } from './defaults.js';
import { Obj, StringEnum, cel } from './schema-helpers.js';

/** A path inside a store: segments of safe key characters, no leading or trailing "/", none starting with "." (no "." or ".."). */
export const STORE_PATH_PATTERN = '^[A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$';
const STORE_PATH_RULE = 'segments of letters, digits, ".", "_" and "-" separated by "/", with no leading or trailing "/" and no segment starting with "."';

const SECRET_KEY_PATTERN = '^[-._a-zA-Z0-9]+$';
const DNS_SUBDOMAIN_PATTERN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$';

export const StorePath = (what: string, options: Record<string, unknown> = {}) =>
  Type.String({ description: `${what} Path syntax: ${STORE_PATH_RULE}.`, minLength: 1, maxLength: 512, pattern: STORE_PATH_PATTERN, ...options });

export const S3CredentialsSchema = Obj(
  'The Secret with the access key of the S3 store, in the cluster\'s namespace; pods read it as files of a read-only Secret volume (never environment variables), the operator never reads it.',
  {
    secretName: Type.String({ description: 'Name of the Secret.', minLength: 1, maxLength: 253, pattern: DNS_SUBDOMAIN_PATTERN }),
    accessKeyIdKey: Type.Optional(
      Type.String({ description: 'Key of the access key id in the Secret.', default: DEFAULTS.accessKeyIdKey, minLength: 1, maxLength: 253, pattern: SECRET_KEY_PATTERN }),
    ),
    secretAccessKeyKey: Type.Optional(
      Type.String({ description: 'Key of the secret access key in the Secret.', default: DEFAULTS.secretAccessKeyKey, minLength: 1, maxLength: 253, pattern: SECRET_KEY_PATTERN }),
    ),
  },
);

/** An S3 (or S3-compatible) bucket: spec.backup.s3, a recovery source, the operator-wide default store. */
export const S3TargetSchema = Obj('An S3 or S3-compatible object store (AWS S3, MinIO, Ceph RGW, ...).', {
  endpoint: Type.Optional(
    Type.String({ description: 'URL of an S3-compatible server, e.g. "https://minio.storage:9000"; omit for AWS S3.', minLength: 8, maxLength: 2048, pattern: '^https?://[^\\s]+$' }),
  ),
  bucket: Type.String({
    description: 'Bucket name (3–63 characters: lowercase letters, digits, "." and "-", starting and ending with a letter or digit).',
    minLength: 3,
    maxLength: 63,
    pattern: '^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$',
  }),
  path: Type.Optional(StorePath('Prefix of this operator\'s objects in the bucket; a cluster\'s archive sits at <path>/<namespace>/<cluster>.', { default: DEFAULTS.backupPath })),
  region: Type.Optional(Type.String({ description: 'Region of the bucket (S3-compatible servers usually accept any).', default: DEFAULTS.region, minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' })),
  forcePathStyle: Type.Optional(
    Type.Boolean({ description: 'Address the bucket as <endpoint>/<bucket> rather than <bucket>.<endpoint> (most S3-compatible servers need this).', default: false }),
  ),
  checksums: Type.Optional(
    StringEnum(['WHEN_SUPPORTED', 'WHEN_REQUIRED'] as const, {
      description:
        'When request and response checksums are computed and validated. WHEN_SUPPORTED (default) always; WHEN_REQUIRED only where S3 requires them, for S3-compatible servers such as s3rver or older MinIO that mishandle streamed checksums (pgpilot still checks a sha256 of every object).',
      default: DEFAULTS.checksums,
    }),
  ),
  insecureSkipTlsVerify: Type.Optional(
    Type.Boolean({ description: 'Do not verify the server\'s TLS certificate. For self-signed test servers only.', default: false }),
  ),
  serverSideEncryption: Type.Optional(
    Obj(
      'Server-side encryption of every object written.',
      {
        algorithm: StringEnum(['AES256', 'aws:kms'] as const, { description: 'AES256 (S3-managed keys) or aws:kms (a KMS key).' }),
        kmsKeyId: Type.Optional(Type.String({ description: 'KMS key id or ARN, with algorithm aws:kms; the bucket\'s default KMS key when omitted.', minLength: 1, maxLength: 2048 })),
      },
      {
        ...cel({
          rule: "!has(self.kmsKeyId) || self.algorithm == 'aws:kms'",
          message: 'kmsKeyId is only allowed with algorithm aws:kms',
          fieldPath: '.kmsKeyId',
        }),
      },
    ),
  ),
  credentials: S3CredentialsSchema,
});

/** A ReadWriteMany PersistentVolumeClaim used as the store. */
export const VolumeTargetSchema = Obj(
  'A ReadWriteMany PersistentVolumeClaim used as the store (NFS, CephFS, ...): mounted by the instances (WAL archiving) and by backup and restore pods.',
  {
    claimName: Type.String({
      description: 'Name of the PersistentVolumeClaim, in the cluster\'s namespace; it must be ReadWriteMany.',
      minLength: 1,
      maxLength: 253,
      pattern: DNS_SUBDOMAIN_PATTERN,
    }),
    path: Type.Optional(StorePath('Directory of this operator\'s files on the volume; a cluster\'s archive sits at <path>/<namespace>/<cluster>.', { default: DEFAULTS.backupPath })),
  },
);

/** Which instance base backups are taken from (spec.backup.target, PostgreSQLBackup spec.target). */
export const BACKUP_TARGETS = ['prefer-standby', 'primary'] as const;
export const BackupTargetSchema = (description: string, options: Record<string, unknown> = {}) =>
  StringEnum(BACKUP_TARGETS, { description, ...options });

export type S3Credentials = Static<typeof S3CredentialsSchema>;
export type S3Target = Static<typeof S3TargetSchema>;
export type VolumeTarget = Static<typeof VolumeTargetSchema>;
export type BackupTarget = (typeof BACKUP_TARGETS)[number];
