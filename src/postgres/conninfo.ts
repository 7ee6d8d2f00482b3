// Pure text helpers: libpq conninfo strings, .pgpass lines, SQL literals/identifiers and
// postgresql.auto.conf edits. No I/O, so unit tests cover every escaping rule.

/** A libpq keyword=value; values with spaces, quotes or backslashes (or empty) are quoted. */
export function quoteConninfoValue(value: string): string {
  if (value !== '' && !/[\s'\\]/.test(value)) return value;
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

export function renderConninfo(params: Record<string, string | number | undefined>): string {
  return Object.entries(params)
    .filter((e): e is [string, string | number] => e[1] !== undefined)
    .map(([k, v]) => `${k}=${quoteConninfoValue(String(v))}`)
    .join(' ');
}

/** Parses `key=value key='quoted \' value'` as libpq does (URIs are not supported). */
export function parseConninfo(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  const n = text.length;
  const skipSpace = () => {
    while (i < n && /\s/.test(text[i]!)) i++;
  };
  while (true) {
    skipSpace();
    if (i >= n) break;
    let key = '';
    while (i < n && text[i] !== '=' && !/\s/.test(text[i]!)) key += text[i++];
    skipSpace();
    if (text[i] !== '=') throw new Error(`conninfo: missing "=" after ${JSON.stringify(key)}`);
    i++;
    skipSpace();
    let value = '';
    if (text[i] === "'") {
      i++;
      while (i < n && text[i] !== "'") {
        if (text[i] === '\\' && i + 1 < n) i++;
        value += text[i++];
      }
      if (i >= n) throw new Error('conninfo: unterminated quoted value');
      i++;
    } else {
      while (i < n && !/\s/.test(text[i]!)) {
        if (text[i] === '\\' && i + 1 < n) i++;
        value += text[i++];
      }
    }
    out[key] = value;
  }
  return out;
}

export interface PrimaryConninfoInput {
  host: string;
  port: number;
  user: string;
  passfile: string;
  applicationName: string;
  /**
   * TLS (tls-client.ts libpqTlsParams): verify-full against the name with `host` as the address
   * dialled, and the replication user's client certificate. The passfile stays: a cluster whose
   * TLS is not required authenticates replication by password.
   */
  tls?: Record<string, string>;
}

/** primary_conninfo of a replica: the password stays in the passfile, never in the conf. */
export function primaryConninfo(p: PrimaryConninfoInput): string {
  return renderConninfo({
    host: p.host,
    port: p.port,
    ...(p.tls ?? {}),
    user: p.user,
    passfile: p.passfile,
    application_name: p.applicationName,
    // A dead primary must not hang the walreceiver for the kernel's TCP timeout.
    connect_timeout: 5,
    keepalives_idle: 10,
    keepalives_interval: 5,
    keepalives_count: 3,
  });
}

/** `host:port` a replica follows, from its primary_conninfo (null when it names no host); hostaddr, the address dialled, wins over a host name. */
export function followingFromConninfo(conninfo: string | null | undefined): string | null {
  if (!conninfo) return null;
  let p: Record<string, string>;
  try {
    p = parseConninfo(conninfo);
  } catch {
    return null;
  }
  const host = p.hostaddr || p.host;
  if (!host) return null;
  return `${host}:${p.port || '5432'}`;
}

/** One .pgpass line; `:` and `\` in fields are escaped with a backslash. */
export function pgpassLine(host: string, port: number | '*', database: string, user: string, password: string): string {
  const esc = (s: string) => s.replace(/\\/g, '\\\\').replace(/:/g, '\\:');
  if (/[\r\n]/.test(password) || /[\r\n]/.test(user)) throw new Error('a .pgpass field may not contain a line break');
  return `${esc(host)}:${port === '*' ? '*' : String(port)}:${esc(database)}:${esc(user)}:${esc(password)}\n`;
}

/** SQL string literal (standard_conforming_strings on; backslashes need the E'' form). */
export function quoteLiteral(value: string): string {
  if (value.includes('\0')) throw new Error('a SQL literal may not contain NUL');
  const body = value.replace(/'/g, "''");
  return value.includes('\\') ? `E'${body.replace(/\\/g, '\\\\')}'` : `'${body}'`;
}

export function quoteIdent(name: string): string {
  if (name.includes('\0')) throw new Error('a SQL identifier may not contain NUL');
  return `"${name.replace(/"/g, '""')}"`;
}

/** A value in postgresql.conf syntax. */
export function quoteConfValue(value: string): string {
  if (/[\r\n]/.test(value)) throw new Error('a configuration value may not contain a line break');
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

/**
 * postgresql.auto.conf with `name` set to `value` (or removed when null), every earlier line for
 * it dropped. Used while postgres is stopped (after a clone or rewind); ALTER SYSTEM when it runs.
 */
export function setAutoConfParameter(content: string, name: string, value: string | null): string {
  const re = new RegExp(`^\\s*${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s*(=|\\s)`, 'i');
  const lines = content.split('\n').filter((l) => !re.test(l));
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  if (lines.length === 0) lines.push('# Do not edit this file manually!', '# It will be overwritten by the ALTER SYSTEM command.');
  if (value !== null) lines.push(`${name} = ${quoteConfValue(value)}`);
  return lines.join('\n') + '\n';
}
