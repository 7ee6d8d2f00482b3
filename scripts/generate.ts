// Writes generated files from their single sources of truth:
//   src/api (TypeBox) → crds/<plural>.yaml and charts/pgpilot/crds/<plural>.yaml
//   src/builders/alerts.ts → charts/pgpilot/templates/prometheusrule.yaml (the chart's PrometheusRule)
//   scripts/dashboards (Grafana Foundation SDK) → dashboards/<name>.json and charts/pgpilot/dashboards/<name>.json
//   scripts/bundle (the Helm chart rendered by the real helm, src/api, Chart.yaml) → the OLM bundle under bundle/
// `--check` writes nothing and exits 1 when a file differs (a unit test runs the same comparison).
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { generatedFiles } from '../src/api/generated-files.js';
import { alertGeneratedFiles } from '../src/builders/alerts.js';
import { dashboardGeneratedFiles } from './dashboards/index.js';
import { bundleGeneratedFiles } from './bundle/index.js';

const check = process.argv.includes('--check');
let stale = 0;
for (const { path, content } of [...generatedFiles(), ...alertGeneratedFiles(), ...dashboardGeneratedFiles(), ...(await bundleGeneratedFiles())]) {
  const current = await readFile(path, 'utf8').catch(() => undefined);
  if (current === content) continue;
  if (check) {
    console.error(`stale: ${path} (run npm run gen)`);
    stale++;
  } else {
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, content);
    console.log(`wrote ${path}`);
  }
}
process.exit(stale ? 1 : 0);
