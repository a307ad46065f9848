import { createRequire } from 'node:module';
import pino, { type Logger, type LoggerOptions } from 'pino';
import type PinoPretty from 'pino-pretty';

export type { Logger };

/** `json`: one JSON object per line. `pretty`: coloured human lines (pino-pretty). `auto`: pretty when stdout is a terminal. */
export type LogFormat = 'auto' | 'pretty' | 'json';

/** Fields of the per-request access line (src/server/access-log.ts), kept under one key. */
export const ACCESS_LOG_KEY = 'http';

/**
 * The service's logger. Tests and tools that pass no format get JSON, as before; the service
 * passes SLUICE_LOG_FORMAT. Why pino-pretty in this thread (a stream) rather than as a pino
 * transport (a worker thread): lines written just before process.exit are not lost, and it loads
 * only when a terminal will read the output.
 */
export function createLogger(level: string, format: LogFormat = 'json'): Logger {
  const options: LoggerOptions = {
    level,
    base: { service: 'sluice' },
    // Why: tokens and secrets must never reach logs even when a request object is logged whole.
    redact: ['req.headers.authorization', 'clientSecret', 'password', '*.clientSecret', 'connectionParams'],
  };
  const pretty = format === 'pretty' || (format === 'auto' && process.stdout.isTTY === true);
  return pretty ? pino(options, prettyStream()) : pino(options);
}

function prettyStream(): PinoPretty.PrettyStream {
  const build = createRequire(import.meta.url)('pino-pretty') as typeof PinoPretty;
  return build({
    sync: true,
    colorize: process.stdout.isTTY === true,
    translateTime: 'SYS:HH:MM:ss.l',
    // The access line's message already says everything its fields hold.
    ignore: `pid,hostname,service,${ACCESS_LOG_KEY}`,
  });
}
