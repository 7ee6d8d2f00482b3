// Is a PostgreSQL server alive at host:port? Asked in its own protocol: an SSLRequest, which a
// live postmaster answers at once ('S' or 'N') even under load or at max_connections, and which
// needs no credentials. A frozen server whose kernel still accepts TCP does not answer.
import { connect } from 'node:net';

/** Does a PostgreSQL server answer at host:port? (SSLRequest → 'S' or 'N'.) */
export function postgresAnswers(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => {
      const req = Buffer.alloc(8);
      req.writeInt32BE(8, 0);
      req.writeInt32BE(80877103, 4);
      socket.write(req);
    });
    socket.once('data', (d: Buffer) => done(d[0] === 0x53 || d[0] === 0x4e));
  });
}
