import { pino, type Logger } from 'pino';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * JSON logs on stdout. Credentials are never passed to a logger; the redaction paths are a
 * second line of defence for an object logged whole by mistake.
 */
export function createLogger(level: LogLevel = 'info'): Logger {
  return pino({
    level,
    base: { component: 'hpc-user-operator', pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: [
        'secretAccessKey',
        '*.secretAccessKey',
        'credentials',
        '*.credentials',
        'data',
        '*.data',
        'secret_access_key',
        '*.secret_access_key',
        'signature',
        '*.signature',
      ],
      censor: '[redacted]',
    },
  });
}

export function isLogLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value);
}
