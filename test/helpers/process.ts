import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ADMIN_ID, ADMIN_SECRET, JWT_SECRET } from './app';
import { FAST_JOBS } from './jobs';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface ServiceProcess {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code (null if killed by a signal) when the process ends. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Waits until stdout matches, or fails with the captured output. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
}

/** The service from its TypeScript sources (node + tsx), or compiled (`dist/main.js`, scripts/build.mjs). */
export const SERVICE_ARGS = {
  source: ['--import', 'tsx', 'src/main.ts'],
  compiled: ['--enable-source-maps', 'dist/main.js'],
} as const;

/** Runs the service as a real child process (by default `src/main.ts` through tsx) with exactly `env` (plus PATH/HOME). */
export function spawnService(env: Record<string, string>, entry: keyof typeof SERVICE_ARGS = 'source'): ServiceProcess {
  const child = spawn(process.execPath, [...SERVICE_ARGS[entry]], {
    cwd: repoRoot,
    env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  const waiters: Array<() => void> = [];
  child.stdout!.on('data', (c: Buffer) => {
    out += c.toString();
    waiters.forEach((w) => w());
  });
  child.stderr!.on('data', (c: Buffer) => {
    err += c.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => {
      waiters.forEach((w) => w());
      resolve({ code, signal });
    }),
  );
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitFor(pattern, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = out.match(pattern);
          if (m) {
            clearTimeout(timer);
            resolve(m);
          } else if (child.exitCode !== null || child.signalCode !== null) {
            clearTimeout(timer);
            reject(new Error(`process exited before ${pattern}\nstdout:\n${out}\nstderr:\n${err}`));
          }
        };
        const timer = setTimeout(() => reject(new Error(`timed out waiting for ${pattern}\nstdout:\n${out}\nstderr:\n${err}`)), timeoutMs);
        waiters.push(check);
        check();
      });
    },
  };
}

/**
 * A real worker process (SLUICE_ROLE=worker) on `databaseUrl`, sharing the in-process API's local
 * storage (`dataDir`, where uploads are stored), with the test secrets and fast job timings.
 */
export function spawnWorker(databaseUrl: string, dataDir: string): ServiceProcess {
  return spawnService({
    NODE_ENV: 'test',
    DATABASE_URL: databaseUrl,
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: 'info',
    SLUICE_ROLE: 'worker',
    SLUICE_JWT_SECRET: JWT_SECRET,
    SLUICE_ADMIN_CLIENT_ID: ADMIN_ID,
    SLUICE_ADMIN_CLIENT_SECRET: ADMIN_SECRET,
    SLUICE_DATA_DIR: dataDir,
    SLUICE_SHUTDOWN_TIMEOUT_MS: '2000',
    ...FAST_JOBS,
  });
}
