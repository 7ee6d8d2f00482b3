// Container images → local commands. There is no container runtime: an image names what to run.
//
//   <anything>/pgpilot:<tag>      ENTRYPOINT node /opt/pgpilot/dist/cli/main.js, CMD [operator]
//                                 (the Dockerfile's operator target; the checkout is bind-mounted
//                                 read-only at /opt/pgpilot, standing in for the image's /app)
//   <anything>/postgresql:<ver>   ENTRYPOINT node /opt/pgpilot/dist/cli/main.js, no CMD; PATH starts with
//                                 /usr/lib/postgresql/<major>/bin, or 15's when <major> is not
//                                 installed (the pod then gets a Warning ImageVersionSubstituted)
//   e2e.local/node[:tag]          ENTRYPOINT node — TEST ONLY, for the kubelet's own e2e test
//   anything else                 ErrImagePull
import { existsSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Where the checkout appears inside pgpilot containers. The image's /app: a fixed path, mounted
 * read-only after the pod's own volumes, so a checkout under /tmp stays visible although the
 * pods mount an emptyDir over /tmp.
 */
export const APP_PATH = '/opt/pgpilot';

export interface ResolvedImage {
  /** Host directories the image's files stand for (checkout → APP_PATH). */
  mounts: Array<{ hostPath: string; containerPath: string; readOnly: boolean }>;
  entrypoint: string[];
  cmd: string[];
  env: Record<string, string>;
  workingDir: string;
  /** Set when the binaries that run are not the ones the image names. */
  substitution?: string;
}

export class ImagePullError extends Error {}

const BASE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
export const FALLBACK_PG_MAJOR = '15';

export function parseImage(image: string): { repository: string; tag: string } {
  const noDigest = image.split('@')[0]!;
  const slash = noDigest.lastIndexOf('/');
  const colon = noDigest.lastIndexOf(':');
  return colon > slash ? { repository: noDigest.slice(0, colon), tag: noDigest.slice(colon + 1) } : { repository: noDigest, tag: 'latest' };
}

export function resolveImage(image: string, repoRoot: string): ResolvedImage {
  const { repository, tag } = parseImage(image);
  const main = join(APP_PATH, 'dist/cli/main.js');
  const app = [{ hostPath: repoRoot, containerPath: APP_PATH, readOnly: true }];
  const node = process.execPath;
  const nodeEnv = { PATH: BASE_PATH, NODE_ENV: 'production', NODE_OPTIONS: '--enable-source-maps' };
  if (repository.endsWith('/pgpilot')) {
    return { mounts: app, entrypoint: [node, main], cmd: ['operator'], env: nodeEnv, workingDir: APP_PATH };
  }
  if (repository.endsWith('/postgresql')) {
    const major = /^(\d+)/.exec(tag)?.[1] ?? '';
    const wanted = `/usr/lib/postgresql/${major}/bin`;
    const found = major !== '' && existsSync(wanted);
    const bin = found ? wanted : `/usr/lib/postgresql/${FALLBACK_PG_MAJOR}/bin`;
    if (!existsSync(bin)) throw new ImagePullError(`image ${image}: no PostgreSQL binaries at ${wanted} nor ${bin}`);
    return {
      mounts: app,
      entrypoint: [node, main],
      cmd: [],
      env: { ...nodeEnv, PATH: `${bin}:${BASE_PATH}`, PG_MAJOR: found ? major : FALLBACK_PG_MAJOR },
      workingDir: '/var/lib/postgresql',
      ...(found ? {} : { substitution: `image ${image} asks for PostgreSQL ${major || tag}; running the PostgreSQL ${FALLBACK_PG_MAJOR} binaries of ${bin}` }),
    };
  }
  if (repository === 'e2e.local/node') {
    return { mounts: [], entrypoint: [node], cmd: [], env: { PATH: BASE_PATH }, workingDir: '/' };
  }
  throw new ImagePullError(
    `image ${image}: the process kubelet only runs */pgpilot, */postgresql and (tests) e2e.local/node images; see e2e/kubelet/README.md`,
  );
}
