import { describe, expect, it } from 'vitest';
import { instanceOrdinal, names } from './names.js';

describe('names', () => {
  it('derives instance, pod, Service and Secret names from the cluster name', () => {
    expect(names.instance('prod-db', 3)).toBe('prod-db-3');
    expect(names.pod('prod-db-3')).toBe('prod-db-3-0');
    expect([names.headless('c'), names.rw('c'), names.ro('c'), names.r('c')]).toEqual(['c-headless', 'c-rw', 'c-ro', 'c-r']);
    expect([names.superuserSecret('c'), names.replicationSecret('c'), names.appSecret('c')]).toEqual(['c-superuser', 'c-replication', 'c-app']);
  });

  it.each([
    ['prod-db-1', 1],
    ['prod-db-10', 10],
    ['prod-db-0', undefined],
    ['prod-db-01', undefined],
    ['prod-db-x', undefined],
    ['prod-db-1-2', undefined],
    ['other-db-1', undefined],
    ['prod-db', undefined],
  ])('instanceOrdinal("prod-db", %s) is %s', (instance, ordinal) => {
    expect(instanceOrdinal('prod-db', instance)).toBe(ordinal);
  });

  it('does not claim the instances of a cluster whose name extends this one', () => {
    // Cluster "db-1" owns "db-1-2"; cluster "db" must not read it as an ordinal.
    expect(instanceOrdinal('db', names.instance('db-1', 2))).toBeUndefined();
  });
});
