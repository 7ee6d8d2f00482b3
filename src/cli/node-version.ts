// The first import of the `pgpilot` command (ES modules run their imports in order): refuses to
// start on a Node.js older than the one pgpilot is built and tested on, before anything else runs.
export const MIN_NODE_MAJOR = 24;

/** Why `version` (process.versions.node) cannot run pgpilot, or undefined when it can. */
export function unsupportedNode(version: string): string | undefined {
  const major = Number(/^v?(\d+)\./.exec(version)?.[1]);
  if (Number.isInteger(major) && major >= MIN_NODE_MAJOR) return undefined;
  return `pgpilot needs Node.js ${MIN_NODE_MAJOR} or later; this is Node.js ${version}`;
}

const refused = unsupportedNode(process.versions.node);
if (refused !== undefined) {
  console.error(JSON.stringify({ level: 'error', msg: 'fatal', err: `${refused} (${process.execPath})` }));
  process.exit(1);
}
