/**
 * `pgpilot operator` settings, parsed by commander exactly as src/cli/main.ts does: from flags,
 * from PGPILOT_* environment variables (the Helm chart's contract), and from defaults.
 */
import { existsSync } from 'node:fs';
import { Command } from 'commander';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { operatorOptions, operatorSettingsProblem, parseBackupStore, parseNamespaceCredentials, type OperatorSettings } from './operator-config.js';

const SERVICE_ACCOUNT_NAMESPACE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

/** Parse operator flags with the given environment; commander errors throw instead of exiting. */
function parse(argv: string[] = [], env: Record<string, string> = {}): OperatorSettings {
  for (const [name, value] of Object.entries(env)) vi.stubEnv(name, value);
  const command = new Command('operator').exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
  for (const option of operatorOptions()) command.addOption(option);
  command.parse(argv, { from: 'user' });
  return command.opts<OperatorSettings>();
}

beforeEach(() => {
  // Start from an environment without the operator's variables, whatever the shell has.
  for (const name of Object.keys(process.env)) if (name.startsWith('PGPILOT_')) vi.stubEnv(name, undefined);
});
afterEach(() => {
  vi.unstubAllEnvs();
});

describe('operator settings', () => {
  it('has these defaults', () => {
    const { namespace: _namespace, ...settings } = parse();
    expect(settings).toEqual({
      watchNamespaces: [],
      leaderElect: true,
      leaseName: 'pgpilot-operator-leader',
      httpPort: 8080,
      httpHost: '0.0.0.0',
      logLevel: 'info',
      concurrency: 10,
      resyncSeconds: 300,
      discoverySeconds: 60,
      instanceImageRepository: 'ghcr.io/pgpilot/postgresql',
      operatorImage: 'ghcr.io/pgpilot/pgpilot:0.1.0',
      webhookPort: 0,
      webhookService: 'pgpilot-webhook',
      webhookConfiguration: '',
      webhookCaSecret: 'pgpilot-webhook-ca',
      defaultBackupStoreNamespaces: [],
      defaultBackupStoreNamespaceCredentials: {},
    });
  });

  it('reads the webhook settings from the environment, and refuses a webhook URL that is not https', () => {
    const s = parse([], { PGPILOT_WEBHOOK_PORT: '9443', PGPILOT_WEBHOOK_URL: 'https://127.0.0.1:9443/', PGPILOT_WEBHOOK_CONFIGURATION: 'pgpilot-webhook' });
    expect([s.webhookPort, s.webhookUrl, s.webhookConfiguration]).toEqual([9443, 'https://127.0.0.1:9443', 'pgpilot-webhook']);
    expect(() => parse(['--webhook-url', 'http://127.0.0.1:9443'])).toThrow(/must be an https:\/\/ URL/);
  });

  it('reads the webhook certificate directory (OLM\'s), which leaves nothing to inject: no URL or configuration beside it', () => {
    const s = parse([], { PGPILOT_WEBHOOK_PORT: '9443', PGPILOT_WEBHOOK_CERT_DIR: '/tmp/k8s-webhook-server/serving-certs' });
    expect([s.webhookPort, s.webhookCertDir]).toEqual([9443, '/tmp/k8s-webhook-server/serving-certs']);
    expect(operatorSettingsProblem(s)).toBeUndefined();
    expect(parse(['--webhook-port', '9443', '--webhook-cert-dir', '/certs']).webhookCertDir).toBe('/certs');
    expect(() => parse(['--webhook-cert-dir', ' '])).toThrow(/--webhook-cert-dir <dir>' argument ' ' is invalid. must not be empty/);
    expect(() => parse(['--webhook-cert-dir', '/certs', '--webhook-url', 'https://127.0.0.1:9443'])).toThrow(/--webhook-cert-dir <dir>' cannot be used with option '--webhook-url <url>'/);
    expect(() => parse(['--webhook-cert-dir', '/certs'], { PGPILOT_WEBHOOK_CONFIGURATION: 'vwc' })).toThrow(/cannot be used with environment variable 'PGPILOT_WEBHOOK_CONFIGURATION'/);
  });

  it('refuses a webhook certificate directory without a webhook port, naming both options', () => {
    expect(operatorSettingsProblem(parse(['--webhook-cert-dir', '/certs']))).toMatch(/^--webhook-cert-dir \(PGPILOT_WEBHOOK_CERT_DIR\) needs --webhook-port \(PGPILOT_WEBHOOK_PORT\)/);
    expect(operatorSettingsProblem(parse())).toBeUndefined();
  });

  it.skipIf(existsSync(SERVICE_ACCOUNT_NAMESPACE))('puts the leader Lease in namespace "default" outside a pod', () => {
    expect(parse().namespace).toBe('default');
  });

  it('reads every flag', () => {
    const settings = parse([
      '--kubeconfig', '/tmp/kc',
      '--namespace', 'ops',
      '--watch-namespaces', 'a, b ,c',
      '--leader-elect', 'false',
      '--lease-name', 'l',
      '--http-port', '9090',
      '--http-host', '127.0.0.9',
      '--log-level', 'debug',
      '--concurrency', '3',
      '--resync-seconds', '60',
      '--discovery-seconds', '5',
      '--instance-image-repository', 'reg/pg',
      '--operator-image', 'reg/op:1',
      '--webhook-port', '9443',
      '--webhook-service', 'svc',
      '--webhook-url', 'https://op.example:9443',
      '--webhook-configuration', 'vwc',
      '--webhook-ca-secret', 'ca',
    ]);
    expect(settings).toEqual({
      kubeconfig: '/tmp/kc',
      namespace: 'ops',
      watchNamespaces: ['a', 'b', 'c'],
      leaderElect: false,
      leaseName: 'l',
      httpPort: 9090,
      httpHost: '127.0.0.9',
      logLevel: 'debug',
      concurrency: 3,
      resyncSeconds: 60,
      discoverySeconds: 5,
      instanceImageRepository: 'reg/pg',
      operatorImage: 'reg/op:1',
      webhookPort: 9443,
      webhookService: 'svc',
      webhookUrl: 'https://op.example:9443',
      webhookConfiguration: 'vwc',
      webhookCaSecret: 'ca',
      defaultBackupStoreNamespaces: [],
      defaultBackupStoreNamespaceCredentials: {},
    });
  });

  it('reads the namespaces that may use the default store and their scoped credentials, refusing bad names', () => {
    const s = parse([], { PGPILOT_DEFAULT_BACKUP_STORE_NAMESPACES: 'team-a, team-b', PGPILOT_DEFAULT_BACKUP_STORE_NAMESPACE_CREDENTIALS: '{"team-c":"team-c-keys"}' });
    expect(s.defaultBackupStoreNamespaces).toEqual(['team-a', 'team-b']);
    expect(s.defaultBackupStoreNamespaceCredentials).toEqual({ 'team-c': 'team-c-keys' });
    expect(() => parse(['--default-backup-store-namespaces', 'Team_A'])).toThrow(/"Team_A" is not a valid namespace name/);
    expect(() => parseNamespaceCredentials('["team-a"]')).toThrow(/must be a JSON object/);
    expect(() => parseNamespaceCredentials('{"team-a": 3}')).toThrow(/team-a: must name a Secret/);
    expect(() => parseNamespaceCredentials('{"Team A": "x"}')).toThrow(/not a valid namespace name/);
  });

  it('gives every option but --kubeconfig an environment variable PGPILOT_<FLAG>', () => {
    for (const option of operatorOptions()) {
      const expected = option.long === '--kubeconfig' ? undefined : `PGPILOT_${option.long!.slice(2).replace(/-/g, '_').toUpperCase()}`;
      expect(option.envVar, option.long).toBe(expected);
    }
  });

  it('honours the environment variables', () => {
    const settings = parse([], {
      PGPILOT_NAMESPACE: 'ops',
      PGPILOT_WATCH_NAMESPACES: 'team-a,team-b',
      PGPILOT_LEADER_ELECT: 'no',
      PGPILOT_LEASE_NAME: 'lease',
      PGPILOT_HTTP_PORT: '9000',
      PGPILOT_HTTP_HOST: '10.1.2.3',
      PGPILOT_LOG_LEVEL: 'warn',
      PGPILOT_CONCURRENCY: '20',
      PGPILOT_RESYNC_SECONDS: '600',
      PGPILOT_INSTANCE_IMAGE_REPOSITORY: 'reg/pg',
      PGPILOT_OPERATOR_IMAGE: 'reg/op:2',
    });
    expect(settings).toMatchObject({
      namespace: 'ops',
      watchNamespaces: ['team-a', 'team-b'],
      leaderElect: false,
      leaseName: 'lease',
      httpPort: 9000,
      httpHost: '10.1.2.3',
      logLevel: 'warn',
      concurrency: 20,
      resyncSeconds: 600,
      instanceImageRepository: 'reg/pg',
      operatorImage: 'reg/op:2',
    });
  });

  it('prefers a flag over its environment variable', () => {
    expect(parse(['--concurrency', '2'], { PGPILOT_CONCURRENCY: '20' }).concurrency).toBe(2);
  });

  it.each(['true', 'TRUE', '1', 'yes'])('reads --leader-elect %s as true', (v) => {
    expect(parse(['--leader-elect', v], { PGPILOT_LEADER_ELECT: 'false' }).leaderElect).toBe(true);
  });

  it.each(['false', 'False', '0', 'no'])('reads --leader-elect %s as false', (v) => {
    expect(parse(['--leader-elect', v]).leaderElect).toBe(false);
  });

  it('reads an empty namespace list as all namespaces', () => {
    expect(parse([], { PGPILOT_WATCH_NAMESPACES: '' }).watchNamespaces).toEqual([]);
  });

  it.each([
    [['--concurrency', '0'], /--concurrency.*must be an integer from 1 to 100, got "0"/],
    [['--concurrency', '101'], /--concurrency.*from 1 to 100/],
    [['--concurrency', '2.5'], /--concurrency.*from 1 to 100/],
    [['--concurrency', 'many'], /--concurrency.*from 1 to 100/],
    [['--http-port', '70000'], /--http-port.*must be an integer from 0 to 65535, got "70000"/],
    [['--resync-seconds', '5'], /--resync-seconds.*from 10 to 86400/],
    [['--discovery-seconds', '0'], /--discovery-seconds.*from 1 to 3600/],
    [['--leader-elect', 'maybe'], /--leader-elect.*must be true or false, got "maybe"/],
    [['--log-level', 'loud'], /--log-level.*'loud'.*Allowed choices are trace, debug, info, warn, error/],
    [['--watch-namespaces', 'ok,Bad_NS'], /--watch-namespaces.*"Bad_NS" is not a valid namespace name/],
    [['--no-such-flag'], /unknown option '--no-such-flag'/],
  ])('refuses %j, naming the flag and what it accepts', (argv, message) => {
    expect(() => parse(argv)).toThrow(message);
  });

  it.each([
    ['PGPILOT_CONCURRENCY', '0', /--concurrency.*from env 'PGPILOT_CONCURRENCY'.*from 1 to 100/],
    ['PGPILOT_HTTP_PORT', '70000', /--http-port.*from env 'PGPILOT_HTTP_PORT'.*from 0 to 65535/],
    ['PGPILOT_LEADER_ELECT', 'maybe', /--leader-elect.*from env 'PGPILOT_LEADER_ELECT'.*true or false/],
    ['PGPILOT_LOG_LEVEL', 'loud', /--log-level.*from env 'PGPILOT_LOG_LEVEL'.*Allowed choices/],
    ['PGPILOT_WATCH_NAMESPACES', 'Bad_NS', /--watch-namespaces.*from env 'PGPILOT_WATCH_NAMESPACES'.*"Bad_NS"/],
  ])('refuses %s=%s, naming the variable, the flag and what it accepts', (name, value, message) => {
    expect(() => parse([], { [name]: value })).toThrow(message);
  });

  // Regression (fixed): integer() in operator-config.ts converts with Number(), which reads "" and " " as 0
  // and accepts "1e2" and "0x10". An empty PGPILOT_HTTP_PORT (set by hand: the chart's values
  // schema guards its own) silently starts the probe server on a random port, so probes fail.
  it.each([
    ['PGPILOT_HTTP_PORT', ''],
    ['PGPILOT_HTTP_PORT', ' '],
    ['PGPILOT_CONCURRENCY', '1e1'],
    ['PGPILOT_CONCURRENCY', '0x10'],
  ])('refuses %s=%j, which is not a decimal integer', (name, value) => {
    expect(() => parse([], { [name]: value })).toThrow(/is invalid/);
  });

  describe('--default-backup-store / PGPILOT_DEFAULT_BACKUP_STORE', () => {
    const minimal = { bucket: 'pg-backups', credentials: { secretName: 'pgpilot-backup-credentials' } };
    const defaulted = {
      bucket: 'pg-backups',
      path: 'pgpilot',
      region: 'us-east-1',
      forcePathStyle: false,
      checksums: 'WHEN_SUPPORTED',
      insecureSkipTlsVerify: false,
      credentials: { secretName: 'pgpilot-backup-credentials', accessKeyIdKey: 'ACCESS_KEY_ID', secretAccessKeyKey: 'ACCESS_SECRET_KEY' },
    };

    it('is unset by default (no default store)', () => {
      expect(parse().defaultBackupStore).toBeUndefined();
    });

    it('reads the JSON of an S3 store from the flag and fills in the schema defaults', () => {
      expect(parse(['--default-backup-store', JSON.stringify(minimal)]).defaultBackupStore).toEqual(defaulted);
    });

    it('reads it from the environment, keeping every field given', () => {
      const full = {
        endpoint: 'https://minio.storage:9000',
        bucket: 'pg-backups',
        path: 'team/eu',
        region: 'eu-west-3',
        forcePathStyle: true,
        checksums: 'WHEN_REQUIRED',
        insecureSkipTlsVerify: true,
        serverSideEncryption: { algorithm: 'aws:kms', kmsKeyId: 'arn:aws:kms:eu-west-3:1:key/k' },
        credentials: { secretName: 's3', accessKeyIdKey: 'id', secretAccessKeyKey: 'key' },
      };
      expect(parse([], { PGPILOT_DEFAULT_BACKUP_STORE: JSON.stringify(full) }).defaultBackupStore).toEqual(full);
    });

    it('does not change the object it was given', () => {
      const given = structuredClone(minimal);
      parseBackupStore(JSON.stringify(given));
      expect(given).toEqual(minimal);
    });

    it.each<[string, unknown, RegExp]>([
      ['not JSON', 'bucket=pg', /must be a JSON object with the fields of spec\.backup\.s3/],
      ['a JSON array', [minimal], /must be a JSON object/],
      ['no bucket', { credentials: minimal.credentials }, /bucket: is required/],
      ['no credentials', { bucket: 'pg-backups' }, /credentials: is required/],
      ['credentials without secretName', { ...minimal, credentials: {} }, /credentials\.secretName: is required/],
      ['a bucket S3 does not allow', { ...minimal, bucket: 'PG_Backups' }, /bucket: .*match/],
      ['an endpoint without scheme', { ...minimal, endpoint: 'minio:9000' }, /endpoint: .*match/],
      ['a path with a leading "/"', { ...minimal, path: '/pgpilot' }, /path: .*match/],
      ['an unknown checksums mode', { ...minimal, checksums: 'NEVER' }, /checksums: must be one of WHEN_SUPPORTED, WHEN_REQUIRED/],
      ['a string for forcePathStyle', { ...minimal, forcePathStyle: 'yes' }, /forcePathStyle: Expected boolean/],
      ['an unknown encryption', { ...minimal, serverSideEncryption: { algorithm: 'rot13' } }, /serverSideEncryption\.algorithm: must be one of AES256, aws:kms/],
      ['a KMS key with AES256', { ...minimal, serverSideEncryption: { algorithm: 'AES256', kmsKeyId: 'k' } }, /serverSideEncryption\.kmsKeyId: is only allowed with algorithm aws:kms/],
      ['a misspelt field', { ...minimal, forcePathstyle: true }, /unknown field forcePathstyle/],
      ['a misspelt nested field', { ...minimal, credentials: { ...minimal.credentials, secretKey: 'k' } }, /unknown field credentials\.secretKey/],
    ])('refuses %s, naming the flag and the field', (_what, store, message) => {
      const json = typeof store === 'string' ? store : JSON.stringify(store);
      expect(() => parse(['--default-backup-store', json])).toThrow(/--default-backup-store/);
      expect(() => parse(['--default-backup-store', json])).toThrow(message);
    });

    it('names the environment variable when the value came from it', () => {
      expect(() => parse([], { PGPILOT_DEFAULT_BACKUP_STORE: '{"bucket":"pg-backups"}' })).toThrow(/--default-backup-store.*from env 'PGPILOT_DEFAULT_BACKUP_STORE'.*credentials: is required/);
    });
  });
});
