// examples/network-policy.yaml, the NetworkPolicy for users who manage their own, says what the
// operator would own for the seed cluster with spec.networkPolicy on (src/builders/network-policy.ts).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { networkPolicy } from '../../src/builders/network-policy.js';
import { seedCluster } from '../support/cluster-fixtures.js';

describe('examples/network-policy.yaml', () => {
  it('equals the operator\'s policy for the seed cluster with clients app=web, the operator in pgpilot-system', () => {
    const example = parse(readFileSync(join(import.meta.dirname, '..', '..', 'examples', 'network-policy.yaml'), 'utf8')) as Record<string, any>;
    const built = networkPolicy(seedCluster({ networkPolicy: { enabled: true, clients: [{ podSelector: { matchLabels: { app: 'web' } } }] } }), 'pgpilot-system')!;
    // client-node's model spells `from` as `_from`; the wire (and the example) say `from`.
    const wire = JSON.parse(JSON.stringify(built.spec).replaceAll('"_from":', '"from":')) as unknown;
    expect(example.spec).toEqual(wire);
    expect(example.metadata).toEqual({ name: built.metadata!.name, namespace: built.metadata!.namespace });
    expect([example.apiVersion, example.kind]).toEqual([built.apiVersion, built.kind]);
  });
});
