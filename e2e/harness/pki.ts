// The e2e control plane's own CA (openssl, P-256): the apiserver's client CA (--client-ca-file),
// the controller-manager's CSR signer (--cluster-signing-*), which signs the process kubelet's
// serving certificate, and the CA the apiserver checks kubelets with
// (--kubelet-certificate-authority); plus the apiserver's client certificate for kubelets
// (--kubelet-client-certificate). The apiserver's own serving certificate stays self-signed
// (--cert-dir), as before.
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const OPENSSL = '/usr/bin/openssl';
const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

export interface ClusterPki {
  caCert: string;
  caKey: string;
  kubeletClientCert: string;
  kubeletClientKey: string;
  /** The aggregation layer: requestheader CA (--requestheader-client-ca-file) and the apiserver's proxy client certificate (CN front-proxy-client). */
  frontProxyCaCert: string;
  proxyClientCert: string;
  proxyClientKey: string;
}

export async function makeClusterPki(dir: string): Promise<ClusterPki> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const p = (f: string) => join(dir, f);
  const pki: ClusterPki = {
    caCert: p('ca.crt'),
    caKey: p('ca.key'),
    kubeletClientCert: p('apiserver-kubelet-client.crt'),
    kubeletClientKey: p('apiserver-kubelet-client.key'),
    frontProxyCaCert: p('front-proxy-ca.crt'),
    proxyClientCert: p('front-proxy-client.crt'),
    proxyClientKey: p('front-proxy-client.key'),
  };
  await run(OPENSSL, ['req', '-x509', ...EC, '-keyout', pki.caKey, '-out', pki.caCert, '-days', '3650', '-subj', '/CN=pgpilot-e2e-ca',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign,digitalSignature']);
  const csr = p('apiserver-kubelet-client.csr');
  await run(OPENSSL, ['req', '-new', ...EC, '-keyout', pki.kubeletClientKey, '-out', csr, '-subj', '/CN=kube-apiserver-kubelet-client']);
  const ext = p('client.ext');
  await writeFile(ext, 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n');
  await run(OPENSSL, ['x509', '-req', '-in', csr, '-CA', pki.caCert, '-CAkey', pki.caKey, '-CAcreateserial', '-out', pki.kubeletClientCert, '-days', '3650', '-extfile', ext]);
  // The aggregation layer (APIServices such as metrics-server's v1beta1.metrics.k8s.io): a CA of
  // its own, as kubeadm makes it, so that only the apiserver's proxy can assert X-Remote-User.
  const fpKey = p('front-proxy-ca.key');
  await run(OPENSSL, ['req', '-x509', ...EC, '-keyout', fpKey, '-out', pki.frontProxyCaCert, '-days', '3650', '-subj', '/CN=pgpilot-e2e-front-proxy-ca',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign,digitalSignature']);
  const fpCsr = p('front-proxy-client.csr');
  await run(OPENSSL, ['req', '-new', ...EC, '-keyout', pki.proxyClientKey, '-out', fpCsr, '-subj', '/CN=front-proxy-client']);
  await run(OPENSSL, ['x509', '-req', '-in', fpCsr, '-CA', pki.frontProxyCaCert, '-CAkey', fpKey, '-CAcreateserial', '-out', pki.proxyClientCert, '-days', '3650', '-extfile', ext]);
  return pki;
}
