// The restricted Pod Security Standard is really enforced in test namespaces: the apiserver's
// PodSecurity admission refuses a pod that breaks it. Without this, a namespace label that stopped
// working (a misspelt key, the plugin turned off) would let every other e2e file pass without
// proving that the operator's pods comply.
import { CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiStatus } from '../src/runtime/api-status.js';
import { apiErrorMessage } from '../src/runtime/apply.js';
import { RESTRICTED_POD_SECURITY_LABELS, createTestNamespace, deleteTestNamespace, kubeConfig } from './harness/env.js';

const core = () => kubeConfig().makeApiClient(CoreV1Api);

/** A pod that passes the restricted profile (server-side dry run: nothing runs). */
function compliantPod(name: string): V1Pod {
  return {
    metadata: { name },
    spec: {
      automountServiceAccountToken: false,
      securityContext: { runAsNonRoot: true, runAsUser: 26, seccompProfile: { type: 'RuntimeDefault' } },
      containers: [{ name: 'c', image: 'busybox', securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } } }],
    },
  };
}

async function refusal(namespace: string, pod: V1Pod): Promise<string | undefined> {
  try {
    await core().createNamespacedPod({ namespace, body: pod, dryRun: 'All' });
    return undefined;
  } catch (err) {
    expect(apiStatus(err), apiErrorMessage(err)).toBe(403);
    return apiErrorMessage(err);
  }
}

describe('restricted Pod Security in test namespaces', () => {
  let ns: string;
  beforeAll(async () => {
    ns = await createTestNamespace('pod-security', { waitForServiceAccount: false });
  });
  afterAll(() => deleteTestNamespace(ns));

  it('labels the namespace to enforce the restricted profile', async () => {
    const labels = (await core().readNamespace({ name: ns })).metadata!.labels!;
    expect(labels).toMatchObject(RESTRICTED_POD_SECURITY_LABELS);
  });

  it('admits a compliant pod', async () => {
    expect(await refusal(ns, compliantPod('fine'))).toBeUndefined();
  });

  it.each([
    ['without seccompProfile', (p: V1Pod) => delete p.spec!.securityContext!.seccompProfile, /seccompProfile/],
    ['allowing privilege escalation', (p: V1Pod) => (p.spec!.containers[0]!.securityContext!.allowPrivilegeEscalation = true), /allowPrivilegeEscalation/],
    ['keeping capabilities', (p: V1Pod) => delete p.spec!.containers[0]!.securityContext!.capabilities, /capabilities/],
    ['running as root', (p: V1Pod) => Object.assign(p.spec!.securityContext!, { runAsNonRoot: false, runAsUser: 0 }), /runAsNonRoot|runAsUser/],
    ['with a hostPath volume', (p: V1Pod) => (p.spec!.volumes = [{ name: 'h', hostPath: { path: '/tmp' } }]), /hostPath/],
  ])('refuses a pod %s', async (_what, breakIt, reason) => {
    const pod = compliantPod('broken');
    breakIt(pod);
    const message = await refusal(ns, pod);
    expect(message).toMatch(/violates PodSecurity "restricted:latest"/);
    expect(message).toMatch(reason);
  });
});
