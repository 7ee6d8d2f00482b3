// SCRAM-SHA-256 verifiers as PostgreSQL stores them in pg_authid.rolpassword
// ("SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>", RFC 5802/7677). The agent sends a
// verifier instead of a password, so the plaintext never reaches the server (nor its log), and
// checks a password against the stored verifier to learn which one its server accepts now.
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';

/** PostgreSQL's default (scram_iterations, PostgreSQL 16+; fixed before). */
export const SCRAM_ITERATIONS = 4096;

const hmac = (key: Buffer, text: string) => createHmac('sha256', key).update(text).digest();
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest();

/**
 * Whether `password` hashes the same in the agent as in the server. PostgreSQL runs SASLprep over
 * the password first; for printable ASCII that is the identity, for anything else the agent does
 * not reimplement it (and sends the password as a literal in a session that logs nothing).
 */
export function verifierComputable(password: string): boolean {
  return /^[\x20-\x7e]*$/.test(password);
}

function keys(password: string, salt: Buffer, iterations: number): { storedKey: Buffer; serverKey: Buffer } {
  const salted = pbkdf2Sync(Buffer.from(password, 'utf8'), salt, iterations, 32, 'sha256');
  return { storedKey: sha256(hmac(salted, 'Client Key')), serverKey: hmac(salted, 'Server Key') };
}

/** A verifier for ALTER ROLE … PASSWORD (PostgreSQL stores a string of this shape as given). */
export function scramVerifier(password: string, salt: Buffer = randomBytes(16), iterations = SCRAM_ITERATIONS): string {
  const k = keys(password, salt, iterations);
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${k.storedKey.toString('base64')}:${k.serverKey.toString('base64')}`;
}

const VERIFIER = /^SCRAM-SHA-256\$(\d+):([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+):([A-Za-z0-9+/=]+)$/;

/**
 * Whether a stored rolpassword accepts `password`: a SCRAM verifier is recomputed with its salt
 * and iterations; an MD5 hash ("md5" + md5(password + user)) is compared the same way.
 */
export function passwordMatches(stored: string | null, password: string, username: string): boolean {
  if (!stored) return false;
  const m = VERIFIER.exec(stored);
  if (m) {
    const iterations = Number(m[1]);
    if (!Number.isSafeInteger(iterations) || iterations < 1 || iterations > 10_000_000) return false;
    const want = Buffer.from(m[3]!, 'base64');
    const got = keys(password, Buffer.from(m[2]!, 'base64'), iterations).storedKey;
    return want.length === got.length && timingSafeEqual(want, got);
  }
  if (/^md5[0-9a-f]{32}$/.test(stored)) return stored === `md5${createHash('md5').update(password + username).digest('hex')}`;
  return false;
}

/** What the operator tells an agent about a password it should see in its mounted Secret: no secret material. */
export function passwordDigest(password: string): string {
  return createHash('sha256').update(password, 'utf8').digest('hex');
}
