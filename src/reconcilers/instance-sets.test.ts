// The per-instance restart annotation reaches only the instance it names, through the sets install
// applies and the rollout plans from; an invalid one restarts nothing.
import { describe, expect, it } from 'vitest';
import { ANNOTATIONS } from '../api/constants.js';
import { seedCluster } from '../../test/support/cluster-fixtures.js';
import { IMAGES } from '../../test/support/builder-fixtures.js';
import { instanceStatefulSet } from '../builders/statefulset.js';
import { desiredInstanceSets, rolloutInstances, templateOutdated } from './instance-sets.js';
import type { ReconcileContext } from './types.js';

const NAMES = ['prod-db-1', 'prod-db-2'];

function ctx(annotation: string | undefined): ReconcileContext {
  const cluster = seedCluster();
  if (annotation !== undefined) cluster.metadata.annotations = { [ANNOTATIONS.restartInstances]: annotation };
  // Each instance's StatefulSet as it runs now: the template of the cluster without the annotation.
  const instances = NAMES.map((name) => ({ name, claims: [], statefulSet: instanceStatefulSet(seedCluster(), name, IMAGES) }));
  return { cluster, status: {}, config: { ...IMAGES, operatorImage: 'op' }, observed: { instances, instanceNames: NAMES } } as unknown as ReconcileContext;
}

describe('restart-instances', () => {
  it('puts the value into the named instance\'s pod template only: only it is outdated', () => {
    const sets = desiredInstanceSets(ctx(JSON.stringify({ 'prod-db-2': '2026-12-05T03:00:00Z' })), null, undefined);
    expect(sets.map((s) => s.desired.spec!.template.metadata!.annotations![ANNOTATIONS.instanceRestartedAt])).toEqual([undefined, '2026-12-05T03:00:00Z']);
    expect(sets.map(templateOutdated)).toEqual([false, true]);
    expect(rolloutInstances(sets, 'prod-db-1').map((i) => i.outdated)).toEqual([false, true]);
  });

  it('an invalid annotation (an unknown instance, a bad time) restarts nothing', () => {
    for (const bad of [JSON.stringify({ 'prod-db-2': '2026-12-05T03:00:00Z', 'prod-db-9': '2026-12-05T03:00:00Z' }), '{"prod-db-2":"now"}', 'prod-db-2']) {
      expect(desiredInstanceSets(ctx(bad), null, undefined).map(templateOutdated)).toEqual([false, false]);
    }
  });
});
