// `pgpilot instance`: PID 1 of every PostgreSQL pod. Reads its settings from the environment,
// serves the agent API (api-server.ts) for the instance agent (instance-agent.ts), and stops
// postgres cleanly on SIGTERM/SIGINT before it exits.
//
// As PID 1: Node cannot waitpid() arbitrary processes, so orphans re-parented to us (e.g. the
// backends of a postmaster killed with SIGKILL) are not reaped and stay zombies until the pod
// ends. They hold no resources but a pid. Our own children (postgres, initdb, pg_basebackup,
// pg_rewind) are always waited for through their 'exit' events. If zombies matter, run the agent
// under a minimal init (tini) — nothing here depends on being PID 1.
import { mkdir } from 'node:fs/promises';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { isWritableDir, readAgentToken, resolvePgBin } from '../postgres/files.js';
import { createLogger, type Logger } from '../runtime/logger.js';
import { startApiServer, startLocalApiServer } from './api-server.js';
import { loadSettings, type AgentSettings } from './env.js';
import { agentSource, MetricsExporter, startMetricsServer } from './exporter.js';
import { errorText } from '../util/error-text.js';
import { InstanceAgent } from './instance-agent.js';
import { layoutOf } from './layout.js';

export async function runInstanceAgent(env: Record<string, string | undefined> = process.env): Promise<void> {
  const settings = loadSettings(env);
  const bindings = { cluster: settings.cluster, instance: settings.instance };
  const log = createLogger(settings.logLevel, 'instance').child(bindings);
  const serverLog = createLogger(settings.logLevel, 'postgres').child(bindings);
  const pgBin = await resolvePgBin(settings.pgBin);
  const layout = layoutOf(settings);
  const socketDir = settings.socketDir ?? ((await isWritableDir('/var/run/postgresql')) ? '/var/run/postgresql' : join(layout.stateDir, 'run'));
  await mkdir(socketDir, { recursive: true });
  const agent = new InstanceAgent({ settings, pgBin, socketDir, log, serverLog, env });

  // The pod IP rather than 0.0.0.0: the kubelet probes and the operator use it, and several
  // agents can then share one network namespace (the e2e process kubelet, tests).
  const token = () => readAgentToken(settings.secretsDir);
  const server: Server = await startApiServer({ host: settings.podIp, port: settings.agentPort, api: agent, token, log, ...(settings.agentTlsDir ? { tlsDir: settings.agentTlsDir } : {}) });
  const local = settings.agentSocket ? await startLocalApiServer({ api: agent, token, log }, settings.agentSocket) : undefined;
  const metrics = settings.metricsEnabled ? await serveMetrics(agent, settings, log) : null;
  log.info({ pgBin, podIp: settings.podIp, agentPort: settings.agentPort, agentTls: !!settings.agentTlsDir, agentSocket: settings.agentSocket ?? null, pgPort: settings.pgPort, metricsPort: metrics ? settings.metricsPort : null, pgdata: settings.pgdata }, 'pgpilot instance agent started');

  let exiting = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (exiting) return;
    exiting = true;
    agent
      .shutdown(signal)
      .then(() => {
        log.info('postgres stopped; exiting');
        for (const s of [server, local]) {
          s?.close();
          s?.closeAllConnections();
        }
        metrics?.server.close();
        metrics?.server.closeAllConnections();
        void metrics?.exporter.close(); // its connection's server is gone already: nothing to wait for
        process.exit(0);
      })
      .catch((err: unknown) => {
        log.error({ err: errorText(err) }, 'shutdown failed');
        process.exit(1);
      });
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  // Dying would take postgres down uncleanly with us: log a stray rejection and carry on.
  process.on('unhandledRejection', (err) => log.error({ err: errorText(err) }, 'unhandled rejection'));

  await agent.init();
  agent.startWatches();
}

/**
 * The exporter on the pod IP, like the API. It is no reason to stop the database: a port it
 * cannot bind is logged and the agent runs on without it.
 */
async function serveMetrics(agent: InstanceAgent, settings: AgentSettings, log: Logger): Promise<{ server: Server; exporter: MetricsExporter } | null> {
  const exporter = new MetricsExporter({ source: agentSource(agent.state), log });
  try {
    return { server: await startMetricsServer({ host: settings.podIp, port: settings.metricsPort, exporter, log }), exporter };
  } catch (err) {
    log.error({ err: errorText(err), metricsPort: settings.metricsPort }, 'cannot serve /metrics; running without the exporter');
    return null;
  }
}
