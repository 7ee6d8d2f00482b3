// The PKI plan: what to (re)issue when, and the names the server certificate carries.
import { describe, expect, it } from 'vitest';
import { annotationsOf, dnsNamesHash, nextRenewal, planCertificates, planWrites, recordOf, serverDnsNames, type CertRecord } from './certificates-plan.js';

const DAY = 86400_000;
const t0 = new Date('2026-01-01T00:00:00Z');
const at = (days: number) => new Date(t0.getTime() + days * DAY);
const names = serverDnsNames('db', 'prod', ['db-1', 'db-2']);
const ca: CertRecord = { serial: 'ca1', notBefore: t0, notAfter: at(3650) };
const server = (over: Partial<CertRecord> = {}): CertRecord => ({ serial: 's1', notBefore: t0, notAfter: at(90), caSerial: 'ca1', dnsNames: dnsNamesHash(names), ...over });
const caCert: CertRecord = { ...ca, caSerial: 'ca1' };
const replication = (over: Partial<CertRecord> = {}): CertRecord => ({ serial: 'r1', notBefore: t0, notAfter: at(90), caSerial: 'ca1', ...over });

describe('serverDnsNames', () => {
  it('covers every form of the rw, ro, r and headless Services and each pod behind the headless Service', () => {
    for (const svc of ['db-rw', 'db-ro', 'db-r', 'db-headless']) {
      expect(names).toEqual(expect.arrayContaining([svc, `${svc}.prod`, `${svc}.prod.svc`, `${svc}.prod.svc.cluster.local`]));
    }
    for (const pod of ['db-1-0', 'db-2-0']) {
      expect(names).toEqual(expect.arrayContaining([`${pod}.db-headless`, `${pod}.db-headless.prod`, `${pod}.db-headless.prod.svc`, `${pod}.db-headless.prod.svc.cluster.local`]));
    }
    expect(names).toHaveLength(16 + 8);
    expect(new Set(names).size).toBe(names.length);
  });

  it('does not depend on the order of the instances', () => {
    expect(dnsNamesHash(serverDnsNames('db', 'prod', ['db-2', 'db-10', 'db-1']))).toBe(dnsNamesHash(serverDnsNames('db', 'prod', ['db-1', 'db-2', 'db-10'])));
    expect(dnsNamesHash(serverDnsNames('db', 'prod', ['db-1']))).not.toBe(dnsNamesHash(names));
  });
});

describe('planCertificates', () => {
  it('creates everything for a new cluster', () => {
    expect(planCertificates({ now: t0, dnsNames: names })).toEqual({ ca: 'missing', server: 'ca-changed', replication: 'ca-changed', publishCa: true });
  });

  it('writes nothing in the steady state', () => {
    const p = planCertificates({ now: at(10), ca, server: server(), replication: replication(), caCert, dnsNames: names });
    expect(p).toEqual({ publishCa: false });
    expect(planWrites(p)).toBe(false);
  });

  it('renews the server certificate at 2/3 of its lifetime, not before', () => {
    expect(planCertificates({ now: at(59), ca, server: server(), replication: replication(), caCert, dnsNames: names }).server).toBeUndefined();
    expect(planCertificates({ now: at(60), ca, server: server(), replication: replication(), caCert, dnsNames: names }).server).toBe('due');
    expect(planCertificates({ now: at(91), ca, server: server(), replication: replication(), caCert, dnsNames: names }).server).toBe('expired');
  });

  it('reissues the server certificate when the instances change or it was signed by another CA', () => {
    expect(planCertificates({ now: at(1), ca, server: server(), replication: replication(), caCert, dnsNames: serverDnsNames('db', 'prod', ['db-1', 'db-2', 'db-3']) }).server).toBe('names-changed');
    expect(planCertificates({ now: at(1), ca, server: server({ caSerial: 'old' }), replication: replication(), caCert, dnsNames: names }).server).toBe('ca-changed');
  });

  it('renews the CA at 2/3 of its lifetime, and with it every leaf and the published CA certificate', () => {
    const p = planCertificates({ now: at(2434), ca, server: server({ notBefore: at(2430), notAfter: at(2520) }), replication: replication({ notBefore: at(2430), notAfter: at(2520) }), caCert, dnsNames: names });
    expect(p).toEqual({ ca: 'due', server: 'ca-changed', replication: 'ca-changed', publishCa: true });
  });

  it('publishes the CA certificate when its Secret is missing or holds another CA', () => {
    expect(planCertificates({ now: at(1), ca, server: server(), replication: replication(), dnsNames: names })).toEqual({ publishCa: true });
    expect(planCertificates({ now: at(1), ca, server: server(), replication: replication(), caCert: { ...caCert, caSerial: 'old' }, dnsNames: names })).toEqual({ publishCa: true });
  });

  it('takes a Secret without readable annotations as missing', () => {
    expect(recordOf({ 'postgres.pgpilot.io/tls-serial': 'x' })).toBeUndefined();
    expect(recordOf(annotationsOf(server()))).toEqual(server());
    expect(planCertificates({ now: at(1), ca, server: recordOf({}), caCert, dnsNames: names }).server).toBe('missing');
  });
});

describe('the replication user\'s client certificate', () => {
  it('is issued when missing, renewed at 2/3 of its lifetime, and reissued for a new CA; the server certificate stays', () => {
    const base = { ca, server: server(), caCert, dnsNames: names };
    expect(planCertificates({ ...base, now: at(1) })).toEqual({ replication: 'missing', publishCa: false });
    expect(planCertificates({ ...base, now: at(59), replication: replication() }).replication).toBeUndefined();
    expect(planCertificates({ ...base, now: at(1), replication: replication({ notBefore: at(-59), notAfter: at(31) }) })).toEqual({ replication: 'due', publishCa: false });
    expect(planCertificates({ ...base, now: at(1), replication: replication({ caSerial: 'old' }) }).replication).toBe('ca-changed');
  });
});

describe('nextRenewal', () => {
  it('is the earliest 2/3 point', () => {
    expect(nextRenewal([ca, server()]).toISOString()).toBe(at(60).toISOString());
  });
});
