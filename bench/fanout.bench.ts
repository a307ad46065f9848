/**
 * Subscription fan-out benchmark (issue #16, "Fan-out"): part of `npm run bench` (see
 * bench/run.ts; BENCH_SKIP_FANOUT=1 skips it), or on its own with `npx tsx bench/fanout.bench.ts`.
 *
 * One service process in role `all` (API, graphql-ws and the job workers in one event loop), a
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
 * The clients live in this process, so their own work (2 CPUs here, shared with the service and
 * PostgreSQL) is part of the measured latency.
 */
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { print } from 'graphql';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { uploadFileStream } from '../src/cli/upload-stream';
import {
  CancelJobDocument,
  JobDocument,
  type JobEventFieldsFragment,
  JobUpdatedDocument,
  RegisterSpecDocument,
  RunDiagnosticJobDocument,
  type SluiceClient,
  UploadFileDocument,
} from '../src/sdk/client';
import { attendanceSpec, writeAttendanceCsv } from './lib/attendance-data';
import { openPgServer } from './lib/database';
import { readMemory, signInBenchAdmin, spawnBenchService } from './lib/service';

const KiB = 1024;
const MiB = 1024 * KiB;

/** The bars of issue #16, item 4. */
export const FANOUT_BARS = { p95Ms: 250, p99Ms: 1000, perConnectionKiB: 100 } as const;

export interface FanoutBenchOptions {
  subscribers: number;
  rows: number;
  /** Connections opened at once. */
  batch: number;
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

interface Subscriber {
  client: Client;
  /** The SNAPSHOT's seq (the job's lastSeq when the subscription started), or null before it. */
  snapshotSeq: number | null;
  /** seqs of live events, as received. */
  seqs: number[];
  /** Commit-to-client ms of each live event. */
  latency: number[];
  terminal: boolean;
  completed: boolean;
  error: string | null;
  ready: Promise<void>;
  done: Promise<void>;
}

function subscribe(wsUrl: string, token: string, jobId: string): Subscriber {
  const client = createClient({
    url: wsUrl,
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${token}` },
    retryAttempts: 0,
    lazy: true,
  });
  let onReady!: () => void;
  let onDone!: () => void;
  const s: Subscriber = {
    client,
    snapshotSeq: null,
    seqs: [],
    latency: [],
    terminal: false,
    completed: false,
    error: null,
    ready: new Promise<void>((r) => (onReady = r)),
    done: new Promise<void>((r) => (onDone = r)),
  };
  const fail = (message: string) => {
    s.error ??= message;
    onReady();
    onDone();
  };
  client.on('closed', (e) => {
    if (!s.completed) fail(`socket closed ${(e as { code?: number }).code ?? ''} ${(e as { reason?: string }).reason ?? ''}`.trim());
  });
  client.subscribe<{ jobUpdated: JobEventFieldsFragment }>(
    { query: print(JobUpdatedDocument), variables: { id: jobId } },
    {
      next: (r) => {
        const receivedAt = Date.now();
        const e = r.data?.jobUpdated;
        if (!e) return fail(`error: ${JSON.stringify(r.errors)}`);
        if (e.kind === 'SNAPSHOT') {
          if (s.snapshotSeq !== null) return fail(`second SNAPSHOT at seq ${e.seq}`);
          s.snapshotSeq = e.seq;
          if (e.terminal) s.terminal = true;
          return onReady();
        }
        s.seqs.push(e.seq);
        s.latency.push(receivedAt - Date.parse(e.at));
        if (e.terminal) s.terminal = true;
      },
      error: (err) => fail(`subscription error: ${err instanceof Error ? err.message : JSON.stringify(err)}`),
      complete: () => {
        s.completed = true;
        onReady();
        onDone();
      },
    },
  );
  return s;
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
  const { service, url } = await spawnBenchService(db.url, dataDir, {
    LOG_LEVEL: process.env['BENCH_LOG_LEVEL'] ?? 'warn',
    // All subscribers share the bench admin's token.
    SLUICE_WS_MAX_CONNECTIONS_PER_CLIENT: String(n + 10),
    // One job at a time, so the ingestion waits behind the diagnostic job until all are subscribed.
    SLUICE_WORKER_CONCURRENCY: '1',
  });
  const subs: Subscriber[] = [];
  let admin: SluiceClient | null = null;
  try {
    await service.waitFor(/Sluice .* is ready/);
    admin = await signInBenchAdmin(url);
    const token = admin.options.token!;
    await admin.request(RegisterSpecDocument, { kind: 'EVENT', spec: attendanceSpec });
    const file = path.join(tmp, 'attendance.csv');
    const bytes = await writeAttendanceCsv(file, rows);
    log(
      `PostgreSQL ${server.version} (${server.embedded ? 'embedded' : 'DATABASE_URL'}), ${os.cpus().length} CPUs, ${n.toLocaleString('en-US')} subscribers (${batch} at a time), ${rows.toLocaleString('en-US')} rows (${(bytes / MiB).toFixed(1)} MiB), open files limit ${limit ?? 'unknown'}`,
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

    const before = await settledRss(service.pid, 2000);
    const wsUrl = `${url.replace(/^http/, 'ws')}/graphql`;
    const connectStarted = Date.now();
    for (let i = 0; i < n; i += batch) {
      const wave = Array.from({ length: Math.min(batch, n - i) }, () => subscribe(wsUrl, token, jobId));
      subs.push(...wave);
      await Promise.all(wave.map((s) => s.ready));
      const failed = wave.find((s) => s.error || s.snapshotSeq === null);
      if (failed) throw new Error(`subscriber ${subs.indexOf(failed)} could not subscribe: ${failed.error ?? 'no SNAPSHOT'}`);
      if ((i / batch) % 4 === 3 || i + batch >= n) log(`  ${subs.length} subscribed (${((Date.now() - connectStarted) / 1000).toFixed(1)} s)`);
    }
    const connectSeconds = (Date.now() - connectStarted) / 1000;
    const after = await settledRss(service.pid, 3000);
    const snapshotSeqs = new Set(subs.map((s) => s.snapshotSeq));
    if (snapshotSeqs.size !== 1) throw new Error(`the job moved while subscribers connected: SNAPSHOT seqs ${[...snapshotSeqs].join(', ')}`);
    const snapshotSeq = subs[0]!.snapshotSeq!;

    let peak = readMemory(service.pid)?.rss ?? 0;
    const peakTimer = setInterval(() => (peak = Math.max(peak, readMemory(service.pid)?.rss ?? 0)), 100);
    await admin.request(CancelJobDocument, { id: blocker.id });
    log(`  all subscribed in ${connectSeconds.toFixed(1)} s; diagnostic job cancelled, the ingestion starts`);
    const timeout = setTimeout(() => {
      for (const s of subs) s.error ??= s.terminal ? 'no complete after the terminal event' : `timed out after ${s.seqs.length} events`;
    }, 10 * 60_000);
    const allDone = Promise.all(subs.map((s) => s.done));
    await Promise.race([allDone, new Promise((r) => setTimeout(r, 10 * 60_000))]);
    clearTimeout(timeout);
    const lastSeen = Date.now();
    clearInterval(peakTimer);

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
    const all = new Float64Array(subs.reduce((sum, s) => sum + s.latency.length, 0));
    let k = 0;
    for (const s of subs) for (const ms of s.latency) all[k++] = ms;
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
    };
  } catch (err) {
    console.error(`--- service stderr (tail) ---\n${service.stderr().slice(-3000)}`);
    throw err;
  } finally {
    // Closing thousands of sockets at once is fine: the service is stopped right after.
    await Promise.all(subs.map((s) => s.client.dispose()));
    await admin?.close();
    await service.stop();
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
    `${r.subscribers.toLocaleString('en-US')} graphql-ws subscribers on one ${r.rows.toLocaleString('en-US')}-row ingestion job (${r.finalState}); connected in ${r.connectSeconds.toFixed(1)} s`,
    `events per subscriber ${r.eventsExpected} (after its SNAPSHOT), ${r.deliveries.toLocaleString('en-US')} deliveries; job ran ${r.jobSeconds.toFixed(2)} s, last subscriber done ${r.drainSeconds.toFixed(2)} s after the job started`,
    `commit-to-client ms: p50 ${r.latencyMs.p50.toFixed(0)}, p95 ${r.latencyMs.p95.toFixed(0)}, p99 ${r.latencyMs.p99.toFixed(0)}, max ${r.latencyMs.max.toFixed(0)}`,
    `service RSS MiB: before ${r.rss.beforeMiB.toFixed(1)}, all subscribed ${r.rss.afterMiB.toFixed(1)}, peak during the job ${r.rss.peakMiB.toFixed(1)}`,
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
