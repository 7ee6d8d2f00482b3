/**
 * An S3 server (s3rver) on loopback for integration tests, e2e tests and benchmarks.
 *
 * It runs in a child process: s3rver needs `NODE_OPTIONS=--openssl-legacy-provider` on Node 20
 * or every listing longer than one page fails, and a child can be killed and restarted on the
 * same port and directory to simulate an outage. The child exits when its parent goes away
 * (its stdin closes), so a crashed test run leaves no server behind.
 *
 *   const s3 = await startS3rver({ buckets: ['archive'] });
 *   const store = openStore(s3.storeConfig('archive'), s3.env);
 *   await s3.kill();     // outage: connections refused
 *   await s3.restart();  // same port, same data
 *   await s3.stop();     // kill and remove the data directory (unless it was given)
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { S3StoreConfig } from '../../src/backup/store-config.js';
import { parseJson } from '../../src/util/json.js';

const execFileAsync = promisify(execFile);
const require = createRequire(import.meta.url);

/** s3rver's built-in account. */
export const S3RVER_ACCESS_KEY = 'S3RVER';
export const S3RVER_SECRET_KEY = 'S3RVER';
/** Names of the variables storeConfig() points at; `env` holds them. */
export const S3RVER_ACCESS_KEY_ENV = 'S3RVER_ACCESS_KEY_ID';
export const S3RVER_SECRET_KEY_ENV = 'S3RVER_SECRET_ACCESS_KEY';

export interface S3rverOptions {
  /** Buckets created at start (3-63 characters). */
  buckets?: string[];
  /** Serve HTTPS with a self-signed certificate made at run time (for pgBackRest). */
  tls?: boolean;
  /** Data directory; a fresh temp directory by default (removed by stop()). */
  directory?: string;
  /** Port; a free one by default. */
  port?: number;
}

export interface S3rver {
  /** http(s)://127.0.0.1:<port> */
  readonly endpoint: string;
  readonly port: number;
  readonly directory: string;
  readonly tls: boolean;
  /** PEM files of the self-signed certificate (tls only). */
  readonly certFile: string | undefined;
  readonly keyFile: string | undefined;
  /** Pid of the running server, undefined while killed. */
  readonly pid: number | undefined;
  /** The credential variables storeConfig() names (S3RVER / S3RVER). */
  readonly env: Record<string, string>;
  /** A config for one bucket: path style, WHEN_REQUIRED checksums, TLS verification off. */
  storeConfig(bucket: string): S3StoreConfig;
  /** SIGKILL, as an outage: the port refuses connections until restart(). */
  kill(): Promise<void>;
  /** Starts again on the same port and directory. */
  restart(): Promise<void>;
  /** Kills the server and removes the directory if this helper made it. */
  stop(): Promise<void>;
}

// Runs in the child: argv = [s3rverModule, optionsJson]. Prints {"port": n} once listening.
const CHILD = `
const S3rver = require(process.argv[1]);
const o = JSON.parse(process.argv[2]);
const fs = require('fs');
const opts = { address: '127.0.0.1', port: o.port, directory: o.directory, silent: true,
  configureBuckets: o.buckets.map((name) => ({ name, configs: [] })) };
if (o.keyFile) { opts.key = fs.readFileSync(o.keyFile); opts.cert = fs.readFileSync(o.certFile); }
new S3rver(opts).run().then((addr) => { process.stdout.write(JSON.stringify({ port: addr.port }) + '\\n'); },
  (err) => { process.stderr.write(String(err && err.stack || err) + '\\n'); process.exit(1); });
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
`;

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of running) c.kill('SIGKILL');
});

async function makeCert(dir: string): Promise<{ certFile: string; keyFile: string }> {
  const certFile = path.join(dir, 'cert.pem');
  const keyFile = path.join(dir, 'key.pem');
  await execFileAsync('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '7', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', keyFile, '-out', certFile,
  ], { timeout: 30_000 });
  return { certFile, keyFile };
}

function spawnServer(opts: { port: number; directory: string; buckets: string[]; certFile?: string; keyFile?: string }): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, ['-e', CHILD, require.resolve('s3rver'), JSON.stringify(opts)], {
    env: { ...process.env, NODE_OPTIONS: '--openssl-legacy-provider' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  running.add(child);
  child.once('exit', () => running.delete(child));
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`s3rver did not start within 20 s: ${err}`));
    }, 20_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n')[0];
      if (out.includes('\n') && line) {
        clearTimeout(timer);
        resolve({ child, port: parseJson<{ port: number }>(line, "s3rver's first line").port });
      }
    });
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`s3rver exited at start (${code ?? signal}): ${err}`));
    });
  });
}

function killChild(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

export async function startS3rver(options: S3rverOptions = {}): Promise<S3rver> {
  const ownDir = options.directory === undefined;
  const directory = options.directory ?? (await mkdtemp(path.join(os.tmpdir(), 'pgpilot-s3rver-')));
  const tls = options.tls ?? false;
  // The certificate lives outside the data directory, which s3rver treats as buckets.
  const certDir = tls ? await mkdtemp(path.join(os.tmpdir(), 'pgpilot-s3rver-tls-')) : undefined;
  const cert = certDir ? await makeCert(certDir) : undefined;
  const buckets = options.buckets ?? [];
  const first = await spawnServer({ port: options.port ?? 0, directory, buckets, ...cert });
  let child: ChildProcess | undefined = first.child;
  const port = first.port;
  const env = { [S3RVER_ACCESS_KEY_ENV]: S3RVER_ACCESS_KEY, [S3RVER_SECRET_KEY_ENV]: S3RVER_SECRET_KEY };
  const endpoint = `${tls ? 'https' : 'http'}://127.0.0.1:${port}`;

  return {
    endpoint,
    port,
    directory,
    tls,
    certFile: cert?.certFile,
    keyFile: cert?.keyFile,
    get pid() {
      return child?.pid;
    },
    env,
    storeConfig: (bucket) => ({
      kind: 's3',
      endpoint,
      bucket,
      region: 'us-east-1',
      forcePathStyle: true,
      checksums: 'WHEN_REQUIRED',
      ...(tls ? { insecureSkipTlsVerify: true } : {}),
      accessKeyIdEnv: S3RVER_ACCESS_KEY_ENV,
      secretAccessKeyEnv: S3RVER_SECRET_KEY_ENV,
    }),
    async kill() {
      await killChild(child);
      child = undefined;
    },
    async restart() {
      await killChild(child);
      child = (await spawnServer({ port, directory, buckets, ...cert })).child;
    },
    async stop() {
      await killChild(child);
      child = undefined;
      if (ownDir) await rm(directory, { recursive: true, force: true });
      if (certDir) await rm(certDir, { recursive: true, force: true });
    },
  };
}
