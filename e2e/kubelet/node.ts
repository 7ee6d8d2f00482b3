// The Node object of the process kubelet: created Ready (the node lifecycle controller then
// lifts its node.kubernetes.io/not-ready taint), kept alive by a Lease in kube-node-lease
// renewed every 10 s and a status heartbeat every 10 s. Its InternalIP 127.0.0.1 and
// daemonEndpoints.kubeletEndpoint.Port are where the apiserver reaches the kubelet API.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../../src/runtime/logger.js';
import { microTime } from '../../src/runtime/time.js';
import { isStatus, type KubeApi } from './api.js';
import { errorText } from '../../src/util/error-text.js';

export const NODE_CAPACITY = { cpu: '16', memory: '64Gi', pods: '110', 'ephemeral-storage': '500Gi' };

function nodeStatus(kubeletPort: number): Record<string, unknown> {
  const t = new Date().toISOString();
  const cond = (type: string, status: string, reason: string, message: string) => ({
    type,
    status,
    reason,
    message,
    lastHeartbeatTime: t,
    lastTransitionTime: t,
  });
  return {
    capacity: NODE_CAPACITY,
    allocatable: NODE_CAPACITY,
    conditions: [
      cond('MemoryPressure', 'False', 'KubeletHasSufficientMemory', 'process kubelet'),
      cond('DiskPressure', 'False', 'KubeletHasNoDiskPressure', 'process kubelet'),
      cond('PIDPressure', 'False', 'KubeletHasSufficientPID', 'process kubelet'),
      cond('Ready', 'True', 'KubeletReady', 'process kubelet is posting ready status'),
    ],
    addresses: [
      { type: 'InternalIP', address: '127.0.0.1' },
      { type: 'Hostname', address: 'localhost' },
    ],
    daemonEndpoints: { kubeletEndpoint: { Port: kubeletPort } },
    nodeInfo: {
      machineID: 'process-kubelet',
      systemUUID: 'process-kubelet',
      bootID: 'process-kubelet',
      kernelVersion: '',
      osImage: 'pgpilot process kubelet',
      containerRuntimeVersion: 'process://1',
      kubeletVersion: 'v1.0.0-process',
      kubeProxyVersion: '',
      operatingSystem: 'linux',
      architecture: 'amd64',
    },
  };
}

export class NodeAgent {
  private timer?: NodeJS.Timeout;
  constructor(
    private readonly api: KubeApi,
    readonly name: string,
    private readonly log: Logger,
    /** The kubelet API's port on 127.0.0.1 (0: none; logs and exec then fail in the apiserver). */
    private readonly kubeletPort = 0,
  ) {}

  async register(): Promise<void> {
    const labels = { 'kubernetes.io/hostname': this.name, 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'amd64', 'pgpilot.io/process-kubelet': 'true' };
    try {
      await this.api.post('/api/v1/nodes', { apiVersion: 'v1', kind: 'Node', metadata: { name: this.name, labels }, spec: {} });
    } catch (err) {
      if (!isStatus(err, 409)) throw err;
    }
    await this.heartbeat();
    this.timer = setInterval(() => void this.heartbeat().catch((err: unknown) => this.log.warn({ err: errorText(err) }, 'node heartbeat failed')), 10_000);
  }

  /** Until the node lifecycle controller has removed the not-ready taint, nothing schedules here. */
  async waitSchedulable(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const node = await this.api.get<{ spec?: { taints?: { key: string }[] } }>(`/api/v1/nodes/${this.name}`);
      const taints = node.spec?.taints ?? [];
      if (!taints.some((t) => t.key === 'node.kubernetes.io/not-ready' || t.key === 'node.kubernetes.io/unreachable')) return;
      if (Date.now() > deadline) throw new Error(`node ${this.name} still tainted after ${timeoutMs} ms: ${JSON.stringify(taints)}`);
      await sleep(200);
    }
  }

  private async heartbeat(): Promise<void> {
    await this.api.mergePatch(`/api/v1/nodes/${this.name}/status`, { status: nodeStatus(this.kubeletPort) });
    const lease = `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${this.name}`;
    const spec = { holderIdentity: this.name, leaseDurationSeconds: 40, renewTime: microTime(new Date()) };
    try {
      await this.api.mergePatch(lease, { spec });
    } catch (err) {
      if (!isStatus(err, 404)) throw err;
      await this.api.post('/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases', {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name: this.name },
        spec,
      });
    }
  }

  /** Nothing new schedules here (a kubelet going away for good, while its pods terminate). */
  async cordon(): Promise<void> {
    await this.api.mergePatch(`/api/v1/nodes/${this.name}`, { spec: { unschedulable: true } }).catch((err: unknown) => this.log.warn({ err: errorText(err) }, 'node not cordoned'));
  }

  /** Stops heartbeats; with remove, deletes the Node (its pods are gone by then). */
  async stop(remove: boolean): Promise<void> {
    clearInterval(this.timer);
    if (!remove) return;
    await this.api.delete(`/api/v1/nodes/${this.name}`).catch(() => undefined);
    await this.api.delete(`/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${this.name}`).catch(() => undefined);
  }
}
