// The Jobs of a major version upgrade (pure). Both run the NEW version's image with the old
// version's PostgreSQL next to it: an init container of the OLD image copies its installation
// into an emptyDir (`pgpilot upgrade copy-install`), as pg_upgrade needs both versions' binaries
// and no image holds two majors.
//   check:   `pgpilot upgrade check` while the cluster runs — a schema-only copy of the primary
//            (through the rw Service, as the superuser) checked with pg_upgrade --check; no volume
//            of the cluster is touched.
//   upgrade: `pgpilot upgrade run` on the stopped primary's volumes — pg_upgrade --link or --copy,
//            then the new data directory swapped in; any failure before the swap puts the old one back.
// backoffLimit 0: a failure is reported, not retried (a retry of the check finds the same thing;
// the upgrade's rollback has put the old version back, and the operator starts it).
import { TLS_CA_DIR, TLS_FILES } from '../api/tls.js';
import type { V1Container, V1EnvVar, V1Job, V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import type { MajorUpgradeStatus } from '../api/cluster-status.js';
import type { PostgreSQLCluster } from '../api/cluster.js';
import { ANNOTATIONS, POSTGRES_PORT } from '../api/constants.js';
import { names } from '../api/names.js';
import { POD_ENV } from '../api/pod-env.js';
import { specOf } from '../api/resolve-spec.js';
import { OLD_INSTALL_MOUNT } from '../postgres/upgrade-layout.js';
import { ownedMeta } from './meta.js';
import { secretNames } from './secrets.js';
import { DATA_MOUNT, POSTGRES_UID, SECRETS_MOUNT, WAL_MOUNT } from './statefulset.js';

export type UpgradeJobKind = 'check' | 'upgrade';

export const upgradeJobName = (cluster: string, kind: UpgradeJobKind) => `${cluster}-${kind === 'check' ? 'upgrade-check' : 'upgrade'}`;

const CHECK_WORK_DIR = '/var/lib/postgresql/upgrade-check';
/** A check copies only the schema; an upgrade in copy mode copies every data file. */
const DEADLINE_SECONDS: Record<UpgradeJobKind, number> = { check: 3600, upgrade: 12 * 3600 };

const RESTRICTED = { runAsNonRoot: true, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' as const } };

/** The claim of an instance's volume: StatefulSet claims are <template>-<set>-<ordinal>. */
const claimOf = (volume: string, instance: string) => `${volume}-${instance}-0`;

function container(name: string, image: string, args: string[], env: V1EnvVar[], mounts: V1VolumeMount[], pullPolicy: string): V1Container {
  return {
    name,
    image,
    imagePullPolicy: pullPolicy,
    args,
    env: [...env, { name: POD_ENV.logLevel, value: 'info' }],
    // The last line a failed command prints is its reason (a JSON log line): the operator shows it.
    terminationMessagePolicy: 'FallbackToLogsOnError',
    securityContext: RESTRICTED,
    volumeMounts: mounts,
  };
}

export function upgradeJob(cluster: PostgreSQLCluster, upgrade: MajorUpgradeStatus, kind: UpgradeJobKind): V1Job {
  const name = cluster.metadata.name!;
  const ns = cluster.metadata.namespace!;
  const spec = specOf(cluster);
  const secrets = secretNames(cluster);
  const hasWal = !!cluster.spec.walStorage;
  const volumes: V1Volume[] = [
    { name: 'old-install', emptyDir: {} },
    { name: 'tmp', emptyDir: {} },
    { name: 'run', emptyDir: {} },
    { name: 'superuser', secret: { secretName: secrets.superuser } },
  ];
  const mounts: V1VolumeMount[] = [
    { name: 'old-install', mountPath: OLD_INSTALL_MOUNT },
    { name: 'tmp', mountPath: '/tmp' },
    { name: 'run', mountPath: '/var/run/postgresql' },
    { name: 'superuser', mountPath: `${SECRETS_MOUNT}/superuser`, readOnly: true },
  ];
  const env: V1EnvVar[] = [
    { name: POD_ENV.oldInstall, value: OLD_INSTALL_MOUNT },
    { name: POD_ENV.secretsDir, value: SECRETS_MOUNT },
    { name: POD_ENV.initdbEncoding, value: spec.initdb.encoding },
    { name: POD_ENV.initdbLocale, value: spec.initdb.locale },
  ];
  if (kind === 'check') {
    volumes.push({ name: 'work', emptyDir: {} });
    mounts.push({ name: 'work', mountPath: CHECK_WORK_DIR });
    env.push({ name: POD_ENV.upgradeSource, value: `${names.rw(name)}.${ns}.svc:${POSTGRES_PORT}` }, { name: POD_ENV.upgradeWorkDir, value: CHECK_WORK_DIR });
    // It reads the running primary over TLS, verified against the cluster's CA.
    volumes.push({ name: 'tls-ca', secret: { secretName: names.caCertSecret(name) } });
    mounts.push({ name: 'tls-ca', mountPath: TLS_CA_DIR, readOnly: true });
    env.push({ name: POD_ENV.tlsCaFile, value: `${TLS_CA_DIR}/${TLS_FILES.ca}` }, { name: POD_ENV.tlsServerName, value: names.tlsServerName(name, ns) });
  } else {
    const primary = upgrade.primary!;
    volumes.push({ name: names.dataVolume, persistentVolumeClaim: { claimName: claimOf(names.dataVolume, primary) } });
    mounts.push({ name: names.dataVolume, mountPath: DATA_MOUNT });
    env.push({ name: 'PGDATA', value: `${DATA_MOUNT}/pgdata` }, { name: POD_ENV.upgradeMode, value: upgrade.mode });
    if (hasWal) {
      volumes.push({ name: names.walVolume, persistentVolumeClaim: { claimName: claimOf(names.walVolume, primary) } });
      mounts.push({ name: names.walVolume, mountPath: WAL_MOUNT });
      env.push({ name: POD_ENV.walDir, value: `${WAL_MOUNT}/pg_wal` });
    }
  }
  const pull = spec.imagePullPolicy;
  const copy = container('copy-old-binaries', upgrade.fromImage, ['upgrade', 'copy-install', OLD_INSTALL_MOUNT], [], [{ name: 'old-install', mountPath: OLD_INSTALL_MOUNT }, { name: 'tmp', mountPath: '/tmp' }], pull);
  const main = container(kind, upgrade.toImage, ['upgrade', kind === 'check' ? 'check' : 'run'], env, mounts, pull);
  const meta = ownedMeta(cluster, upgradeJobName(name, kind), 'upgrade');
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { ...meta, annotations: { [ANNOTATIONS.upgradeStartedAt]: upgrade.startedAt } },
    spec: {
      backoffLimit: 0,
      activeDeadlineSeconds: DEADLINE_SECONDS[kind],
      template: {
        metadata: { labels: meta.labels },
        spec: {
          restartPolicy: 'Never',
          // Nothing in these pods talks to the Kubernetes API.
          automountServiceAccountToken: false,
          securityContext: { runAsNonRoot: true, runAsUser: POSTGRES_UID, runAsGroup: POSTGRES_UID, fsGroup: POSTGRES_UID, seccompProfile: { type: 'RuntimeDefault' } },
          ...(cluster.spec.imagePullSecrets ? { imagePullSecrets: cluster.spec.imagePullSecrets } : {}),
          ...(cluster.spec.scheduling?.nodeSelector ? { nodeSelector: cluster.spec.scheduling.nodeSelector } : {}),
          ...(cluster.spec.scheduling?.tolerations ? { tolerations: cluster.spec.scheduling.tolerations } : {}),
          initContainers: [copy],
          containers: [main],
          volumes,
        },
      },
    },
  };
}
