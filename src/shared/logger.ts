import pino, { type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: 'sluice' },
    // Why: tokens and secrets must never reach logs even when a request object is logged whole.
    redact: ['req.headers.authorization', 'clientSecret', 'password', '*.clientSecret', 'connectionParams'],
  });
}
