/**
 * The service as a real child process (the compiled `dist/main.js`, through the helper the
 * tests use too: scripts/service-process.ts), and a /proc sampler for its resident memory.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ensureBuild, SERVICE_ARGS, spawnNode, type ServiceProcess } from '../../scripts/service-process';
import { freePort } from '../../src/db/embedded';
import { IssueTokenDocument, SluiceClient } from '../../src/sdk/client';

export { repoRoot, type ServiceProcess } from '../../scripts/service-process';

/**
 * Runs the service with exactly `env` (plus PATH/HOME): the compiled build (`dist/main.js`, as
 * `npm start` runs it; spawnBenchService builds it first when stale) unless `script` is `tsx` (`--import tsx src/main.ts`)
 * or another prebuilt entry. Output is kept in memory (LOG_LEVEL keeps it small). `nodeArgs` go
 * before the script, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`.
 */
export function spawnService(env: Record<string, string>, nodeArgs: string[] = [], script?: string): ServiceProcess {
  let entry: string[];
  if (script === 'tsx') entry = [...SERVICE_ARGS.source];
  else if (script) entry = [path.resolve(script)];
  else entry = [...SERVICE_ARGS.compiled];
  return spawnNode([...nodeArgs, ...entry], env, 120_000);
}

/** The admin client and JWT secret every benchmark's service starts with. */
export const BENCH_ADMIN_ID = 'bench-admin';
export const BENCH_ADMIN_SECRET = 'bench-admin-secret-0123456789';
const BENCH_JWT_SECRET = 'bench-jwt-secret-0123456789-0123456789-0123456789';

/**
 * A benchmark's service (role all, production mode) on `databaseUrl` and a free port, storing
 * uploads under `dataDir`; `env` adds or overrides settings. BENCH_SERVICE_NODE_ARGS and
 * BENCH_SERVICE_SCRIPT apply as documented in bench/run.ts.
 */
export async function spawnBenchService(
  databaseUrl: string,
  dataDir: string,
  env: Record<string, string> = {},
): Promise<{ service: ServiceProcess; port: number; url: string }> {
  const script = process.env['BENCH_SERVICE_SCRIPT'] || undefined;
  if (!script) await ensureBuild();
  const port = await freePort();
  const service = spawnService(
    {
      NODE_ENV: 'production',
      DATABASE_URL: databaseUrl,
      PORT: String(port),
      HOST: '127.0.0.1',
      SLUICE_DATA_DIR: dataDir,
      SLUICE_JWT_SECRET: BENCH_JWT_SECRET,
      SLUICE_ADMIN_CLIENT_ID: BENCH_ADMIN_ID,
      SLUICE_ADMIN_CLIENT_SECRET: BENCH_ADMIN_SECRET,
      SLUICE_JOB_POLL_INTERVAL_MS: '500',
      // The A/B of the pipeline thread's nice value, for every benchmark (unset: the service's default).
      ...(process.env['BENCH_PIPELINE_THREAD_NICE'] ? { SLUICE_PIPELINE_THREAD_NICE: process.env['BENCH_PIPELINE_THREAD_NICE'] } : {}),
      ...env,
      // Any other setting for an A/B, for every benchmark: BENCH_SERVICE_ENV="SLUICE_X=1 SLUICE_Y=2"
      // (the service's environment is its own otherwise: the bench's SLUICE_* variables do not reach it).
      ...serviceEnvFromBench(),
    },
    (process.env['BENCH_SERVICE_NODE_ARGS'] ?? '').split(/\s+/).filter(Boolean),
    script,
  );
  return { service, port, url: `http://127.0.0.1:${port}` };
}

/** BENCH_SERVICE_ENV as settings: space-separated NAME=value pairs. */
function serviceEnvFromBench(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of (process.env['BENCH_SERVICE_ENV'] ?? '').split(/\s+/).filter(Boolean)) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new Error(`BENCH_SERVICE_ENV: ${JSON.stringify(pair)} is not NAME=value`);
    out[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return out;
}

/** A client signed in as the benchmark's admin. */
export async function signInBenchAdmin(url: string): Promise<SluiceClient> {
  const anon = new SluiceClient({ url });
  const { issueToken } = await anon.request(IssueTokenDocument, { clientId: BENCH_ADMIN_ID, clientSecret: BENCH_ADMIN_SECRET });
  return anon.withToken(issueToken.accessToken);
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
