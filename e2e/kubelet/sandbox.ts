// One container = one local process tree in its own mount and UTS namespaces, tracked by a
// cgroup v2 group when the host has one (so killing or freezing a container reaches the
// processes it forked, e.g. postgres under the instance agent), else by its process group.
//
// The chain keeps one pid from spawn to the container's command:
//   unshare --mount --uts --propagation private -- sh -c SCRIPT  (joins the cgroup, bind-mounts
//   the volumes at their mountPaths, sets the hostname, cd workingDir)
//   → exec setpriv --reuid --regid --groups [--no-new-privs] → exec the command.
// The binds are private to the namespace: the host never sees /var/run/secrets/... of a pod,
// though empty mount points get created on the host filesystem (mkdir -p), as mount needs them.
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface Mount {
  hostPath: string;
  containerPath: string;
  readOnly: boolean;
}

export interface ProcessUser {
  uid: number;
  gid: number;
  groups: number[];
}

export interface ProcessSpec {
  argv: string[];
  env: Record<string, string>;
  workingDir: string;
  mounts: Mount[];
  user?: ProcessUser;
  noNewPrivs: boolean;
  hostname: string;
  /** cgroup v2 directory created for this process, or undefined (process group fallback). */
  cgroupDir?: string;
  logPath: string;
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface SandboxProcess {
  pid: number;
  exited: Promise<ExitStatus>;
  alive(): boolean;
}

// Two phases, because a mount can shadow another one's source (an emptyDir at /tmp hides a
// dataDir under /tmp, one at /dev/shm hides Memory emptyDirs): first every source is bound into
// a tmpfs private to the namespace (STAGE), then each staged copy is bound at its mountPath.
const STAGE = '/run/pgpilot-kubelet-stage';
const SCRIPT = `
set -e
cg=$1; host=$2; wd=$3; n=$4; stage=$5; shift 5
[ "$cg" = - ] || echo $$ > "$cg/cgroup.procs"
hostname "$host"
mount -t tmpfs -o size=64k,mode=0700 pgpilot-stage "$stage"
i=0; k=0
for a; do
  [ "$i" -lt "$n" ] || break
  case $k in
    0) src=$a ;;
    2) if [ -d "$src" ]; then mkdir "$stage/$i"; else : > "$stage/$i"; fi
       mount --bind "$src" "$stage/$i"; i=$((i+1)) ;;
  esac
  k=$(( (k+1) % 3 ))
done
i=0
while [ "$i" -lt "$n" ]; do
  dst=$2; ro=$3; shift 3
  if [ -d "$stage/$i" ]; then mkdir -p "$dst"; elif [ ! -e "$dst" ]; then mkdir -p "$(dirname "$dst")"; : > "$dst"; fi
  mount --bind "$stage/$i" "$dst"
  if [ "$ro" = ro ]; then mount -o remount,bind,ro "$dst"; fi
  i=$((i+1))
done
umount -l "$stage"
cd "$wd" 2>/dev/null || { mkdir -p "$wd"; cd "$wd"; }
exec "$@"
`;

export function launchProcess(spec: ProcessSpec): SandboxProcess {
  // Parents before children, so a mount inside another volume's mountPath lands on top.
  const mounts = [...spec.mounts].sort((a, b) => a.containerPath.split('/').length - b.containerPath.split('/').length);
  const priv = spec.user
    ? [
        'setpriv',
        `--reuid=${spec.user.uid}`,
        `--regid=${spec.user.gid}`,
        ...(spec.user.groups.length ? [`--groups=${spec.user.groups.join(',')}`] : ['--clear-groups']),
        ...(spec.noNewPrivs ? ['--no-new-privs'] : []),
        '--',
      ]
    : [];
  const args = [
    '--mount',
    '--uts',
    '--propagation',
    'private',
    '--',
    '/bin/sh',
    '-c',
    SCRIPT,
    'sh',
    spec.cgroupDir ?? '-',
    spec.hostname,
    spec.workingDir,
    String(mounts.length),
    STAGE,
    ...mounts.flatMap((m) => [m.hostPath, m.containerPath, m.readOnly ? 'ro' : 'rw']),
    ...priv,
    ...spec.argv,
  ];
  mkdirSync(STAGE, { recursive: true, mode: 0o700 });
  const fd = openSync(spec.logPath, 'a');
  let child;
  try {
    // detached: its own process group (the fallback kill target) and no terminal signals from ours.
    child = spawn('unshare', args, { env: spec.env, stdio: ['ignore', fd, fd], detached: true });
  } finally {
    closeSync(fd);
  }
  let done = false;
  const exited = new Promise<ExitStatus>((resolve) => {
    child.on('error', () => {
      done = true;
      resolve({ code: 127, signal: null });
    });
    child.on('exit', (code, signal) => {
      done = true;
      resolve({ code, signal });
    });
  });
  if (child.pid === undefined) throw new Error(`could not spawn unshare for ${spec.argv.join(' ')}`);
  return { pid: child.pid, exited, alive: () => !done };
}

/** Signals the process itself (SIGTERM, SIGSTOP...): only ever a pid this kubelet spawned. */
export function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* already gone */
  }
}

/** cgroup v2 groups under one root per kubelet; undefined root = not available here. */
export class Cgroups {
  private constructor(readonly root: string | undefined) {}

  static async create(name: string): Promise<Cgroups> {
    const mountPoint = findCgroup2Mount();
    if (!mountPoint) return new Cgroups(undefined);
    const root = join(mountPoint, name);
    try {
      await mkdir(root, { recursive: true });
      return new Cgroups(root);
    } catch {
      return new Cgroups(undefined);
    }
  }

  async make(...parts: string[]): Promise<string | undefined> {
    if (!this.root) return undefined;
    const dir = join(this.root, ...parts);
    await mkdir(dir, { recursive: true });
    return dir;
  }

  /** Every pid in the group (empty when the group does not exist). */
  async pids(dir: string): Promise<number[]> {
    try {
      return (await readFile(join(dir, 'cgroup.procs'), 'utf8')).split('\n').filter(Boolean).map(Number);
    } catch {
      return [];
    }
  }

  async kill(dir: string): Promise<void> {
    await writeFile(join(dir, 'cgroup.kill'), '1').catch(() => undefined);
  }

  async freeze(dir: string, frozen: boolean): Promise<void> {
    await writeFile(join(dir, 'cgroup.freeze'), frozen ? '1' : '0');
  }

  /** Removes a group once empty (the kernel refuses while processes remain); children first. */
  async remove(dir: string): Promise<void> {
    for (let i = 0; i < 50; i++) {
      try {
        await rmdir(dir);
        return;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') return;
        if (code === 'EBUSY' && (await this.pids(dir)).length) await this.kill(dir);
        await sleep(50);
      }
    }
  }
}

function findCgroup2Mount(): string | undefined {
  try {
    for (const line of readFileSync('/proc/mounts', 'utf8').split('\n')) {
      const [, mnt, type] = line.split(' ');
      if (type === 'cgroup2' && mnt) return mnt;
    }
  } catch {
    /* no /proc */
  }
  return undefined;
}

/**
 * Per-pod copies of /etc/passwd and /etc/group that name the pod's runAsUser/runAsGroup, as the
 * images do: initdb and libpq look the effective UID up. UID/GID 26 is "postgres" and 65532
 * "pgpilot" (the Dockerfile's users); host entries with the same name or id are dropped from the
 * copy, as the image's Dockerfile moves Debian's "tape" (GID 26) aside. Other ids: "pod-<id>".
 */
export async function writeIdentityFiles(dir: string, user: ProcessUser | undefined): Promise<{ passwd: string; group: string }> {
  await mkdir(dir, { recursive: true });
  let passwd = await readFile('/etc/passwd', 'utf8');
  let group = await readFile('/etc/group', 'utf8');
  if (user) {
    const nameOf = (id: number) => (id === 26 ? 'postgres' : id === 65532 ? 'pgpilot' : `pod-${id}`);
    const uname = nameOf(user.uid);
    const gname = nameOf(user.gid);
    const keep = (text: string, name: string, id: number) =>
      text
        .split('\n')
        .filter((l) => l && !(l.split(':')[0] === name || l.split(':')[2] === String(id)))
        .join('\n');
    const home = user.uid === 26 ? '/var/lib/postgresql' : '/';
    passwd = `${keep(passwd, uname, user.uid)}\n${uname}:x:${user.uid}:${user.gid}::${home}:/bin/sh\n`;
    group = `${keep(group, gname, user.gid)}\n${gname}:x:${user.gid}:\n`;
  }
  const paths = { passwd: join(dir, 'passwd'), group: join(dir, 'group') };
  await writeFile(paths.passwd, passwd);
  await writeFile(paths.group, group);
  return paths;
}
