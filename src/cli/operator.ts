// `pgpilot operator`: caches warm on every replica, reconciling only on the leader.
import { hostname } from 'node:os';
import type { Server } from 'node:http';
import { ClusterController } from '../controller/cluster-controller.js';
import { EventRecorder } from '../runtime/events.js';
import { startProbeServer } from '../runtime/http-server.js';
import { loadKubeConfig, makeClients } from '../runtime/kube.js';
import { LeaderElector } from '../runtime/leader.js';
import { createLogger } from '../runtime/logger.js';
import { OperatorMetrics } from '../runtime/metrics.js';
import { Webhooks } from '../controller/webhooks.js';
import { ServingCertError } from '../runtime/serving-cert-files.js';
import type { OperatorSettings } from './operator-config.js';

const SHUTDOWN_DEADLINE_MS = 20_000;

export async function runOperator(settings: OperatorSettings): Promise<void> {
  const log = createLogger(settings.logLevel);
  const metrics = new OperatorMetrics();
  const clients = makeClients(loadKubeConfig(settings.kubeconfig), metrics);
  const identity = `${hostname()}-${process.pid}`;
  const events = new EventRecorder(clients.core, 'pgpilot-operator', identity, log);
  const controller = new ClusterController({
    clients,
    config: {
      instanceImageRepository: settings.instanceImageRepository,
      operatorImage: settings.operatorImage,
      ...(settings.defaultBackupStore
        ? { defaultBackupStore: { store: settings.defaultBackupStore, namespaces: settings.defaultBackupStoreNamespaces, namespaceCredentials: settings.defaultBackupStoreNamespaceCredentials } }
        : {}),
      operatorNamespace: settings.namespace,
      tls: { caSeconds: settings.tlsCaLifetimeSeconds, leafSeconds: settings.tlsLeafLifetimeSeconds },
    },
    log,
    metrics,
    events,
    namespaces: settings.watchNamespaces,
    concurrency: settings.concurrency,
    resyncMs: settings.resyncSeconds * 1000,
    discoveryMs: settings.discoverySeconds * 1000,
  });
  const server: Server = await startProbeServer({ port: settings.httpPort, host: settings.httpHost, registry: metrics.registry, ready: () => controller.hasSynced() });
  log.info({ identity, httpPort: settings.httpPort, watchNamespaces: settings.watchNamespaces, leaderElect: settings.leaderElect }, 'pgpilot operator starting');
  // Every replica serves the webhooks (the apiserver may call any pod behind the Service), leader or not.
  const webhooks = settings.webhookPort
    ? new Webhooks({
        port: settings.webhookPort,
        host: settings.httpHost,
        // OLM (or whoever mounts the files) issues the certificate and injects its CA: nothing to write.
        certificates: settings.webhookCertDir
          ? { dir: settings.webhookCertDir }
          : {
              namespace: settings.namespace,
              caSecret: settings.webhookCaSecret,
              target: settings.webhookUrl ? { url: settings.webhookUrl } : { service: { namespace: settings.namespace, name: settings.webhookService, port: settings.webhookPort } },
              ...(settings.webhookConfiguration ? { validatingConfiguration: settings.webhookConfiguration } : {}),
              clients,
            },
        ...(settings.defaultBackupStore ? { defaultStore: settings.defaultBackupStore } : {}),
        log: log.child({ subsystem: 'webhooks' }),
      })
    : undefined;
  await webhooks?.start().catch((err: unknown) => {
    // Files that cannot be served stop the operator, naming the setting that points at them.
    throw err instanceof ServingCertError ? new Error(`--webhook-cert-dir (PGPILOT_WEBHOOK_CERT_DIR): ${err.message}`) : err;
  });

  const elector = settings.leaderElect
    ? new LeaderElector({ api: clients.coordination, namespace: settings.namespace, name: settings.leaseName, identity, log })
    : undefined;

  let stopping = false;
  const shutdown = async (signal: string, code = 0) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down: finishing in-flight reconciles');
    // Within the pod's 30 s grace period even when the apiserver no longer answers.
    setTimeout(() => {
      log.warn('shutdown deadline passed; exiting');
      process.exit(code || 1);
    }, SHUTDOWN_DEADLINE_MS).unref();
    await controller.stop();
    await webhooks?.stop();
    await elector?.release();
    metrics.isLeader.set(0);
    await new Promise<void>((r) => server.close(() => r()));
    log.info('stopped');
    process.exit(code);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));

  const started = Date.now();
  await controller.startCaches();
  log.info({ ms: Date.now() - started }, 'caches synced');
  if (elector) {
    // Losing the Lease means another replica may soon act (at the latest leaseDuration −
    // renewDeadline from now): exit at once rather than finish in-flight reconciles as a graceful
    // shutdown would, and let the Deployment restart us. The Lease is not ours to release.
    await elector.run(() => {
      metrics.isLeader.set(0);
      log.error('lost leadership: exiting');
      process.exit(1);
    });
  }
  metrics.isLeader.set(1);
  controller.startWorkers();
  log.info('reconciling');
}
