// A PersistentVolume provisioner for any storage class (no StorageClass object needed): each
// Pending claim gets a hostPath PV `pvc-<claim uid>` at <dataDir>/volumes/<claim uid>, pre-bound
// through claimRef, so the controller-manager's PV controller binds the pair at once and the
// scheduler's VolumeBinding sees a bound claim. (Without a StorageClass object, the scheduler
// treats a claim as "unbound immediate" and keeps the pod Pending until the bind: that is enough.)
// Released PVs (claim deleted) are deleted with their directory: reclaim policy Retain on the
// object keeps the PV controller from looking for a deleter plugin; we are the deleter.
// Capacity: each provisioned volume is a tmpfs of the claim's size mounted at its directory
// (volume-mounts.ts), so writing past it fails with ENOSPC as on a real disk. The mount is made
// before the PV exists and lives as long as the PV (pods come and go: their bind mounts of it see
// the same file system), and is unmounted when the PV is deleted or the kubelet stops.
// Expansion: when a bound claim asks for more, the tmpfs is remounted with the larger size
// (online: the pods' bind mounts see it at once), then the PV's capacity and the claim's
// status.capacity are raised. The apiserver only admits a larger request when the claim's
// StorageClass exists with allowVolumeExpansion: true — create that StorageClass (e.g.
// fast-ssd) in tests that resize.
import { mkdir, rm } from 'node:fs/promises';
import { parseQuantity } from '../../src/api/quantity.js';
import { join } from 'node:path';
import type { V1PersistentVolume, V1PersistentVolumeClaim } from '@kubernetes/client-node';
import type { Logger } from '../../src/runtime/logger.js';
import { isStatus, type KubeApi } from './api.js';
import { errorText } from '../../src/util/error-text.js';
import { mountedUnder, mountVolume, resizeVolume, unmountVolume, volumeBytes } from './volume-mounts.js';

export const PROVISIONED_BY = 'pgpilot.io/process-kubelet';

/** Provisioned by this kubelet (other PVs are left alone). */
const ours = (pv: V1PersistentVolume): boolean => pv.metadata?.annotations?.[PROVISIONED_BY] !== undefined;

/** Released, or its claim is gone while the PV controller has not (yet) said so. */
function released(pv: V1PersistentVolume, claimUids: ReadonlySet<string>): boolean {
  if (pv.status?.phase === 'Released') return true;
  const claim = pv.spec?.claimRef?.uid;
  return !!claim && !claimUids.has(claim) && pv.status?.phase !== 'Bound' && pv.status?.phase !== 'Available';
}

/** Storage quantities: the project's parser; an absent one counts as 0. */
const bytes = (q: string | number | undefined): number => (q === undefined ? 0 : parseQuantity(q));

export class Provisioner {
  private busy = false;
  private again = false;
  private stopped = false;
  private running: Promise<void> = Promise.resolve();
  constructor(
    private readonly api: KubeApi,
    private readonly volumesDir: string,
    private readonly claims: () => ReadonlyArray<V1PersistentVolumeClaim>,
    private readonly volumes: () => ReadonlyArray<V1PersistentVolume>,
    private readonly log: Logger,
  ) {}

  /** Runs one pass (coalesced: a request during a pass makes one more pass). */
  kick(): void {
    if (this.stopped) return;
    if (this.busy) {
      this.again = true;
      return;
    }
    this.busy = true;
    this.running = (async () => {
      do {
        this.again = false;
        try {
          await this.pass();
        } catch (err) {
          this.log.warn({ err: errorText(err) }, 'provisioner pass failed');
        }
      } while (this.again && !this.stopped);
      this.busy = false;
    })();
  }

  /**
   * No pass after this one; every volume this kubelet mounted is unmounted (a tmpfs cannot keep
   * its data without the kubelet, and no mount may outlive a test run). The PV objects stay.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.running;
    for (const path of await mountedUnder(this.volumesDir)) {
      await unmountVolume(path).catch((err: unknown) => this.log.warn({ path, err: errorText(err) }, 'volume not unmounted'));
    }
  }

  private async pass(): Promise<void> {
    const pvs = new Map(this.volumes().map((pv) => [pv.metadata!.name!, pv]));
    const claimUids = new Set<string>();
    for (const pvc of this.claims()) {
      claimUids.add(pvc.metadata!.uid!);
      if (!pvc.metadata!.deletionTimestamp) await this.syncClaim(pvc, pvs);
    }
    for (const pv of pvs.values()) {
      if (ours(pv) && released(pv, claimUids)) await this.deleteReleased(pv);
    }
  }

  /** A Pending claim gets its PV; a bound claim on one of ours that asks for more is expanded. */
  private async syncClaim(pvc: V1PersistentVolumeClaim, pvs: ReadonlyMap<string, V1PersistentVolume>): Promise<void> {
    const request = pvc.spec?.resources?.requests?.storage;
    if (!pvc.spec?.volumeName && pvc.status?.phase !== 'Bound') {
      if (!pvs.has(`pvc-${pvc.metadata!.uid!}`)) await this.provision(pvc);
    } else if (pvc.status?.phase === 'Bound' && request) {
      const pv = pvs.get(pvc.spec!.volumeName!);
      if (pv && ours(pv)) await this.expand(pvc, pv, request);
    }
  }

  private async deleteReleased(pv: V1PersistentVolume): Promise<void> {
    await this.api.delete(`/api/v1/persistentvolumes/${pv.metadata!.name}`).catch((err: unknown) => {
      if (!isStatus(err, 404)) throw err;
    });
    if (pv.spec?.hostPath?.path?.startsWith(`${this.volumesDir}/`)) {
      await unmountVolume(pv.spec.hostPath.path);
      await rm(pv.spec.hostPath.path, { recursive: true, force: true });
    }
    this.log.info({ pv: pv.metadata!.name }, 'released volume deleted');
  }

  private async provision(pvc: V1PersistentVolumeClaim): Promise<void> {
    const { name, namespace, uid } = pvc.metadata!;
    const path = join(this.volumesDir, uid!);
    await mkdir(path, { recursive: true });
    const size = pvc.spec?.resources?.requests?.storage ?? '1Gi';
    await mountVolume(path, volumeBytes(size));
    const body = {
      apiVersion: 'v1',
      kind: 'PersistentVolume',
      metadata: { name: `pvc-${uid}`, annotations: { [PROVISIONED_BY]: 'true', 'pv.kubernetes.io/provisioned-by': PROVISIONED_BY } },
      spec: {
        capacity: { storage: size },
        accessModes: pvc.spec?.accessModes?.length ? pvc.spec.accessModes : ['ReadWriteOnce'],
        persistentVolumeReclaimPolicy: 'Retain',
        storageClassName: pvc.spec?.storageClassName ?? '',
        volumeMode: pvc.spec?.volumeMode ?? 'Filesystem',
        hostPath: { path, type: 'DirectoryOrCreate' },
        claimRef: { apiVersion: 'v1', kind: 'PersistentVolumeClaim', namespace, name, uid },
      },
    };
    try {
      await this.api.post('/api/v1/persistentvolumes', body);
      this.log.info({ pvc: `${namespace}/${name}`, pv: `pvc-${uid}`, path }, 'volume provisioned');
    } catch (err) {
      if (!isStatus(err, 409)) throw err;
      // Made by another kubelet of this control plane (or by an earlier pass of ours): keep the
      // mount only if the PV is this directory.
      const pv = await this.api.get<V1PersistentVolume>(`/api/v1/persistentvolumes/pvc-${uid}`).catch(() => undefined);
      if (pv && pv.spec?.hostPath?.path !== path) {
        await unmountVolume(path);
        await rm(path, { recursive: true, force: true });
      }
    }
  }

  private async expand(pvc: V1PersistentVolumeClaim, pv: V1PersistentVolume, request: string): Promise<void> {
    const want = bytes(request);
    // The file system first: the capacity reported must be there when the claim says so.
    const path = pv.spec?.hostPath?.path;
    if (path?.startsWith(`${this.volumesDir}/`) && (await resizeVolume(path, volumeBytes(request)))) {
      this.log.info({ pv: pv.metadata!.name, path, size: request }, 'volume file system grown');
    }
    if (bytes(pv.spec?.capacity?.storage) < want) {
      await this.api.mergePatch(`/api/v1/persistentvolumes/${pv.metadata!.name}`, { spec: { capacity: { storage: request } } });
    }
    if (bytes(pvc.status?.capacity?.storage) < want) {
      await this.api.mergePatch(`/api/v1/namespaces/${pvc.metadata!.namespace}/persistentvolumeclaims/${pvc.metadata!.name}/status`, {
        status: { capacity: { storage: request }, allocatedResources: { storage: request }, conditions: [] },
      });
      this.log.info({ pvc: `${pvc.metadata!.namespace}/${pvc.metadata!.name}`, size: request }, 'volume expanded');
    }
  }
}
