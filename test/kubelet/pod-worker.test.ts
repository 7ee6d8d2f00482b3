// The pod worker's termination against a container start in flight: a deletion that lands while
// a container is being prepared (its cgroup made, its log header written) must not let the
// process start afterwards unseen — the pod would then never end, its deletion never complete,
// and a StatefulSet waiting to replace it would wait forever (seen in e2e/monitoring.test.ts).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import type { KubeApi } from '../../e2e/kubelet/api.js';
import { PodWorker, type WorkerDeps } from '../../e2e/kubelet/pod-worker.js';
import { Cgroups } from '../../e2e/kubelet/sandbox.js';
import { createLogger } from '../../src/runtime/logger.js';

const pod: V1Pod = {
  metadata: { name: 'p', namespace: 'ns', uid: 'uid-1', deletionGracePeriodSeconds: 5 },
  spec: { restartPolicy: 'Always', containers: [{ name: 'c', image: 'e2e.local/node', args: ['-e', 'setInterval(() => {}, 1000)'] }] },
};

describe('PodWorker termination', () => {
  let dir: string | undefined;
  let worker: PodWorker | undefined;
  afterEach(async () => {
    // A container the worker failed to stop must not outlive the test.
    for (const pid of worker?.pids() ?? []) process.kill(-pid, 'SIGKILL');
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('a deletion while a container is being prepared: the container never starts and the pod ends', async () => {
    dir = await mkdtemp(join(tmpdir(), 'pod-worker-'));
    const cgroups = await Cgroups.create(`pod-worker-test-${process.pid}`);
    let preparing!: () => void;
    const prepared = new Promise<void>((resolve) => (preparing = resolve));
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    // The container's cgroup is made just before its process starts: hold it there.
    cgroups.make = async () => {
      preparing();
      await released;
      return undefined;
    };
    const api = { mergePatch: async () => ({ status: {} }), delete: async () => ({}) } as unknown as KubeApi;
    const deps: WorkerDeps = {
      api,
      log: createLogger('error', 'kubelet'),
      repoRoot: process.cwd(),
      dataDir: dir,
      shmRoot: join(dir, 'shm'),
      apiServer: new URL('https://127.0.0.1:1'),
      sources: { configMap: () => undefined, secret: () => undefined },
      cgroups,
      event: () => undefined,
      hosts: () => '',
      statusWritten: () => undefined,
    };
    worker = new PodWorker(pod, '127.0.0.9', deps);
    await prepared;
    const terminated = worker.terminate();
    release();
    await terminated;
    expect(worker.pids()).toEqual([]);
    expect(worker.buildStatus().containerStatuses).toMatchObject([{ name: 'c', state: { waiting: { reason: 'ContainerCreating' } } }]);
  });
});
