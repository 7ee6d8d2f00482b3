// Validation of API request bodies and the bearer token check (pure).
import { createHash, timingSafeEqual } from 'node:crypto';
import type { BootstrapRequest, CorrectionRequest, FenceRequest, FollowRequest, PasswordRequest, PostUpgradeRequest, RestartPermitRequest } from './api-types.js';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const HOST = /^[A-Za-z0-9]([A-Za-z0-9.:-]{0,251}[A-Za-z0-9])?$/;

function endpoint(v: unknown, field: string): { host: string; port: number } {
  if (!isObject(v)) throw new HttpError(400, `${field} must be an object with host and port`);
  const { host, port } = v;
  if (typeof host !== 'string' || !HOST.test(host)) throw new HttpError(400, `${field}.host must be a host name or IP address`);
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) throw new HttpError(400, `${field}.port must be an integer 1-65535`);
  return { host, port };
}

export function parseBootstrapRequest(body: unknown): BootstrapRequest {
  if (!isObject(body)) throw new HttpError(400, 'body must be a JSON object');
  if (body.mode === 'initdb') return { mode: 'initdb' };
  if (body.mode === 'clone') return { mode: 'clone', primary: endpoint(body.primary, 'primary') };
  if (body.mode === 'restore') return { mode: 'restore' };
  throw new HttpError(400, 'mode must be "initdb", "clone" or "restore"');
}

export function parseFollowRequest(body: unknown): FollowRequest {
  if (!isObject(body)) throw new HttpError(400, 'body must be a JSON object');
  if (body.reclone !== undefined && typeof body.reclone !== 'boolean') throw new HttpError(400, 'reclone must be true or false');
  return { primary: endpoint(body.primary, 'primary'), ...(body.reclone ? { reclone: true } : {}) };
}

export function parseFenceRequest(body: unknown): FenceRequest {
  if (!isObject(body)) throw new HttpError(400, 'body must be a JSON object');
  const { stopSeconds } = body;
  if (stopSeconds === undefined) return {};
  if (typeof stopSeconds !== 'number' || !Number.isInteger(stopSeconds) || stopSeconds < 1 || stopSeconds > 3600) throw new HttpError(400, 'stopSeconds must be an integer from 1 to 3600');
  return { stopSeconds };
}

/** POST /v1/restart-permit: `{"seconds": n}`, 1 to MAX_PERMIT_SECONDS. */
export function parsePostUpgradeRequest(body: unknown): PostUpgradeRequest {
  if (!isObject(body)) throw new HttpError(400, 'body must be a JSON object');
  const { fromMajor } = body;
  if (typeof fromMajor !== 'number' || !Number.isInteger(fromMajor) || fromMajor < 9 || fromMajor > 99) throw new HttpError(400, 'fromMajor must be a PostgreSQL major version (an integer)');
  if (typeof body.removeOld !== 'boolean') throw new HttpError(400, 'removeOld must be true or false');
  return { fromMajor, removeOld: body.removeOld };
}

export function parseRestartPermitRequest(body: unknown, maxSeconds: number): RestartPermitRequest {
  if (!isObject(body)) throw new HttpError(400, 'body must be a JSON object');
  const { seconds } = body;
  if (typeof seconds !== 'number' || !Number.isInteger(seconds) || seconds < 1 || seconds > maxSeconds) throw new HttpError(400, `seconds must be an integer from 1 to ${maxSeconds}`);
  return { seconds };
}

/** `?wait=<ms>` of an operation call: how long to wait for it (undefined: until it ends). */
export function parseWait(url: string | undefined): number | undefined {
  const raw = new URL(url ?? '/', 'http://agent').searchParams.get('wait');
  if (raw === null) return undefined;
  const ms = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(ms) || ms > 3_600_000) throw new HttpError(400, `wait must be a whole number of milliseconds from 0 to 3600000 (got ${JSON.stringify(raw)})`);
  return ms;
}

/**
 * Constant-time comparison of `Authorization: Bearer <token>` with the expected token. Both sides
 * are hashed first so that timingSafeEqual compares equal lengths and the length leaks nothing.
 */
export function bearerMatches(header: string | undefined, expected: string): boolean {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  const given = m?.[1] ?? '';
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b) && given.length > 0;
}

const SLOT_NAME = /^[a-z0-9_]{1,63}$/;
const DATABASE_NAME = /^[^\0]{1,63}$/;

/** POST /v1/correct: one of the actions of CorrectionRequest, its fields checked. */
export function parseCorrectionRequest(body: unknown): CorrectionRequest {
  if (!isObject(body)) throw new HttpError(400, 'body must be a JSON object');
  const wholeNumber = (v: unknown, field: string, max: number) => {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > max) throw new HttpError(400, `${field} must be a whole number from 0 to ${max}`);
    return v;
  };
  switch (body.action) {
    case 'terminateIdleInTransaction':
      return { action: body.action, olderThanSeconds: wholeNumber(body.olderThanSeconds, 'olderThanSeconds', 7 * 86400) };
    case 'dropSlot':
      if (typeof body.slot !== 'string' || !SLOT_NAME.test(body.slot)) throw new HttpError(400, 'slot must be a replication slot name (lowercase letters, digits, _)');
      return { action: body.action, slot: body.slot, minRetainedBytes: wholeNumber(body.minRetainedBytes, 'minRetainedBytes', Number.MAX_SAFE_INTEGER) };
    case 'vacuumFreeze': {
      const { databases } = body;
      if (!Array.isArray(databases) || databases.length === 0 || databases.length > 64 || !databases.every((d) => typeof d === 'string' && DATABASE_NAME.test(d))) {
        throw new HttpError(400, 'databases must be a list of 1 to 64 database names');
      }
      return { action: body.action, databases: databases as string[] };
    }
    default:
      throw new HttpError(400, 'action must be "terminateIdleInTransaction", "dropSlot" or "vacuumFreeze"');
  }
}

const LSN = /^[0-9A-F]{1,8}\/[0-9A-F]{1,8}$/i;

/** POST /v1/password: a role, a step, the new password's SHA-256 digest (hex), and the release's LSN. */
export function parsePasswordRequest(body: unknown, maxHoldMs: number): PasswordRequest {
  if (!isObject(body)) throw new HttpError(400, 'body must be a JSON object');
  const { role, step, digest, lsn, holdMs } = body;
  if (role !== 'superuser' && role !== 'app') throw new HttpError(400, 'role must be "superuser" or "app"');
  if (step !== 'hold' && step !== 'apply' && step !== 'release') throw new HttpError(400, 'step must be "hold", "apply" or "release"');
  if (typeof digest !== 'string' || !/^[0-9a-f]{64}$/.test(digest)) throw new HttpError(400, 'digest must be a SHA-256 digest in lowercase hex');
  if (lsn !== undefined && (typeof lsn !== 'string' || !LSN.test(lsn))) throw new HttpError(400, 'lsn must be a WAL position such as 0/3000148');
  if (holdMs !== undefined && (typeof holdMs !== 'number' || !Number.isInteger(holdMs) || holdMs < 1 || holdMs > maxHoldMs)) throw new HttpError(400, `holdMs must be an integer from 1 to ${maxHoldMs}`);
  return { role, step, digest, ...(lsn !== undefined ? { lsn } : {}), ...(holdMs !== undefined ? { holdMs } : {}) };
}
