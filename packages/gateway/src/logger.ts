import { type DestinationStream, type Logger, pino } from 'pino';
import type { LogLevel } from './options.js';

export type { DestinationStream, Logger };

/**
 * Fields that may never reach a log line with their value. Nothing in the gateway logs them on
 * purpose; this is the net under that rule, should a request or a body ever be logged whole.
 */
const REDACTED = [
  'authorization',
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'headers.cookie',
  'token',
  '*.token',
  'ticket',
  '*.ticket',
  'password',
  '*.password',
  'apiKey',
  'secret',
];

/**
 * JSON lines on `destination` (stdout by default) at `level`, each naming this node (`node`);
 * pino-compatible as the server's `logger`.
 */
export function createLogger(level: LogLevel, node: string, destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { service: 'authsocket', node },
    redact: { paths: REDACTED, censor: '[redacted]' },
  };
  // Synchronous on stdout: the lines written just before `process.exit` (`gateway stopped`) are never
  // lost in an async buffer the exit hook fails to flush. Per-message lines are at debug, so info costs little.
  return pino(options, destination ?? pino.destination({ dest: 1, sync: true }));
}
