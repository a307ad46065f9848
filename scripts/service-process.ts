/**
 * Sluice (or any node entry) as a real child process, shared by the tests (test/helpers/process.ts)
 * and the benchmarks (bench/lib/service.ts): output kept in memory, `waitFor` a line, `stop` with a
 * grace period, and every child still running killed when the parent exits (Ctrl-C, a crashed
 * test worker), so no service outlives its run.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Runs the production build (scripts/build.mjs, what `npm run build` and `npm start` run) and
 * resolves with its output when dist/ holds a build of the current sources; an up-to-date dist/
 * is reused.
 */
export async function ensureBuild(): Promise<string> {
  const { stdout } = await promisify(execFile)(process.execPath, [path.join(repoRoot, 'scripts/build.mjs')], { cwd: repoRoot, timeout: 120_000 });
  return stdout;
}

export type Exit = { code: number | null; signal: NodeJS.Signals | null };

export interface ServiceProcess {
  child: ChildProcess;
  pid: number;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code (null if killed by a signal) when the process ends. */
  exited: Promise<Exit>;
  /** Waits until stdout matches, or fails with the captured output. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
  stop(graceMs?: number): Promise<Exit>;
}

/** How the service is started: from its TypeScript sources (node + tsx), or compiled (scripts/build.mjs). */
export const SERVICE_ARGS = {
  source: ['--import', 'tsx', 'src/main.ts'],
  compiled: ['--enable-source-maps', 'dist/main.js'],
} as const;

/** Children still running, killed on a hard exit of the parent. */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

/**
 * Runs `node ...args` in the repository with exactly `env` (plus PATH/HOME): nothing of the
 * parent's environment leaks into the child's configuration.
 */
export function spawnNode(args: readonly string[], env: Record<string, string>, defaultWaitMs = 60_000): ServiceProcess {
  const child = spawn(process.execPath, [...args], {
    cwd: repoRoot,
    env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (child.pid === undefined) throw new Error('could not start the service process');
  live.add(child);
  let out = '';
  let err = '';
  const waiters = new Set<() => void>();
  child.stdout!.on('data', (c: Buffer) => {
    out += c.toString();
    for (const w of waiters) w();
  });
  child.stderr!.on('data', (c: Buffer) => {
    err += c.toString();
  });
  const exited = new Promise<Exit>((resolve) =>
    child.on('exit', (code, signal) => {
      live.delete(child);
      for (const w of waiters) w();
      resolve({ code, signal });
    }),
  );
  const running = () => child.exitCode === null && child.signalCode === null;
  return {
    child,
    pid: child.pid,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitFor(pattern, timeoutMs = defaultWaitMs) {
      return new Promise((resolve, reject) => {
        const done = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        const check = () => {
          const m = out.match(pattern);
          if (m) {
            done();
            resolve(m);
          } else if (!running()) {
            done();
            reject(new Error(`process exited before ${pattern}\nstdout:\n${out}\nstderr:\n${err}`));
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out waiting for ${pattern}\nstdout:\n${out}\nstderr:\n${err}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    async stop(graceMs = 30_000) {
      if (running()) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        try {
          return await exited;
        } finally {
          clearTimeout(timer);
        }
      }
      return exited;
    },
  };
}
