// The plugin's view of the apiserver: the kubeconfig (--kubeconfig, --context), the namespace
// (-n, else the context's), and the calls the commands make — each bounded by --request-timeout
// and each failure turned into a PluginError naming the verb and resource (errors.ts).
import { PatchStrategy, setHeaderOptions, type CoreV1Event, type KubeConfig, type V1Deployment, type V1Pod } from '@kubernetes/client-node';
import type { PostgreSQLBackup } from '../../api/backup.js';
import type { PostgreSQLCluster } from '../../api/cluster.js';
import { API_GROUP, API_VERSION, BACKUP_PLURAL, CLUSTER_KIND, CLUSTER_PLURAL } from '../../api/constants.js';
import { podSelector, selectorString } from '../../api/labels.js';
import { loadKubeConfig, makeClients, type KubeClients } from '../../runtime/kube.js';
import { errorText } from '../../util/error-text.js';
import { apiError, usage, type ApiCall } from './errors.js';

/** Options every command takes. */
export interface GlobalOptions {
  namespace?: string;
  kubeconfig?: string;
  context?: string;
  /** Seconds each API call may take (default 10). */
  requestTimeout?: string;
}

export const DEFAULT_REQUEST_TIMEOUT_S = 10;

/** Seconds from an option: a positive number, else a usage error naming the option. */
export function parseSeconds(option: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw usage(`option ${option} must be a positive number of seconds (got ${JSON.stringify(value)})`);
  return n;
}

/** The namespace: -n, else the context's, else "default". */
export function namespaceOf(kc: Pick<KubeConfig, 'getContextObject' | 'getCurrentContext'>, flag: string | undefined): string {
  if (flag) return flag;
  return kc.getContextObject(kc.getCurrentContext())?.namespace || 'default';
}

const custom = { group: API_GROUP, version: API_VERSION };

export class Kube {
  private constructor(
    readonly kc: KubeConfig,
    readonly clients: KubeClients,
    readonly namespace: string,
    readonly server: string,
  ) {}

  static connect(opts: GlobalOptions): Kube {
    const timeoutS = parseSeconds('--request-timeout', opts.requestTimeout, DEFAULT_REQUEST_TIMEOUT_S);
    let kc: KubeConfig;
    try {
      kc = loadKubeConfig(opts.kubeconfig);
    } catch (err) {
      throw usage(`cannot load the kubeconfig${opts.kubeconfig ? ` ${opts.kubeconfig}` : ''}: ${errorText(err)}`);
    }
    if (opts.context) {
      if (!kc.getContextObject(opts.context)) throw usage(`context "${opts.context}" is not in the kubeconfig (contexts: ${kc.getContexts().map((c) => c.name).join(', ') || 'none'})`);
      kc.setCurrentContext(opts.context);
    }
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw usage('the kubeconfig has no current cluster: pass --kubeconfig or --context');
    const clients = makeClients(kc, undefined, { requestTimeoutMs: timeoutS * 1000 });
    return new Kube(kc, clients, namespaceOf(kc, opts.namespace), cluster.server);
  }

  /** Runs one call; a failure becomes a PluginError naming what was asked. */
  async call<T>(what: ApiCall, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw apiError(err, what, this.server);
    }
  }

  getCluster(name: string): Promise<PostgreSQLCluster> {
    return this.call({ verb: 'get', resource: CLUSTER_PLURAL, name, namespace: this.namespace }, async () =>
      (await this.clients.custom.getNamespacedCustomObject({ ...custom, plural: CLUSTER_PLURAL, namespace: this.namespace, name })) as PostgreSQLCluster,
    );
  }

  /** A merge patch; strict: unknown fields are refused (HTTP 400) rather than silently dropped. */
  patchCluster(name: string, body: object, opts: { strict?: boolean } = {}): Promise<PostgreSQLCluster> {
    return this.call({ verb: 'patch', resource: CLUSTER_PLURAL, name, namespace: this.namespace }, async () =>
      (await this.clients.custom.patchNamespacedCustomObject(
        { ...custom, plural: CLUSTER_PLURAL, namespace: this.namespace, name, body, fieldValidation: opts.strict ? 'Strict' : undefined },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      )) as PostgreSQLCluster,
    );
  }

  createCluster(body: PostgreSQLCluster): Promise<PostgreSQLCluster> {
    return this.call({ verb: 'create', resource: CLUSTER_PLURAL, name: body.metadata.name, namespace: this.namespace }, async () =>
      (await this.clients.custom.createNamespacedCustomObject({ ...custom, plural: CLUSTER_PLURAL, namespace: this.namespace, body, fieldValidation: 'Strict' })) as PostgreSQLCluster,
    );
  }

  getBackup(name: string): Promise<PostgreSQLBackup> {
    return this.call({ verb: 'get', resource: BACKUP_PLURAL, name, namespace: this.namespace }, async () =>
      (await this.clients.custom.getNamespacedCustomObject({ ...custom, plural: BACKUP_PLURAL, namespace: this.namespace, name })) as PostgreSQLBackup,
    );
  }

  async listBackups(): Promise<PostgreSQLBackup[]> {
    return this.call({ verb: 'list', resource: BACKUP_PLURAL, namespace: this.namespace }, async () =>
      ((await this.clients.custom.listNamespacedCustomObject({ ...custom, plural: BACKUP_PLURAL, namespace: this.namespace })) as { items: PostgreSQLBackup[] }).items,
    );
  }

  createBackup(body: PostgreSQLBackup): Promise<PostgreSQLBackup> {
    return this.call({ verb: 'create', resource: BACKUP_PLURAL, name: body.metadata.name, namespace: this.namespace }, async () =>
      (await this.clients.custom.createNamespacedCustomObject({ ...custom, plural: BACKUP_PLURAL, namespace: this.namespace, body })) as PostgreSQLBackup,
    );
  }

  /** The instance pods of a cluster. */
  async instancePods(cluster: string): Promise<V1Pod[]> {
    return this.call({ verb: 'list', resource: 'pods', namespace: this.namespace }, async () =>
      (await this.clients.core.listNamespacedPod({ namespace: this.namespace, labelSelector: selectorString(podSelector(cluster)) })).items,
    );
  }

  /** Events about a cluster. */
  async clusterEvents(cluster: string): Promise<CoreV1Event[]> {
    return this.call({ verb: 'list', resource: 'events', namespace: this.namespace }, async () =>
      (await this.clients.core.listNamespacedEvent({ namespace: this.namespace, fieldSelector: `involvedObject.kind=${CLUSTER_KIND},involvedObject.name=${cluster}` })).items,
    );
  }

  /** A container's log (no follow): the newest tailLines lines, or the previous instance's. */
  podLog(pod: string, container: string, o: { tailLines?: number; previous?: boolean; namespace?: string } = {}): Promise<string> {
    const namespace = o.namespace ?? this.namespace;
    return this.call({ verb: 'get', resource: 'pods/log', name: pod, namespace }, async () =>
      String(await this.clients.core.readNamespacedPodLog({ name: pod, namespace, container, tailLines: o.tailLines, previous: o.previous })),
    );
  }

  /** Pods in every namespace with these labels. */
  async podsEverywhere(labelSelector: string): Promise<V1Pod[]> {
    return this.call({ verb: 'list', resource: 'pods', namespace: '(all namespaces)' }, async () => (await this.clients.core.listPodForAllNamespaces({ labelSelector })).items);
  }

  async deploymentsEverywhere(labelSelector: string): Promise<V1Deployment[]> {
    return this.call({ verb: 'list', resource: 'deployments', namespace: '(all namespaces)' }, async () => (await this.clients.apps.listDeploymentForAllNamespaces({ labelSelector })).items);
  }
}
