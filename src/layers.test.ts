// The folders of src/ are layers: a module may import its own folder and the folders below it,
// never one above it or beside it (the same table is in README.md, "Architecture"). This test
// reads every import and fails on one that goes up or sideways, so a cycle cannot come back.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/** Lowest first. Folders on one line are peers and must not import each other. */
const LAYERS: string[][] = [
  ['util'], // small helpers for any layer (error text, JSON with a source name): imports nothing
  ['api'], // types, schema, names, labels, the pod contract
  ['runtime'], // Kubernetes client, logs, metrics, HTTP, informers, work queue, leader election
  ['postgres'], // PostgreSQL knowledge: LSNs, WAL names, conninfo, SQL, tools, the wire probe
  ['backup'], // object stores, archiving, fetching, base backups, catalogs, recovery plans
  ['instance'], // the instance agent (and the operator's client of its API)
  ['builders'], // desired Kubernetes objects of a cluster (pure)
  ['reconcilers'], // what the operator does per cluster
  ['controller', 'backup-job', 'upgrade-job'], // the loop that runs the reconcilers; the backup and purge Jobs; the upgrade Jobs
  ['cli'], // entry points
];

const SRC = dirname(fileURLToPath(import.meta.url));
const RANK = new Map(LAYERS.flatMap((folders, rank) => folders.map((f) => [f, rank] as const)));

function modules(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return modules(path);
    return e.name.endsWith('.ts') ? [path] : [];
  });
}

const IMPORT = /(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s*['"](\.{1,2}\/[^'"]+)['"]|\bimport\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g;

/** [importing file, imported path] for every relative import of a module. */
export function relativeImports(file: string, text: string): string[] {
  return [...text.matchAll(IMPORT)].map((m) => normalize(join(dirname(file), (m[1] ?? m[2])!)));
}

/** Why `from` may not import `to` (both relative to src/), or undefined when it may. */
export function layerViolation(from: string, to: string): string | undefined {
  const a = from.split('/')[0]!;
  const testFile = from.endsWith('.test.ts');
  if (to.startsWith('../test/support/') && testFile) return undefined;
  if (to.startsWith('..')) return `${from} imports ${to}, outside src/`;
  const b = to.split('/')[0]!;
  if (!to.includes('/')) return undefined; // a module at the top of src/ (this test)
  if (a === b) return undefined;
  const ra = RANK.get(a);
  const rb = RANK.get(b);
  if (ra === undefined) return `src/${a} is in no layer: add it to LAYERS (and README.md)`;
  if (rb === undefined) return `src/${b} is in no layer: add it to LAYERS (and README.md)`;
  if (rb > ra) return `${from} imports ${to}: ${a} may not import ${b}, a layer above it`;
  if (rb === ra) return `${from} imports ${to}: ${a} and ${b} are peers and may not import each other`;
  return undefined;
}

describe('layers', () => {
  it('every folder of src/ is in a layer', () => {
    const folders = readdirSync(SRC, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
    expect(folders.filter((f) => !RANK.has(f))).toEqual([]);
  });

  it('no module imports a folder above or beside its own', () => {
    const self = fileURLToPath(import.meta.url);
    const problems = modules(SRC).filter((path) => path !== self).flatMap((path) => {
      const from = relative(SRC, path);
      return relativeImports(from, readFileSync(path, 'utf8')).flatMap((to) => layerViolation(from, to) ?? []);
    });
    expect(problems).toEqual([]);
  });

  it('finds an import that goes up, sideways or outside, and reads every import form', () => {
    const text = [
      "import type { A } from '../reconcilers/types.js';",
      "import {\n  b,\n  c,\n} from '../backup/catalog.js';",
      "export { d } from './own.js';",
      "const e = await import('../backup-job/backup-run.js');",
    ].join('\n');
    const found = relativeImports('instance/agent.ts', text);
    expect(found).toEqual(['reconcilers/types.js', 'backup/catalog.js', 'instance/own.js', 'backup-job/backup-run.js']);
    expect(found.map((to) => layerViolation('instance/agent.ts', to))).toEqual([
      'instance/agent.ts imports reconcilers/types.js: instance may not import reconcilers, a layer above it',
      undefined,
      undefined,
      'instance/agent.ts imports backup-job/backup-run.js: instance may not import backup-job, a layer above it',
    ]);
    expect(layerViolation('controller/x.ts', 'backup-job/backup-run.js')).toBe('controller/x.ts imports backup-job/backup-run.js: controller and backup-job are peers and may not import each other');
    expect(layerViolation('postgres/sql.ts', '../test/support/x.js')).toMatch(/outside src/);
    expect(layerViolation('postgres/sql.test.ts', '../test/support/x.js')).toBeUndefined();
    expect(layerViolation('newfolder/x.ts', 'api/names.js')).toMatch(/in no layer/);
  });
});
