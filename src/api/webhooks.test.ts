import { describe, expect, it } from 'vitest';
import type { S3Target } from './cluster.js';
import { reviewClusterAdmission, type AdmissionReview } from './webhooks.js';

const store: S3Target = { bucket: 'pg-backups', path: 'pgpilot', credentials: { secretName: 'creds' } };
const review = (operation: string, namespace: string, path: string): AdmissionReview => ({
  apiVersion: 'admission.k8s.io/v1',
  kind: 'AdmissionReview',
  request: { uid: 'a-1', operation, namespace, object: { metadata: { name: 'db', namespace }, spec: { bootstrap: { recovery: { source: { s3: store, path } } } } } },
});

describe('PostgreSQLCluster admission', () => {
  it('refuses a creation that recovers another namespace\'s archive of the default store, with the rule\'s message', () => {
    const res = reviewClusterAdmission(review('CREATE', 'team-b', 'pgpilot/team-a/db'), store).response!;
    expect(res).toMatchObject({ uid: 'a-1', allowed: false, status: { code: 403, reason: 'Forbidden' } });
    expect(res.status!.message).toMatch(/spec\.bootstrap\.recovery\.source\.path .* not an archive of namespace team-b/);
  });

  it('allows its own namespace\'s archive, and clusters with no recovery source', () => {
    expect(reviewClusterAdmission(review('CREATE', 'team-b', 'pgpilot/team-b/db'), store).response).toEqual({ uid: 'a-1', allowed: true });
    const plain: AdmissionReview = { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'a-2', operation: 'CREATE', namespace: 'x', object: { spec: {} } } };
    expect(reviewClusterAdmission(plain, store).response).toEqual({ uid: 'a-2', allowed: true });
  });

  it('judges only creations (bootstrap cannot change afterwards, and an existing cluster must stay editable)', () => {
    expect(reviewClusterAdmission(review('UPDATE', 'team-b', 'pgpilot/team-a/db'), store).response!.allowed).toBe(true);
  });
});
