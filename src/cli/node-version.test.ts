// The Node.js everything runs on: npm test, the sandbox and the benchmarks put Node 24 (from
// scripts/ensure-node.sh) first on PATH, so vitest, its workers and every `node` a test starts by
// name or through process.execPath (the process kubelet's pods, the operator, the agents) are the same.
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { MIN_NODE_MAJOR, unsupportedNode } from './node-version.js';

describe('Node.js runtime', () => {
  it(`runs on Node.js ${MIN_NODE_MAJOR} or later, and \`node\` on PATH is the same binary`, () => {
    console.log(`node ${process.version} at ${process.execPath}`);
    expect(unsupportedNode(process.versions.node)).toBeUndefined();
    expect(execFileSync('node', ['-p', 'process.version + " " + process.execPath'], { encoding: 'utf8' }).trim()).toBe(`${process.version} ${process.execPath}`);
  });

  it('refuses older versions with a message that names the version needed and the one found', () => {
    expect(unsupportedNode('20.20.2')).toBe('pgpilot needs Node.js 24 or later; this is Node.js 20.20.2');
    expect(unsupportedNode('22.12.0')).toMatch(/needs Node\.js 24 or later/);
    expect(unsupportedNode('v18.0.0')).toBeDefined();
    expect(unsupportedNode('nonsense')).toBeDefined();
    expect(unsupportedNode('24.0.0')).toBeUndefined();
    expect(unsupportedNode('24.22.3')).toBeUndefined();
    expect(unsupportedNode('26.12.1')).toBeUndefined();
  });
});
