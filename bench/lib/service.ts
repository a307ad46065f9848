/**
 * The service as a real child process (`node --import tsx src/main.ts`), and a /proc sampler
 * for its resident memory. Same pattern as test/helpers/process.ts (not imported: bench stays
 * independent of the test tree).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface ServiceProcess {
  child: ChildProcess;
  pid: number;
  stdout(): string;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
  stop(graceMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Children still running, killed on a hard exit of the bench (Ctrl-C, crash). */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

/**
 * Runs `src/main.ts` with exactly `env` (plus PATH/HOME). Output is kept in memory (LOG_LEVEL keeps
 * it small). `nodeArgs` go before the script, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`.
 */
export function spawnService(env: Record<string, string>, nodeArgs: string[] = [], script?: string): ServiceProcess {
  // `script`: a prebuilt JavaScript entry run with plain node (no tsx), to compare with a build.
  const entry = script ? [path.resolve(script)] : ['--import', 'tsx', 'src/main.ts'];
  const child = spawn(process.execPath, [...nodeArgs, ...entry], {
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
    waiters.forEach((w) => w());
  });
  child.stderr!.on('data', (c: Buffer) => {
    err += c.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => {
      live.delete(child);
      waiters.forEach((w) => w());
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
    waitFor(pattern, timeoutMs = 120_000) {
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
            reject(new Error(`the service exited before printing ${pattern}\nstdout:\n${out}\nstderr:\n${err}`));
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

export interface MemoryReading {
  /** VmRSS, bytes. */
  rss: number;
  /** VmHWM (peak RSS since the process started), bytes. */
  hwm: number;
}

/** Reads VmRSS and VmHWM of `pid` (Linux only; null elsewhere or once the process is gone). */
export function readMemory(pid: number): MemoryReading | null {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return null;
  }
  const kib = (key: string) => {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status);
    return m ? Number(m[1]) * 1024 : 0;
  };
  return { rss: kib('VmRSS'), hwm: kib('VmHWM') };
}

/**
 * Samples a process's RSS every `everyMs`, keeping the largest VmRSS seen per labelled phase and
 * the last VmHWM (the kernel's own peak, which also catches spikes between samples).
 */
export class RssSampler {
  private timer: NodeJS.Timeout | null = null;
  private phase = 'startup';
  private readonly started = Date.now();
  readonly peakByPhase = new Map<string, number>();
  /** Every sample: milliseconds since start, phase, VmRSS bytes. */
  readonly trace: Array<[number, string, number]> = [];
  hwm = 0;
  maxRss = 0;
  lastRss = 0;
  samples = 0;

  constructor(
    private readonly pid: number,
    private readonly everyMs = 100,
  ) {}

  start(): this {
    this.sample();
    this.timer = setInterval(() => this.sample(), this.everyMs);
    this.timer.unref();
    return this;
  }

  /** Starts attributing samples to `phase` (samples at the boundary so both sides see it). */
  mark(phase: string): void {
    this.sample();
    this.phase = phase;
    this.sample();
  }

  sample(): void {
    const m = readMemory(this.pid);
    if (!m) return;
    this.samples++;
    this.lastRss = m.rss;
    this.hwm = Math.max(this.hwm, m.hwm);
    this.maxRss = Math.max(this.maxRss, m.rss);
    this.peakByPhase.set(this.phase, Math.max(this.peakByPhase.get(this.phase) ?? 0, m.rss));
    this.trace.push([Date.now() - this.started, this.phase, m.rss]);
  }

  stop(): void {
    if (this.timer) {
      this.sample();
      clearInterval(this.timer);
    }
    this.timer = null;
  }

  /** The peak: the kernel's VmHWM when available, else the largest sample. */
  get peak(): number {
    return Math.max(this.hwm, this.maxRss);
  }
}
