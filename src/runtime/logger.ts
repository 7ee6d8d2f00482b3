// Structured JSON logs (pino). Secrets never reach a log: credentials are redacted by key.
import { pino, stdTimeFunctions, type Logger } from 'pino';

export type { Logger };

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function createLogger(level: LogLevel = 'info', component = 'operator'): Logger {
  return pino({
    level,
    base: { component },
    timestamp: stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    redact: { paths: ['password', '*.password', 'token', '*.token', 'stringData', '*.stringData', 'data', '*.data'], censor: '[redacted]' },
  });
}
