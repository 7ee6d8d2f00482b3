// The files `npm run gen` writes, with their content (pure; paths relative to the repo root).
import { stringify } from 'yaml';
import { allCrds } from './crd.js';

const HEADER = '# Generated from src/api by `npm run gen`. Do not edit by hand.\n';

export function generatedFiles(): Array<{ path: string; content: string }> {
  const files: Array<{ path: string; content: string }> = [];
  for (const crd of allCrds()) {
    const name = (crd.metadata as { name: string }).name;
    const content = HEADER + stringify(crd, { lineWidth: 0 });
    files.push({ path: `crds/${name}.yaml`, content });
    files.push({ path: `charts/pgpilot/crds/${name}.yaml`, content });
  }
  return files;
}
