// The operator's client certificate for each cluster's agent API (docs/tls.md): issued by the
// operator itself from the cluster's CA (Secret <cluster>-ca, which only the operator reads), kept
// in memory only — no Secret holds it —, re-issued at 2/3 of its lifetime, when the CA changes, or
// when an agent refused it. The CA certificate from the same Secret verifies the agents.
import type { CoreV1Api } from '@kubernetes/client-node';
import { names } from '../api/names.js';
import { AGENT_CLIENT_CN, TLS_DEFAULT_LEAF_SECONDS, TLS_FILES } from '../api/tls.js';
import type { AgentClientTls } from '../instance/agent-client.js';
import { ignoreNotFound } from '../runtime/api-status.js';
import { certificateInfo, issueCertificate } from '../runtime/x509.js';

interface Held {
  tls: AgentClientTls;
  renewAt: number;
}

const RENEW_FRACTION = 2 / 3;

export class AgentCertificates {
  private readonly held = new Map<string, Held>();
  private readonly issuing = new Map<string, Promise<AgentClientTls | undefined>>();

  constructor(
    private readonly core: Pick<CoreV1Api, 'readNamespacedSecret'>,
    private readonly lifetimeSeconds = TLS_DEFAULT_LEAF_SECONDS,
  ) {}

  /** The client credentials for a cluster's agents; undefined while its CA does not exist yet. */
  async get(namespace: string, cluster: string, now = Date.now()): Promise<AgentClientTls | undefined> {
    const key = `${namespace}/${cluster}`;
    const held = this.held.get(key);
    if (held && now < held.renewAt) return held.tls;
    // One issue at a time per cluster (the pass and the primary monitor may ask together).
    let pending = this.issuing.get(key);
    if (!pending) {
      pending = this.issue(namespace, cluster, now).finally(() => this.issuing.delete(key));
      this.issuing.set(key, pending);
    }
    return pending;
  }

  /** Drops a cluster's credentials (an agent refused them, or the cluster went): the next get issues anew. */
  forget(namespace: string, cluster: string): void {
    this.held.delete(`${namespace}/${cluster}`);
  }

  private async issue(namespace: string, cluster: string, now: number): Promise<AgentClientTls | undefined> {
    const secret = await ignoreNotFound(this.core.readNamespacedSecret({ name: names.caSecret(cluster), namespace }));
    const ca = { cert: decode(secret?.data?.[TLS_FILES.ca]), key: decode(secret?.data?.['ca.key']) };
    if (!ca.cert || !ca.key) return undefined;
    const leaf = await issueCertificate(ca, { commonName: AGENT_CLIENT_CN, usage: 'client', validitySeconds: this.lifetimeSeconds, now: new Date(now) });
    const info = certificateInfo(leaf.cert);
    const tls: AgentClientTls = { id: `${namespace}/${cluster}#${info.serialNumber}`, ca: ca.cert, cert: leaf.cert, key: leaf.key, servername: names.tlsServerName(cluster, namespace) };
    const lifetime = info.notAfter.getTime() - info.notBefore.getTime();
    this.held.set(`${namespace}/${cluster}`, { tls, renewAt: info.notBefore.getTime() + lifetime * RENEW_FRACTION });
    return tls;
  }
}

const decode = (b64: string | undefined) => (b64 ? Buffer.from(b64, 'base64').toString('utf8') : '');
