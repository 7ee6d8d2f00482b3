import { describe, expect, it } from 'vitest';
import { isSubset, needsApply } from './compare.js';

describe('isSubset', () => {
  it('accepts fields the live object has in addition', () => {
    expect(isSubset({ spec: { replicas: 1 } }, { spec: { replicas: 1, revisionHistoryLimit: 10 }, status: {} })).toBe(true);
  });

  it('refuses a field the live object lacks, or holds as another shape', () => {
    expect(isSubset({ spec: { replicas: 1 } }, { spec: {} })).toBe(false);
    expect(isSubset({ spec: { selector: { a: 'b' } } }, { spec: { selector: 'a=b' } })).toBe(false);
    expect(isSubset({ spec: { ports: [] } }, { spec: { ports: {} } })).toBe(false);
  });

  it('requires arrays of the same length, compared item by item', () => {
    expect(isSubset({ args: ['a'] }, { args: ['a', 'b'] })).toBe(false);
    expect(isSubset({ args: ['a', 'b'] }, { args: ['a'] })).toBe(false);
    expect(isSubset({ args: ['a', 'b'] }, { args: ['b', 'a'] })).toBe(false);
    expect(isSubset({ c: [{ name: 'pg' }] }, { c: [{ name: 'pg', terminationMessagePath: '/dev/termination-log' }] })).toBe(true);
  });

  it.each([
    ['0.5', '500m'],
    ['1Gi', '1024Mi'],
    ['2', 2],
    ['1e3', '1k'],
    ['1.5Gi', '1536Mi'],
  ])('compares quantities by value: %j equals %j', (desired, live) => {
    expect(isSubset({ cpu: desired }, { cpu: live })).toBe(true);
  });

  it.each<[unknown, unknown]>([
    ['1Gi', '1G'],
    ['500m', '0.6'],
    ['a', 'b'],
    [true, false],
    [1, 2],
    ['x', undefined],
    [null, 'x'],
  ])('refuses a different scalar: %j vs %j', (desired, live) => {
    expect(isSubset({ v: desired }, { v: live })).toBe(false);
  });

  // Regression (fixed): compare.ts compares quantities as floats, and parseQuantity("700m") is
  // 700 * 1e-3 = 0.7000000000000001, not 0.7. The apiserver canonicalizes cpu "0.7" to "700m",
  // so a spec with cpu "0.7" (or 1.4, 1.9, 2.3, ...) never matches its live StatefulSet and every
  // reconcile re-applies it, breaking "a steady-state reconcile makes no write calls". Compare
  // exactly (e.g. scaled integers / BigInt on the parsed mantissa and exponent).
  it.each([
    ['0.7', '700m'],
    ['1.4', '1400m'],
    ['2.3', '2300m'],
  ])('compares quantities exactly: %j equals %j', (desired, live) => {
    expect(isSubset({ cpu: desired }, { cpu: live })).toBe(true);
  });
});

describe('needsApply', () => {
  const desired = () => ({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'c', namespace: 'ns', labels: { a: '1' }, annotations: { n: 'x' }, ownerReferences: [{ uid: 'u', name: 'o' }] },
    data: { k: 'v' },
  });
  /** As an informer cache holds it: no apiVersion/kind, server metadata, a status. */
  const live = () => {
    const { apiVersion: _a, kind: _k, ...rest } = desired();
    return { ...rest, metadata: { ...rest.metadata, uid: 'x', resourceVersion: '7', managedFields: [{}], labels: { ...rest.metadata.labels, extra: 'y' } }, status: { anything: 1 } };
  };

  it('applies when there is no live object', () => {
    expect(needsApply(desired(), undefined)).toBe(true);
  });

  it('ignores apiVersion, kind, status and metadata other than labels, annotations and ownerReferences', () => {
    expect(needsApply(desired(), live())).toBe(false);
    expect(needsApply({ ...desired(), status: { phase: 'x' } }, live())).toBe(false);
    expect(needsApply({ ...desired(), metadata: { ...desired().metadata, name: 'other', namespace: 'elsewhere', finalizers: ['f'] } }, live())).toBe(false);
  });

  it.each<[string, (o: ReturnType<typeof live>) => void]>([
    ['a label', (o) => (o.metadata.labels.a = '2')],
    ['an annotation', (o) => delete (o.metadata.annotations as Partial<Record<string, string>>).n],
    ['the owner references', (o) => (o.metadata.ownerReferences = [])],
    ['the data', (o) => (o.data.k = 'w')],
  ])('applies when the live object differs in %s', (_what, change) => {
    const l = live();
    change(l);
    expect(needsApply(desired(), l)).toBe(true);
  });
});
