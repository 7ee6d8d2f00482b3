import { describe, expect, it } from 'vitest';
import { eventMatters, redactSecret, reportFileName, stripNoise } from './report.js';

describe('support report', () => {
  it('Secrets keep their keys and sizes, never their values, nor the last-applied annotation that copies them', () => {
    const secret = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'db-superuser', managedFields: [{ manager: 'x' }], annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{"data":{"password":"c2VjcmV0"}}', keep: 'me' } },
      data: { password: Buffer.from('s3cret!').toString('base64'), username: Buffer.from('postgres').toString('base64') },
      stringData: { extra: 'plain' },
    };
    const r = redactSecret(secret);
    expect(r).toEqual({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'db-superuser', annotations: { keep: 'me' } }, data: { password: '[redacted: 7 bytes]', username: '[redacted: 8 bytes]' }, stringData: { extra: '[redacted: 5 bytes]' } });
    expect(JSON.stringify(r)).not.toMatch(/s3cret|c2VjcmV0|cG9zdGdyZXM=/);
  });

  it('other objects lose only managedFields and last-applied', () => {
    const o = stripNoise({ kind: 'ConfigMap', metadata: { name: 'c', managedFields: [], annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{}' } }, data: { 'postgresql.conf': 'x' } });
    expect(o).toEqual({ kind: 'ConfigMap', metadata: { name: 'c', annotations: undefined }, data: { 'postgresql.conf': 'x' } });
  });

  it('names the archive after the namespace, cluster and time; keeps the events about its objects', () => {
    expect(reportFileName('production', 'prod-db', new Date('2026-12-05T05:15:00.123Z'))).toBe('pgpilot-report-production-prod-db-20261205T051500Z.tar.gz');
    const names = new Set(['PostgreSQLCluster/db', 'Pod/db-1-0']);
    expect(eventMatters({ involvedObject: { kind: 'Pod', name: 'db-1-0' }, metadata: {} }, names)).toBe(true);
    expect(eventMatters({ involvedObject: { kind: 'Pod', name: 'other-0' }, metadata: {} }, names)).toBe(false);
  });
});
