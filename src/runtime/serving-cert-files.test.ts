import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ServingCertError, readServingCert } from './serving-cert-files.js';
import { createCa, issueCertificate } from './x509.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function pair() {
  const ca = await createCa('test-ca', 3600);
  return issueCertificate(ca, { commonName: 'svc', dnsNames: ['svc.ns.svc'], usage: 'server', validitySeconds: 3600 });
}

function dirWith(files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'serving-cert-'));
  dirs.push(dir);
  for (const [name, content] of Object.entries(files)) writeFileSync(path.join(dir, name), content);
  return dir;
}

describe('a serving certificate from files (OLM\'s tls.crt and tls.key)', () => {
  it('reads the certificate and its key', async () => {
    const p = await pair();
    expect(await readServingCert(dirWith({ 'tls.crt': p.cert, 'tls.key': p.key }))).toEqual(p);
  });

  it('names the file it cannot read', async () => {
    const p = await pair();
    const dir = dirWith({ 'tls.crt': p.cert });
    await expect(readServingCert(dir)).rejects.toThrow(`cannot read ${path.join(dir, 'tls.key')}: ENOENT`);
    await expect(readServingCert(dir)).rejects.toBeInstanceOf(ServingCertError);
  });

  it('refuses a key that is not the certificate\'s, or what is not PEM', async () => {
    const [a, b] = [await pair(), await pair()];
    await expect(readServingCert(dirWith({ 'tls.crt': a.cert, 'tls.key': b.key }))).rejects.toThrow(/tls\.crt and tls\.key in .* are not a certificate and its private key/);
    await expect(readServingCert(dirWith({ 'tls.crt': 'nope', 'tls.key': a.key }))).rejects.toThrow(/are not a certificate and its private key/);
  });
});
