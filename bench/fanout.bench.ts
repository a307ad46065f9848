/**
 * Subscription fan-out benchmark (issue #16, "Fan-out"): part of `npm run bench` (see
 * bench/run.ts; BENCH_SKIP_FANOUT=1 skips it), or on its own with `npx tsx bench/fanout.bench.ts`.
 *
 * One service process in role `all` (API, graphql-ws and the job workers in one event loop), or
 * with BENCH_FANOUT_API_PROCESSES=N > 1, N processes in role `api` (the client processes connect
 * to them in turn, as behind a load balancer) and one in role `worker` that runs the job; a
 * fresh database (DATABASE_URL, else an embedded PostgreSQL). BENCH_FANOUT_SUBSCRIBERS (default
 * 5,000) real graphql-ws clients, one WebSocket and one `jobUpdated` subscription each, all on the
 * same job, connected BENCH_FANOUT_BATCH (default 250) at a time. The job is the ingestion of a
 * BENCH_FANOUT_ROWS-row (default 300,000) attendance CSV uploaded through the API; it waits
 * QUEUED behind a diagnostic job (SLUICE_WORKER_CONCURRENCY=1) until every subscriber holds its
 * SNAPSHOT, then the diagnostic job is cancelled and the ingestion runs while all subscribers
 * watch it (its progress, stored at most every SLUICE_JOB_PROGRESS_INTERVAL_MS, and its states).
 *
 * Bars, measured in the same run:
 *   - commit-to-client latency, over every (subscriber, live event) pair: p95 < 250 ms, p99 < 1 s.
 *     From the event's `at` (the database's now() of the transaction that stored it, so it runs
 *     from the transaction's start, a little before its commit: the figure is an upper bound) to
 *     the moment this process's graphql-ws client hands it over (Date.now(); same machine clock).
 *   - no gaps: the server does not coalesce on delivery (every stored job event has its own seq,
 *     and `jobUpdated` sends each one after the SNAPSHOT's seq, replaying from the table what a
 *     client has not read yet); progress is coalesced before it is stored, by the worker (at most
 *     one PROGRESS event per interval). So each subscriber must receive exactly the job's stored
 *     events with a seq above its SNAPSHOT's, in seq order, each once, ending with the terminal
 *     STATE event, and then the subscription must complete. Checked against job_events.
 *   - memory: the service's VmRSS before the first connection and once all are subscribed (after
 *     a settle), (after - before) / N <= 100 KiB per connection.
 *
 * The clients run in BENCH_FANOUT_CLIENT_PROCESSES (default 4) child processes on the same machine
 * (bench/lib/fanout-clients.ts), so their work (2 CPUs here, shared with the service and
 * PostgreSQL) is part of the measured latency, but one client event loop handling all N sockets
 * does not queue every message behind the others. Each process's event-loop delay and CPU time
 * during the job are reported with the result. BENCH_FANOUT_PER_EVENT=1 also prints, per event,
 * the least, median and largest latency over the subscribers (the least is the path through the
 * database and the feed; the spread is the fan-out). BENCH_FANOUT_PROGRESS_INTERVAL_MS sets the
 * service's SLUICE_JOB_PROGRESS_INTERVAL_MS (for an A/B; unset: the service's default).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { uploadFileStream } from '../src/cli/upload-stream';
import { CancelJobDocument, JobDocument, RegisterSpecDocument, RunDiagnosticJobDocument, type SluiceClient, UploadFileDocument } from '../src/sdk/client';
import { attendanceSpec, writeAttendanceCsv } from './lib/attendance-data';
import { processCpuSeconds } from './lib/cpu';
import { openPgServer } from './lib/database';
import type { FromClients, SubscriberResult, ToClients } from './lib/fanout-clients';
import { readMemory, signInBenchAdmin, spawnBenchService } from './lib/service';

const KiB = 1024;
const MiB = 1024 * KiB;

/** The bars of issue #16, item 4. */
export const FANOUT_BARS = { p95Ms: 250, p99Ms: 1000, perConnectionKiB: 100 } as const;

export interface FanoutBenchOptions {
  subscribers: number;
  rows: number;
  /** Connections opened at once (over all client processes). */
  batch: number;
  /** Child processes the subscribers are spread over. */
  clientProcesses: number;
  /**
   * 1: one service process in role `all` (the default). More: that many processes in role `api`
   * (the subscribers spread over them, as behind a load balancer) and one in role `worker`.
   */
  apiProcesses: number;
  log: (line: string) => void;
}

export interface FanoutBenchReport {
  subscribers: number;
  rows: number;
  postgres: string;
  embeddedPostgres: boolean;
  cpus: number;
  connectSeconds: number;
  /** Stored events of the job after the SNAPSHOT every subscriber got (what each must receive). */
  eventsExpected: number;
  /** Subscribers that received exactly the expected events, in order, and completed. */
  complete: number;
  /** Subscribers missing at least one event, or with one out of order or twice; the first few problems. */
  gapped: number;
  problems: string[];
  /** Received (subscriber, event) pairs and their commit-to-client latency, ms. */
  deliveries: number;
  latencyMs: { p50: number; p95: number; p99: number; max: number };
  /** Job start (server) -> last subscriber saw the terminal event. */
  jobSeconds: number;
  drainSeconds: number;
  finalState: string;
  rss: { beforeMiB: number; afterMiB: number; peakMiB: number; perConnectionKiB: number };
  /** During the job: CPU seconds of the service and of all client processes; the clients' worst event-loop delay. */
  cpu: { serviceSeconds: number; clientSeconds: number };
  clientProcesses: number;
  apiProcesses: number;
  clientLagMs: { p99: number; max: number };
  /**
   * The service's own delivery rounds during the job (its sluice_ws_fanout_round_seconds, all API
   * processes): how many, their mean, and the smallest histogram bucket that holds every one.
   */
  rounds: { count: number; meanMs: number; allUnderMs: number | null };
}

/** sluice_ws_fanout_round_seconds of one process: count, sum and the cumulative bucket counts. */
interface RoundsScrape {
  count: number;
  sum: number;
  buckets: Map<number, number>;
}

async function scrapeRounds(url: string): Promise<RoundsScrape> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out: RoundsScrape = { count: 0, sum: 0, buckets: new Map() };
  for (const line of text.split('\n')) {
    if (!line.startsWith('sluice_ws_fanout_round_seconds')) continue;
    const v = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (line.startsWith('sluice_ws_fanout_round_seconds_count')) out.count = v;
    else if (line.startsWith('sluice_ws_fanout_round_seconds_sum')) out.sum = v;
    else {
      const le = /le="([^"]+)"/.exec(line)?.[1];
      if (le) out.buckets.set(le === '+Inf' ? Number.POSITIVE_INFINITY : Number(le), v);
    }
  }
  return out;
}

/** The rounds between two scrapes of each process. */
function roundsBetween(before: RoundsScrape[], after: RoundsScrape[]): FanoutBenchReport['rounds'] {
  let count = 0;
  let sum = 0;
  const buckets = new Map<number, number>();
  after.forEach((a, i) => {
    const b = before[i]!;
    count += a.count - b.count;
    sum += a.sum - b.sum;
    for (const [le, n] of a.buckets) buckets.set(le, (buckets.get(le) ?? 0) + n - (b.buckets.get(le) ?? 0));
  });
  const bound = [...buckets.entries()].sort((x, y) => x[0] - y[0]).find(([, n]) => n === count)?.[0];
  return { count, meanMs: count ? (sum / count) * 1000 : Number.NaN, allUnderMs: bound === undefined || !Number.isFinite(bound) ? null : bound * 1000 };
}

function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw.replace(/_/g, ''));
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got ${JSON.stringify(raw)}`);
  return n;
}

export function fanoutOptionsFromEnv(log: (line: string) => void = (l) => console.log(l)): FanoutBenchOptions {
  return {
    subscribers: envInt('BENCH_FANOUT_SUBSCRIBERS', 5000),
    rows: envInt('BENCH_FANOUT_ROWS', 300_000),
    batch: envInt('BENCH_FANOUT_BATCH', 250),
    clientProcesses: envInt('BENCH_FANOUT_CLIENT_PROCESSES', 4),
    apiProcesses: envInt('BENCH_FANOUT_API_PROCESSES', 1),
    log,
  };
}

/** The soft open-files limit of this process (children inherit it), or null when unknown. */
function openFilesLimit(): number | null {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    if (!m) return null;
    return m[1] === 'unlimited' ? Number.POSITIVE_INFINITY : Number(m[1]);
  } catch {
    return null;
  }
}

function pct(sorted: Float64Array, p: number): number {
  if (!sorted.length) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** One client process (bench/lib/fanout-clients.ts) and its next message. */
class ClientProcess {
  readonly child: ChildProcess;
  private waiting: Array<(m: FromClients) => void> = [];
  private inbox: FromClients[] = [];

  constructor() {
    this.child = fork(path.join(path.dirname(fileURLToPath(import.meta.url)), 'lib/fanout-clients.ts'), [], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.child.on('message', (m: FromClients) => {
      const w = this.waiting.shift();
      if (w) w(m);
      else this.inbox.push(m);
    });
  }

  send(m: ToClients): void {
    this.child.send(m);
  }

  next<T extends FromClients['type']>(type: T): Promise<Extract<FromClients, { type: T }>> {
    const check = (m: FromClients) => {
      if (m.type !== type) throw new Error(`client process: expected ${type}, got ${m.type}`);
      return m as Extract<FromClients, { type: T }>;
    };
    const queued = this.inbox.shift();
    if (queued) return Promise.resolve(check(queued));
    return new Promise((resolve, reject) =>
      this.waiting.push((m) => {
        try {
          resolve(check(m));
        } catch (err) {
          reject(err);
        }
      }),
    );
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise<void>((r) => this.child.once('exit', () => r()));
    this.send({ type: 'close' });
    const kill = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(kill);
  }
}

async function waitUntil(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Service RSS once it is stable: the smallest of a few readings over `ms`. */
async function settledRss(pid: number, ms: number): Promise<number> {
  let least = Number.POSITIVE_INFINITY;
  const until = Date.now() + ms;
  do {
    await sleep(250);
    const m = readMemory(pid);
    if (m) least = Math.min(least, m.rss);
  } while (Date.now() < until);
  return least;
}

export async function runFanoutBench(opts: FanoutBenchOptions): Promise<FanoutBenchReport> {
  const { subscribers: n, rows, batch, log } = opts;
  const k = Math.min(opts.clientProcesses, n);
  // This process holds one socket per subscriber, and so does the service (a child: same limit).
  const need = n + 1024;
  const limit = openFilesLimit();
  if (limit !== null && limit < need) {
    throw new Error(
      `the open-files limit is ${limit}, too low for ${n} subscribers (this process and the service each hold one socket per subscriber, plus ~1,000 for the rest): run \`ulimit -n ${need}\` (or more) in this shell first, or lower BENCH_FANOUT_SUBSCRIBERS`,
    );
  }
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-fanout-'));
  const server = await openPgServer(tmp);
  const db = await server.createDatabase();
  const dataDir = await fs.mkdtemp(path.join(tmp, 'service-'));
  const env: Record<string, string> = {
    LOG_LEVEL: process.env['BENCH_LOG_LEVEL'] ?? 'warn',
    // All subscribers share the bench admin's token.
    SLUICE_WS_MAX_CONNECTIONS_PER_CLIENT: String(n + 10),
    // One job at a time, so the ingestion waits behind the diagnostic job until all are subscribed.
    SLUICE_WORKER_CONCURRENCY: '1',
    // The job loads its file itself while they all watch (its upload happens while it waits, and
    // a load during the upload would leave the job almost nothing to report);
    // BENCH_FANOUT_LOAD_DURING_UPLOAD=1 measures it with the service's default instead.
    ...(process.env['BENCH_FANOUT_LOAD_DURING_UPLOAD'] === '1' ? {} : { SLUICE_LOAD_DURING_UPLOAD: '0' }),
    // A/B of the progress interval (default: the service's own default).
    ...(process.env['BENCH_FANOUT_PROGRESS_INTERVAL_MS'] ? { SLUICE_JOB_PROGRESS_INTERVAL_MS: process.env['BENCH_FANOUT_PROGRESS_INTERVAL_MS'] } : {}),
  };
  // One process in role all, or API processes (the subscribers' servers) and a worker, started
  // one after the other (each applies migrations and the admin client at its start).
  const roles = opts.apiProcesses === 1 ? ['all'] : [...Array.from({ length: opts.apiProcesses }, () => 'api'), 'worker'];
  const services: Awaited<ReturnType<typeof spawnBenchService>>[] = [];
  const clients: ClientProcess[] = [];
  let admin: SluiceClient | null = null;
  try {
    for (const role of roles) {
      const started = await spawnBenchService(db.url, dataDir, { ...env, SLUICE_ROLE: role });
      services.push(started);
      await started.service.waitFor(/Sluice .* is ready/);
    }
    const apis = services.filter((_, i) => roles[i] !== 'worker');
    const url = apis[0]!.url;
    const apiPids = apis.map((a) => a.service.pid);
    const allPids = services.map((a) => a.service.pid);
    admin = await signInBenchAdmin(url);
    const token = admin.options.token!;
    await admin.request(RegisterSpecDocument, { kind: 'EVENT', spec: attendanceSpec });
    const file = path.join(tmp, 'attendance.csv');
    const bytes = await writeAttendanceCsv(file, rows);
    log(
      `PostgreSQL ${server.version} (${server.embedded ? 'embedded' : 'DATABASE_URL'}), ${os.cpus().length} CPUs, service ${opts.apiProcesses === 1 ? 'one process (role all)' : `${opts.apiProcesses} processes in role api and one in role worker`}, ${n.toLocaleString('en-US')} subscribers (${batch} at a time, from ${k} client processes), ${rows.toLocaleString('en-US')} rows (${(bytes / MiB).toFixed(1)} MiB), open files limit ${limit ?? 'unknown'}`,
    );

    // The worker's one slot is taken until every subscriber holds its SNAPSHOT.
    const { runDiagnosticJob: blocker } = await admin.request(RunDiagnosticJobDocument, { input: { to: 100_000, stepMs: 1000 } });
    await waitUntil('the diagnostic job to run', 60_000, async () => (await admin!.request(JobDocument, { id: blocker.id })).job.state === 'RUNNING');
    const { uploadFile } = await uploadFileStream(UploadFileDocument, {
      url,
      token,
      variables: { program: 'attendance', spec: 'attendance', file: null },
      fileVariable: 'file',
      filePath: file,
    });
    const jobId = uploadFile.job.id;
    log(`  job ${jobId} ${uploadFile.job.state} behind diagnostic job ${blocker.id}`);

    const sumOver = async (pids: number[], read: (pid: number) => Promise<number> | number) => {
      let sum = 0;
      for (const pid of pids) sum += await read(pid);
      return sum;
    };
    const before = await sumOver(apiPids, (pid) => settledRss(pid, 2000));
    // Client process i talks to API process i mod their count.
    const wsUrls = apis.map((a) => `${a.url.replace(/^http/, 'ws')}/graphql`);
    const connectStarted = Date.now();
    for (let i = 0; i < k; i++) clients.push(new ClientProcess());
    // Process i opens subscribers [i*n/k, (i+1)*n/k), a share of each wave at a time.
    const share = (i: number) => Math.floor(((i + 1) * n) / k) - Math.floor((i * n) / k);
    for (const [i, c] of clients.entries())
      c.send({ type: 'open', wsUrl: wsUrls[i % wsUrls.length]!, token, jobId, count: share(i), batch: Math.max(1, Math.round(batch / k)) });
    const ready = await Promise.all(clients.map((c) => c.next('ready')));
    const failed = ready.find((r) => r.error);
    if (failed) throw new Error(`a subscriber could not subscribe: ${failed.error}`);
    const connectSeconds = (Date.now() - connectStarted) / 1000;
    log(`  ${n} subscribed (${connectSeconds.toFixed(1)} s)`);
    const after = await sumOver(apiPids, (pid) => settledRss(pid, 3000));
    const snapshotSeqs = new Set(ready.flatMap((r) => r.snapshotSeqs));
    if (snapshotSeqs.size !== 1) throw new Error(`the job moved while subscribers connected: SNAPSHOT seqs ${[...snapshotSeqs].join(', ')}`);
    const snapshotSeq = [...snapshotSeqs][0]!;

    const rssNow = () => apiPids.reduce((sum, pid) => sum + (readMemory(pid)?.rss ?? 0), 0);
    const cpuNow = () => allPids.reduce((sum, pid) => sum + (processCpuSeconds(pid) ?? Number.NaN), 0);
    let peak = rssNow();
    const peakTimer = setInterval(() => (peak = Math.max(peak, rssNow())), 100);
    const serviceCpuBefore = cpuNow();
    const roundsBefore = await Promise.all(apis.map((a) => scrapeRounds(a.url)));
    for (const c of clients) c.send({ type: 'watch' });
    await admin.request(CancelJobDocument, { id: blocker.id });
    log(`  all subscribed in ${connectSeconds.toFixed(1)} s; diagnostic job cancelled, the ingestion starts`);
    const timeout = setTimeout(() => {
      for (const c of clients) c.send({ type: 'timeout' });
    }, 10 * 60_000);
    const done = await Promise.all(clients.map((c) => c.next('done')));
    clearTimeout(timeout);
    const lastSeen = Date.now();
    clearInterval(peakTimer);
    const serviceCpu = cpuNow() - serviceCpuBefore;
    const rounds = roundsBetween(roundsBefore, await Promise.all(apis.map((a) => scrapeRounds(a.url))));
    const subs: SubscriberResult[] = done.flatMap((d) => d.subscribers);

    const { job } = await admin.request(JobDocument, { id: jobId });
    const stored = await db.sql<{ seq: number; kind: string; state: string }[]>`
      select seq, kind, state from job_events where job_id = ${jobId} and seq > ${snapshotSeq} order by seq`;
    const expected = stored.map((e) => Number(e.seq));
    const problems: string[] = [];
    let complete = 0;
    subs.forEach((s, i) => {
      let problem: string | null = s.error;
      if (!problem) {
        const k = s.seqs.findIndex((seq, j) => seq !== expected[j]);
        if (k >= 0) problem = `event ${k + 1} has seq ${s.seqs[k]}, expected ${expected[k] ?? 'none'}`;
        else if (s.seqs.length !== expected.length) problem = `${s.seqs.length} of ${expected.length} events`;
        else if (!s.terminal || !s.completed) problem = 'no terminal event or no complete';
      }
      if (problem === null) complete++;
      else if (problems.length < 5) problems.push(`subscriber ${i}: ${problem}`);
    });
    if (process.env['BENCH_FANOUT_PER_EVENT'] === '1') {
      // Median and worst latency of each event over its subscribers: which events are late.
      for (let j = 0; j < expected.length; j++) {
        const ms = subs.flatMap((s) => (s.seqs[j] === expected[j] ? [s.latency[j]!] : [])).sort((x, y) => x - y);
        log(`  seq ${expected[j]} ${stored[j]!.kind} ${stored[j]!.state}: min ${ms[0]} ms, median ${ms[Math.floor(ms.length / 2)]} ms, max ${ms.at(-1)} ms`);
      }
    }
    const all = new Float64Array(subs.reduce((sum, s) => sum + s.latency.length, 0));
    let at = 0;
    for (const s of subs) for (const ms of s.latency) all[at++] = ms;
    all.sort();
    const started = Date.parse(job.startedAt ?? job.createdAt);
    return {
      subscribers: n,
      rows,
      postgres: server.version,
      embeddedPostgres: server.embedded,
      cpus: os.cpus().length,
      connectSeconds,
      eventsExpected: expected.length,
      complete,
      gapped: n - complete,
      problems,
      deliveries: all.length,
      latencyMs: { p50: pct(all, 50), p95: pct(all, 95), p99: pct(all, 99), max: all.length ? all[all.length - 1]! : Number.NaN },
      jobSeconds: (Date.parse(job.finishedAt ?? job.updatedAt) - started) / 1000,
      drainSeconds: (lastSeen - started) / 1000,
      finalState: job.state,
      rss: {
        beforeMiB: before / MiB,
        afterMiB: after / MiB,
        peakMiB: peak / MiB,
        perConnectionKiB: (after - before) / n / KiB,
      },
      cpu: { serviceSeconds: serviceCpu, clientSeconds: done.reduce((sum, d) => sum + d.cpuSeconds, 0) },
      clientProcesses: k,
      apiProcesses: opts.apiProcesses,
      clientLagMs: { p99: Math.max(...done.map((d) => d.lagMs.p99)), max: Math.max(...done.map((d) => d.lagMs.max)) },
      rounds,
    };
  } catch (err) {
    for (const [i, { service }] of services.entries()) console.error(`--- service ${i} (role ${roles[i]}) stderr (tail) ---\n${service.stderr().slice(-3000)}`);
    throw err;
  } finally {
    // Closing thousands of sockets at once is fine: the service is stopped right after.
    await Promise.all(clients.map((c) => c.close()));
    await admin?.close();
    await Promise.all(services.map(({ service }) => service.stop()));
    await db.drop().catch(() => undefined);
    await server.dispose().catch(() => undefined);
    await fs.rm(tmp, { recursive: true, force: true });
  }
}

const passFail = (ok: boolean) => (ok ? 'PASS' : 'FAIL');

/** The bars with the values measured in this run. */
export function formatFanoutReport(r: FanoutBenchReport): string[] {
  const ms = (v: number) => `${v.toFixed(0)} ms`;
  const rows: string[][] = [
    ['commit-to-client p95', `< ${FANOUT_BARS.p95Ms} ms`, ms(r.latencyMs.p95), passFail(r.latencyMs.p95 < FANOUT_BARS.p95Ms)],
    ['commit-to-client p99', `< ${FANOUT_BARS.p99Ms} ms`, ms(r.latencyMs.p99), passFail(r.latencyMs.p99 < FANOUT_BARS.p99Ms)],
    ['subscribers with every event, in order', `${r.subscribers}`, `${r.complete}`, passFail(r.gapped === 0)],
    [
      'service RSS per connection',
      `<= ${FANOUT_BARS.perConnectionKiB} KiB`,
      `${r.rss.perConnectionKiB.toFixed(1)} KiB`,
      passFail(r.rss.perConnectionKiB <= FANOUT_BARS.perConnectionKiB),
    ],
  ];
  const head = ['bar', 'target', 'measured', ''];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const fmt = (row: string[]) => row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ');
  return [
    `${r.subscribers.toLocaleString('en-US')} graphql-ws subscribers on one ${r.rows.toLocaleString('en-US')}-row ingestion job (${r.finalState}); connected in ${r.connectSeconds.toFixed(1)} s; service: ${r.apiProcesses === 1 ? 'one process (role all)' : `${r.apiProcesses} API processes and a worker`}`,
    `events per subscriber ${r.eventsExpected} (after its SNAPSHOT), ${r.deliveries.toLocaleString('en-US')} deliveries; job ran ${r.jobSeconds.toFixed(2)} s, last subscriber done ${r.drainSeconds.toFixed(2)} s after the job started`,
    `commit-to-client ms: p50 ${r.latencyMs.p50.toFixed(0)}, p95 ${r.latencyMs.p95.toFixed(0)}, p99 ${r.latencyMs.p99.toFixed(0)}, max ${r.latencyMs.max.toFixed(0)}`,
    `service RSS MiB${r.apiProcesses === 1 ? '' : ` (the API processes together)`}: before ${r.rss.beforeMiB.toFixed(1)}, all subscribed ${r.rss.afterMiB.toFixed(1)}, peak during the job ${r.rss.peakMiB.toFixed(1)}`,
    `during the job: service CPU ${r.cpu.serviceSeconds.toFixed(1)} s, clients' CPU ${r.cpu.clientSeconds.toFixed(1)} s (${r.clientProcesses} processes), clients' event-loop delay p99 ${r.clientLagMs.p99.toFixed(0)} ms, max ${r.clientLagMs.max.toFixed(0)} ms`,
    `the service's delivery rounds (sluice_ws_fanout_round_seconds: the feed's wake of its subscriptions to their socket writes): ${r.rounds.count}, mean ${r.rounds.meanMs.toFixed(0)} ms, all under ${r.rounds.allUnderMs === null ? 'the largest bucket' : `${r.rounds.allUnderMs} ms`}`,
    ...r.problems.map((p) => `  ${p}`),
    fmt(head),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...rows.map(fmt),
  ];
}

export function fanoutReportJson(r: FanoutBenchReport): Record<string, unknown> {
  const round = (v: number, d = 1) => Math.round(v * 10 ** d) / 10 ** d;
  return {
    bench: 'sluice-fanout',
    postgres: r.postgres,
    embeddedPostgres: r.embeddedPostgres,
    cpus: r.cpus,
    subscribers: r.subscribers,
    rows: r.rows,
    connectSeconds: round(r.connectSeconds, 2),
    eventsPerSubscriber: r.eventsExpected,
    deliveries: r.deliveries,
    complete: r.complete,
    gapped: r.gapped,
    latencyMs: { p50: round(r.latencyMs.p50), p95: round(r.latencyMs.p95), p99: round(r.latencyMs.p99), max: round(r.latencyMs.max) },
    jobSeconds: round(r.jobSeconds, 2),
    drainSeconds: round(r.drainSeconds, 2),
    finalState: r.finalState,
    rssBeforeMiB: round(r.rss.beforeMiB),
    rssAfterMiB: round(r.rss.afterMiB),
    rssPeakMiB: round(r.rss.peakMiB),
    perConnectionKiB: round(r.rss.perConnectionKiB),
    serviceCpuSeconds: round(r.cpu.serviceSeconds, 2),
    clientCpuSeconds: round(r.cpu.clientSeconds, 2),
    clientProcesses: r.clientProcesses,
    apiProcesses: r.apiProcesses,
    clientLagP99Ms: round(r.clientLagMs.p99),
    clientLagMaxMs: round(r.clientLagMs.max),
    rounds: r.rounds.count,
    roundMeanMs: round(r.rounds.meanMs),
    roundsAllUnderMs: r.rounds.allUnderMs,
  };
}

// On its own: `npx tsx bench/fanout.bench.ts`.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const report = await runFanoutBench(fanoutOptionsFromEnv());
  console.log('');
  for (const l of formatFanoutReport(report)) console.log(l);
  console.log(JSON.stringify(fanoutReportJson(report)));
  process.exit(0);
}
