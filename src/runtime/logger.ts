// Structured JSON logs (pino). Secrets never reach a log: credentials are redacted by key.
import { pino, stdTimeFunctions, type Logger } from 'pino';

export type { Logger };

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * `sync`: every line written before the call returns, in order (a Job's command, whose last line
 * is its termination message); otherwise pino writes asynchronously, which the servers want.
 */
export function createLogger(level: LogLevel = 'info', component = 'operator', opts: { sync?: boolean } = {}): Logger {
  const options = {
    level,
    base: { component },
    timestamp: stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
    redact: { paths: ['password', '*.password', 'token', '*.token', 'stringData', '*.stringData', 'data', '*.data'], censor: '[redacted]' },
  };
  return opts.sync ? pino(options, pino.destination({ dest: 1, sync: true })) : pino(options);
}
