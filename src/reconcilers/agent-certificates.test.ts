// The operator's client certificate for a cluster's agents (agent-certificates.ts): issued from the
// cluster's CA Secret for pgpilot-operator, kept until 2/3 of its lifetime, issued anew after
// forget(), once for concurrent askers, and nothing while the CA does not exist.
import { ApiException, type CoreV1Api, type V1Secret } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { AGENT_CLIENT_CN } from '../api/tls.js';
import { certificateInfo, createCa, type CertKeyPem } from '../runtime/x509.js';
import { AgentCertificates } from './agent-certificates.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');
const notFound = () => new ApiException(404, 'secrets "db-ca" not found', '{}', {});

function secrets(ca: CertKeyPem | undefined) {
  let reads = 0;
  const core = {
    readNamespacedSecret: async ({ name, namespace }: { name: string; namespace: string }): Promise<V1Secret> => {
      reads++;
      if (!ca || name !== 'db-ca' || namespace !== 'ns') throw notFound();
      return { data: { 'ca.crt': b64(ca.cert), 'ca.key': b64(ca.key) } };
    },
  } as unknown as Pick<CoreV1Api, 'readNamespacedSecret'>;
  return { core, reads: () => reads };
}

describe('AgentCertificates', () => {
  it("issues pgpilot-operator's client certificate from the cluster's CA, for the cluster's server name", async () => {
    const ca = await createCa('db CA', 3600);
    const { core } = secrets(ca);
    const tls = (await new AgentCertificates(core, 600).get('ns', 'db'))!;
    const info = certificateInfo(tls.cert);
    expect(info.commonName).toBe(AGENT_CLIENT_CN);
    expect(info.issuer).toContain('db CA');
    expect(tls).toMatchObject({ ca: ca.cert, servername: 'db-rw.ns.svc', id: `ns/db#${info.serialNumber}` });
    expect(tls.key).toContain('PRIVATE KEY');
  });

  it('keeps it until 2/3 of its lifetime, issues anew after that or after forget, once for concurrent askers', async () => {
    const { core, reads } = secrets(await createCa('db CA', 3600));
    const certs = new AgentCertificates(core, 600);
    const now = Date.now();
    const [a, b] = await Promise.all([certs.get('ns', 'db', now), certs.get('ns', 'db', now)]);
    expect(a).toBe(b);
    expect(reads()).toBe(1);
    // Backdated a minute: lifetime 660 s, renewed 440 s after notBefore, i.e. 380 s from now.
    expect(await certs.get('ns', 'db', now + 300_000)).toBe(a);
    const renewed = await certs.get('ns', 'db', now + 400_000);
    expect(renewed!.id).not.toBe(a!.id);
    certs.forget('ns', 'db');
    expect((await certs.get('ns', 'db', now + 400_000))!.id).not.toBe(renewed!.id);
    expect(reads()).toBe(3);
  });

  it('gives nothing while the cluster has no CA yet', async () => {
    const { core, reads } = secrets(undefined);
    expect(await new AgentCertificates(core).get('ns', 'db')).toBeUndefined();
    expect(reads()).toBe(1);
  });
});
