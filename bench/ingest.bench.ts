/**
 * Whole-path ingestion benchmark: `npm run bench` (see bench/run.ts), or on its own with
 * `npx tsx bench/ingest.bench.ts`.
 *
 * Per case, on a fresh database and a fresh service process (the compiled `dist/main.js`; BENCH_SERVICE_SCRIPT=tsx runs the sources):
 *   - the baseline is the real `psql \copy` (issue #16): `psql <url> -c "\copy bench_raw from
 *     '<file>' with (format csv, header true)"` of the same file into a plain table with the same
 *     10 typed columns in the same server (emptied before each run);
 *   - peer: pgloader on the same file into another such table, when `pgloader` is on PATH
 *     (BENCH_PGLOADER=0 skips it);
 *   - the public API: uploadFile (multipart, streamed from disk) -> job SUCCEEDED, timed from the
 *     start of the upload request to the moment the client sees the terminal job state;
 *   - PostgreSQL's share of the API's load on its own (BENCH_FLOOR=0 skips it): the same rows as
 *     Sluice's encoder writes them (binary, rendered once before the runs, untimed), `\copy`ed by
 *     psql with `format binary, freeze` into a fresh table shaped like a file's partition, created
 *     in the same transaction with the load's settings. No Node at all: how fast the server takes
 *     the rows the service sends it, so how close to `psql \copy` any path through the service can get.
 *     Then the same rows over two COPYs at once into a split partition (SLUICE_LOAD_STREAMS=2's
 *     shape, `PG alone x2`): how far two streams could go where the service has cores of its own.
 * psql, pgloader and API runs alternate (BENCH_REPEAT times for the main case; medians are
 * reported), each after autovacuum is idle and a CHECKPOINT, so none pays for another's cleanup.
 * The job's own split (its "rows loaded" log line: prepare, parse + validate + COPY, key +
 * attach, commit) is printed for every API run. BENCH_COPY_WAITS=1 also samples the load's COPY
 * backend every 10 ms from pg_stat_activity (bench/lib/copy-waits.ts) and prints how often it was
 * working, waiting for the service's rows (`Client:ClientRead`) or waiting on I/O, over the run and
 * after the upload was answered (off by default: the sampling queries cost PostgreSQL a little).
 * BENCH_THREAD_CPU=1 prints, per API run, the service's CPU by thread from /proc/<pid>/task (the
 * main thread, i.e. the API's event loop; the busiest others, i.e. the load's pipeline thread and
 * V8's and libuv's helpers; the rest), user + kernel seconds.
 * The service's RSS is sampled from /proc/<pid>/status every 100 ms (VmRSS) and its VmHWM read;
 * CPU seconds of the service, the local postgres processes and this process are read from /proc.
 *
 * Cases: BENCH_ROWS rows (default 1,000,000), then a ~1 GiB file (BENCH_BIG_ROWS rows, default
 * sized to 1 GiB; BENCH_SKIP_BIG=1 skips it; BENCH_BIG_COPY=0 skips its COPY baseline), then,
 * with the big one, a ~10 MB file through the API alone: the memory bar is both a peak (< 300 MiB
 * for 1 GiB) and a difference (< 64 MiB between the 1 GiB and the 10 MB file's peaks).
 */
import { spawn, spawnSync } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { uploadFileStream } from '../src/cli/upload-stream';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { JobDocument, JobUpdatedDocument, RegisterSpecDocument, type SluiceClient, UploadFileDocument, type JobFieldsFragment } from '../src/sdk/client';
import { ATTENDANCE_COLUMNS, attendanceSpec, RAW_TABLE_COLUMNS_SQL, writeAttendanceCsv } from './lib/attendance-data';
import { type CopyWaits, formatCopyWaits, sampleCopyWaits } from './lib/copy-waits';
import { cpuMeter, type CpuUse, threadCpu, threadCpuLine } from './lib/cpu';
import { FLOOR_FILE_ID, floorCopySql, floorDefaultsSql, floorTableSql, renderLoadRows } from './lib/load-rows';
import { splitBinaryCopy } from '../src/ingest/copy-split';
import { createSplitFilePartition, fileLeafName, filePartitionName, quoteLiteral } from '../src/modules/datasets/dataset-tables.store';
import { openPgServer, type BenchDatabase, type PgServer } from './lib/database';
import { RssSampler, signInBenchAdmin, spawnBenchService } from './lib/service';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const TERMINAL = new Set(['SUCCEEDED', 'SUCCEEDED_WITH_ERRORS', 'FAILED', 'CANCELLED']);

export interface IngestBenchOptions {
  rows: number;
  /** Alternating COPY/API runs of the main case; the big case runs once. */
  repeat: number;
  /** Rows of the big case; null = enough for `bigBytes`. */
  bigRows: number | null;
  bigBytes: number;
  skipBig: boolean;
  bigCopy: boolean;
  /** Folder for RSS traces (one CSV per case), or null. */
  rssTraceDir: string | null;
  /** Folder for the service's output (one log per case: BENCH_SERVICE_LOG), or null. */
  serviceLogDir: string | null;
  /** Run pgloader as a peer when it is on PATH. */
  pgloader: boolean;
  /** Time PostgreSQL alone on the load's binary rows (BENCH_FLOOR, default on). */
  floor: boolean;
  log: (line: string) => void;
}

export interface ApiRun {
  seconds: number;
  /** Client: upload request start -> response (file stored, job queued). */
  uploadSeconds: number;
  /** Server timestamps: job created -> started (queue pick-up). */
  queuedSeconds: number;
  /** Server timestamps: job started -> finished (parse, validate, COPY, outputs). */
  jobSeconds: number;
  /** Job finished (server) -> seen by the client. */
  observeSeconds: number;
  /** CPU seconds over the whole API run, and over the upload request alone. */
  cpu: CpuUse;
  uploadCpu: CpuUse;
  /** The job's own split (its "rows loaded" log line), seconds; null when not logged. */
  split: JobSplit | null;
  /** BENCH_COPY_WAITS=1: what the load's COPY backend was doing, sampled (bench/lib/copy-waits.ts). */
  copyWaits?: CopyWaits;
}

export interface JobSplit {
  /**
   * The file's rows were COPYed while it uploaded (its "rows loaded during upload" line): the
   * load's COPY (first byte read -> COPY ended), the part of it after the upload was stored, its
   * commit. The job's own split then is: prepare = waiting for that load, key = the attach.
   */
  duringUpload?: { copy: number; afterStored: number; commit: number };
  /** Fence lock + partition DDL. */
  prepare: number;
  /** Parse + validate + binary COPY (the service and PostgreSQL in parallel). */
  copy: number;
  /** Key build + attach. */
  key: number;
  commit: number;
}

export interface CopyRun {
  seconds: number;
  cpu: CpuUse;
}

export interface CaseResult {
  label: string;
  /** main: BENCH_ROWS with the baselines; big: ~1 GiB; small: ~10 MB, for the memory difference bar. */
  role: CaseRole;
  rows: number;
  bytes: number;
  /** `psql \copy` runs (the baseline). */
  copyRuns: CopyRun[];
  /** pgloader runs (the peer), empty when pgloader is absent or skipped. */
  pgloaderRuns: CopyRun[];
  /** PostgreSQL alone taking the load's binary rows (see the top of this file), empty when skipped. */
  floorRuns: CopyRun[];
  /** PostgreSQL alone on the same rows over two COPYs at once (SLUICE_LOAD_STREAMS=2's shape). */
  floor2Runs: CopyRun[];
  apiRuns: ApiRun[];
  /** Median runs. */
  copy: CopyRun | null;
  pgloader: CopyRun | null;
  floor: CopyRun | null;
  floor2: CopyRun | null;
  api: ApiRun;
  /** API rows/s over `psql \copy` rows/s (medians), same file, same run. */
  ratio: number | null;
  /** pgloader rows/s over `psql \copy` rows/s (medians). */
  pgloaderRatio: number | null;
  /** PostgreSQL alone on the load's binary rows, rows/s over `psql \copy` rows/s (medians). */
  floorRatio: number | null;
  floor2Ratio: number | null;
  rss: {
    /** VmHWM over the service's whole life: the number the bar is about. */
    peakMiB: number;
    startupPeakMiB: number;
    /** Just before the first upload. */
    idleMiB: number;
    uploadPeakMiB: number;
    jobPeakMiB: number;
    samples: number;
  };
}

export type CaseRole = 'main' | 'big' | 'small';

export interface IngestBenchReport {
  node: string;
  postgres: string;
  embeddedPostgres: boolean;
  cpus: number;
  /** pgloader's version line, or null when it is not on PATH (or skipped). */
  pgloader: string | null;
  cases: CaseResult[];
}

const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;
const toMiB = (bytes: number) => round(bytes / MiB, 1);
const secondsSince = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e9;
const fmtInt = (n: number) => Math.round(n).toLocaleString('en-US');
const fmtSplit = (s: JobSplit) =>
  s.duringUpload
    ? `loaded during the upload: parse + validate + COPY ${s.duringUpload.copy.toFixed(2)} s (${s.duringUpload.afterStored.toFixed(2)} s of it after the upload was stored), commit ${s.duringUpload.commit.toFixed(2)} s; the job waited ${s.prepare.toFixed(2)} s for it, attach ${s.key.toFixed(2)} s, commit ${s.commit.toFixed(2)} s`
    : `prepare ${s.prepare.toFixed(2)} s, parse + validate + COPY ${s.copy.toFixed(2)} s, attach (+ merge) ${s.key.toFixed(2)} s, commit ${s.commit.toFixed(2)} s`;
const fmtWaits = (w: CopyWaits) =>
  `the load's COPY backend, sampled every ${w.intervalMs} ms (${w.samples} samples): ${formatCopyWaits(w.samples, w.by)}; after the upload was answered (${w.afterMark.samples}): ${formatCopyWaits(w.afterMark.samples, w.afterMark.by)}`;
const fmtCpu = (c: CpuUse) => `cpu s: service ${c.service?.toFixed(1) ?? 'n/a'}, postgres ${c.postgres?.toFixed(1) ?? 'n/a'}, bench ${c.client.toFixed(1)}`;

/** The run with the median time (the lower middle one for an even count). */
function median<T extends { seconds: number }>(runs: T[]): T {
  const sorted = [...runs].sort((a, b) => a.seconds - b.seconds);
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}

function envInt(name: string): number | null {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return null;
  const n = Number(raw.replace(/_/g, ''));
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got ${JSON.stringify(raw)}`);
  return n;
}

export function optionsFromEnv(log: (line: string) => void = (l) => console.log(l)): IngestBenchOptions {
  return {
    rows: envInt('BENCH_ROWS') ?? 1_000_000,
    repeat: envInt('BENCH_REPEAT') ?? 3,
    bigRows: envInt('BENCH_BIG_ROWS'),
    bigBytes: envInt('BENCH_BIG_BYTES') ?? GiB,
    skipBig: process.env['BENCH_SKIP_BIG'] === '1',
    bigCopy: process.env['BENCH_BIG_COPY'] !== '0',
    rssTraceDir: process.env['BENCH_RSS_TRACE'] || null,
    serviceLogDir: process.env['BENCH_SERVICE_LOG'] || null,
    pgloader: process.env['BENCH_PGLOADER'] !== '0',
    floor: process.env['BENCH_FLOOR'] !== '0',
    log,
  };
}

/** Waits for the job's terminal state: jobUpdated subscription (exact), with a JobDocument poll as a fallback. */
export async function waitForJob(client: SluiceClient, id: string, timeoutMs: number): Promise<{ job: JobFieldsFragment; seenAt: number }> {
  let settled = false;
  const sub = client.subscribe(JobUpdatedDocument, { id, afterSeq: 0 });
  const viaSubscription = (async () => {
    for await (const r of sub) {
      if (r.errors?.length) throw new Error(`jobUpdated failed: ${JSON.stringify(r.errors)}`);
      if (r.data?.jobUpdated.terminal) return Date.now();
    }
    return null;
  })().catch(() => null); // the poll below still decides
  const viaPoll = (async () => {
    const started = Date.now();
    while (!settled) {
      const { job } = await client.request(JobDocument, { id });
      if (TERMINAL.has(job.state)) return Date.now();
      if (Date.now() - started > timeoutMs) throw new Error(`job ${id} still ${job.state} after ${timeoutMs} ms: ${JSON.stringify(job.progress)}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
    return null;
  })();
  try {
    const seenAt = await Promise.race([viaSubscription.then((t) => t ?? viaPoll), viaPoll]);
    if (seenAt === null) throw new Error(`lost track of job ${id}`);
    const { job } = await client.request(JobDocument, { id });
    return { job, seenAt };
  } finally {
    settled = true;
    await sub.return?.();
  }
}

interface Pids {
  service: number;
  postmaster: number | null;
}

/**
 * Quiets the server before a measured run: waits (up to 60 s) for autovacuum workers the previous
 * run triggered, then flushes dirty pages, so a run does not pay for the previous one's cleanup.
 * CHECKPOINT needs superuser or pg_checkpoint; without it, only the wait applies.
 */
async function quiesce(db: BenchDatabase): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const [row] = await db.sql`select count(*)::int as n from pg_stat_activity where backend_type = 'autovacuum worker'`;
    if (Number(row?.['n']) === 0) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  await db.sql`checkpoint`.catch(() => undefined);
}

/** Runs a command to its end; rejects with its output when it exits non-zero. */
function runCommand(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    const keep = (c: Buffer) => {
      if (err.length < 8192) err += c.toString();
    };
    // pgloader reports its errors on stdout.
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', reject);
    child.on('exit', (code, signal) => (code === 0 ? resolve() : reject(new Error(`${cmd} exited ${code ?? signal}: ${err.trim()}`))));
  });
}

/** pgloader's version line when it is on PATH, else null. */
function pgloaderVersion(): string | null {
  const r = spawnSync('pgloader', ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return null;
  return r.stdout.split('\n')[0]!.trim();
}

async function countRows(db: BenchDatabase, table: string): Promise<number> {
  const [row] = await db.sql`select count(*)::bigint as n from ${db.sql(table)}`;
  return Number(row?.['n']);
}

/** The baseline: the real `psql \copy` (CSV, header) of the file into a plain table, emptied first. */
async function psqlCopyRun(db: BenchDatabase, c: { file: string; rows: number }, pids: Pids): Promise<CopyRun> {
  await db.sql`truncate bench_raw`;
  await quiesce(db);
  const cpu = cpuMeter(pids.service, pids.postmaster);
  const started = process.hrtime.bigint();
  const copy = `\\copy bench_raw (${ATTENDANCE_COLUMNS.join(', ')}) from ${quoteLiteral(c.file)} with (format csv, header true)`;
  await runCommand('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', db.url, '-c', copy]);
  const seconds = secondsSince(started);
  const used = cpu();
  if ((await countRows(db, 'bench_raw')) !== c.rows) throw new Error(`psql \\copy left ${await countRows(db, 'bench_raw')} rows, expected ${c.rows}`);
  return { seconds, cpu: used };
}

/**
 * PostgreSQL alone taking the load's rows (see the top of this file): one psql session runs the
 * transaction the load runs (a fresh table like a file's partition, its constant defaults, early
 * writeback where rows skip WAL, `COPY … FREEZE` in binary, commit).
 */
async function floorRun(
  db: BenchDatabase,
  tmp: string,
  c: { rows: number },
  floor: { file: string; columns: string[]; table: string },
  pids: Pids,
): Promise<CopyRun> {
  await db.sql`drop table if exists bench_floor`;
  await quiesce(db);
  const script = path.join(tmp, 'floor.sql');
  await fs.writeFile(
    script,
    ['begin;', ...floorTableSql(floor.table, 'bench_floor'), ...floorCopySql('bench_floor', floor.columns, floor.file), 'commit;', ''].join('\n'),
  );
  const cpu = cpuMeter(pids.service, pids.postmaster);
  const started = process.hrtime.bigint();
  await psqlScript(db, script);
  const seconds = secondsSince(started);
  const used = cpu();
  if ((await countRows(db, 'bench_floor')) !== c.rows) throw new Error(`the floor run left ${await countRows(db, 'bench_floor')} rows, expected ${c.rows}`);
  return { seconds, cpu: used };
}

/**
 * PostgreSQL alone taking the load's rows over two COPYs at once, as a load with
 * SLUICE_LOAD_STREAMS=2 sends them (src/modules/files/load-session.ts): a split partition
 * committed empty, then one psql session per leaf truncating it and COPYing its blocks of lines
 * (rendered once, untimed, by the service's own splitter) with FREEZE, both at once.
 */
async function floor2Run(
  db: BenchDatabase,
  tmp: string,
  c: { rows: number },
  floor: { files: string[]; columns: string[]; table: string },
  pids: Pids,
): Promise<CopyRun> {
  // The split partition exactly as the load creates it, committed empty.
  await dropFloor2(db);
  await db.sql.begin((tx) => createSplitFilePartition(tx, floor.table, FLOOR_FILE_ID, floor.files.length));
  await quiesce(db);
  const scripts = await Promise.all(
    floor.files.map(async (file, i) => {
      const leaf = fileLeafName(FLOOR_FILE_ID, i);
      const script = path.join(tmp, `floor2-${i}.sql`);
      await fs.writeFile(script, ['begin;', `truncate ${leaf};`, floorDefaultsSql(leaf), ...floorCopySql(leaf, floor.columns, file), 'commit;', ''].join('\n'));
      return script;
    }),
  );
  const cpu = cpuMeter(pids.service, pids.postmaster);
  const started = process.hrtime.bigint();
  await Promise.all(scripts.map((script) => psqlScript(db, script)));
  const seconds = secondsSince(started);
  const used = cpu();
  const n = await countRows(db, filePartitionName(FLOOR_FILE_ID));
  if (n !== c.rows) throw new Error(`the two-stream floor run left ${n} rows, expected ${c.rows}`);
  return { seconds, cpu: used };
}

/** Drops the two-stream floor run's split partition (its leaves with it). */
async function dropFloor2(db: BenchDatabase): Promise<void> {
  await db.sql.unsafe(`drop table if exists ${filePartitionName(FLOOR_FILE_ID)}`);
}

/** Runs a psql script file, quietly, stopping at the first error. */
async function psqlScript(db: BenchDatabase, script: string): Promise<void> {
  await runCommand('psql', ['-X', '-q', '-o', '/dev/null', '-v', 'ON_ERROR_STOP=1', '-d', db.url, '-f', script]);
}

/** The peer: pgloader (its defaults: 4 workers' batches of COPY) of the file into a plain table, emptied first. */
async function pgloaderRun(db: BenchDatabase, tmp: string, c: { file: string; rows: number }, pids: Pids): Promise<CopyRun> {
  await db.sql`truncate bench_pgloader`;
  await quiesce(db);
  const load = path.join(tmp, 'bench.load');
  const cols = ATTENDANCE_COLUMNS.join(', ');
  await fs.writeFile(
    load,
    `LOAD CSV FROM '${c.file}' (${cols})\n  INTO ${db.url}?tablename=bench_pgloader (${cols})\n  WITH skip header = 1, fields terminated by ',', fields optionally enclosed by '"';\n`,
  );
  const cpu = cpuMeter(pids.service, pids.postmaster);
  const started = process.hrtime.bigint();
  await runCommand('pgloader', ['--quiet', '--on-error-stop', '--root-dir', path.join(tmp, 'pgloader'), load]);
  const seconds = secondsSince(started);
  const used = cpu();
  const n = await countRows(db, 'bench_pgloader');
  if (n !== c.rows) throw new Error(`pgloader left ${n} rows, expected ${c.rows}`);
  return { seconds, cpu: used };
}

/** The job's split from its last "rows loaded" log line (see ingestion-load.ts). */
function jobSplit(stdout: string): JobSplit | null {
  const line = stdout
    .split('\n')
    .filter((l) => l.includes('"rows loaded"'))
    .at(-1);
  if (!line) return null;
  const { prepareMs, copyMs, keyMs, commitMs, loadedDuringUpload } = JSON.parse(line) as Record<string, number | undefined>;
  const s = (ms: number | undefined) => (ms ?? 0) / 1000;
  const split: JobSplit = { prepare: s(prepareMs), copy: s(copyMs), key: s(keyMs), commit: s(commitMs) };
  const during = loadedDuringUpload
    ? stdout
        .split('\n')
        .filter((l) => l.includes('"rows loaded during upload"'))
        .at(-1)
    : undefined;
  if (during) {
    const d = JSON.parse(during) as Record<string, number | undefined>;
    split.duringUpload = { copy: s(d['copyMs']), afterStored: s(d['afterStoredMs']), commit: s(d['commitMs']) };
  }
  return split;
}

async function apiRun(
  admin: SluiceClient,
  db: BenchDatabase,
  table: string,
  c: { file: string; rows: number },
  sampler: RssSampler,
  pids: Pids,
  stdout: () => string,
): Promise<ApiRun> {
  await quiesce(db);
  const cpu = cpuMeter(pids.service, pids.postmaster);
  const threads0 = process.env['BENCH_THREAD_CPU'] === '1' && pids.service !== null ? threadCpu(pids.service) : null;
  sampler.mark('upload');
  const waits = process.env['BENCH_COPY_WAITS'] === '1' ? sampleCopyWaits(db.url, db.name) : null;
  const started = process.hrtime.bigint();
  // Uploaded as the sluice CLI uploads (a multipart body streamed from disk with its length).
  const { uploadFile } = await uploadFileStream(UploadFileDocument, {
    url: admin.options.url,
    token: admin.options.token!,
    variables: { program: 'attendance', spec: 'attendance', file: null },
    fileVariable: 'file',
    filePath: c.file,
  });
  const uploadSeconds = secondsSince(started);
  const uploadCpu = cpu();
  waits?.mark();
  sampler.mark('job');
  const { job, seenAt } = await waitForJob(admin, uploadFile.job.id, 30 * 60_000);
  const seconds = secondsSince(started);
  const used = cpu();
  if (threads0 && pids.service !== null) console.log(`  service ${threadCpuLine(pids.service, threads0)}`);
  const copyWaits = await waits?.stop();
  sampler.mark('verify');
  if (job.state !== 'SUCCEEDED') throw new Error(`job ended ${job.state}: ${JSON.stringify(job.error)} ${JSON.stringify(job.progress)}`);
  if (job.progress.succeeded !== c.rows) throw new Error(`job reports ${job.progress.succeeded} rows, expected ${c.rows}`);
  const [row] = await db.sql`select count(*)::bigint as n from ${db.sql(table)} where _file_id = ${uploadFile.file.id}`;
  if (Number(row?.['n']) !== c.rows) throw new Error(`${table} holds ${String(row?.['n'])} rows of the file, expected ${c.rows}`);
  const created = Date.parse(job.createdAt);
  const jobStarted = Date.parse(job.startedAt ?? job.createdAt);
  const finished = Date.parse(job.finishedAt ?? job.updatedAt);
  return {
    seconds,
    uploadSeconds,
    queuedSeconds: (jobStarted - created) / 1000,
    jobSeconds: (finished - jobStarted) / 1000,
    observeSeconds: (seenAt - finished) / 1000,
    cpu: used,
    uploadCpu,
    split: jobSplit(stdout()),
    ...(copyWaits ? { copyWaits } : {}),
  };
}

async function runCase(
  server: PgServer,
  tmp: string,
  c: {
    label: string;
    role: CaseRole;
    file: string;
    rows: number;
    bytes: number;
    withCopy: boolean;
    withPgloader: boolean;
    withFloor?: boolean;
    repeat: number;
  },
  opts: IngestBenchOptions,
): Promise<CaseResult> {
  const { log } = opts;
  const db = await server.createDatabase();
  const dataDir = await fs.mkdtemp(path.join(tmp, 'service-'));
  const { service, url } = await spawnBenchService(db.url, dataDir, {
    // info: "Sluice is listening" is an info line; the service logs a handful of lines per job.
    LOG_LEVEL: process.env['BENCH_LOG_LEVEL'] ?? 'info',
    SLUICE_MAX_FILE_SIZE_BYTES: String(2 * GiB),
  });

  const sampler = new RssSampler(service.pid, 100).start();
  let admin: SluiceClient | null = null;
  try {
    await service.waitFor(/Sluice is listening/);
    admin = await signInBenchAdmin(url);
    const { registerSpec } = await admin.request(RegisterSpecDocument, { kind: 'EVENT', spec: attendanceSpec });
    const table = registerSpec.spec.tableName;
    if (!/^[a-z_][a-z0-9_]*$/.test(table)) throw new Error(`unexpected table name ${table}`);
    // Plain tables of the same column types (a stock table: autovacuum as the server has it).
    if (c.withCopy) await db.sql.unsafe(`create table bench_raw (${RAW_TABLE_COLUMNS_SQL})`);
    if (c.withPgloader) await db.sql.unsafe(`create table bench_pgloader (${RAW_TABLE_COLUMNS_SQL})`);
    // The load's rows, rendered once (untimed) for the runs of PostgreSQL alone.
    const floor = c.withFloor ? { file: path.join(dataDir, 'floor.bin'), columns: [] as string[], table } : null;
    if (floor) floor.columns = await renderLoadRows(c.file, floor.file);
    const floor2 = floor ? { files: [0, 1].map((i) => path.join(dataDir, `floor-${i}.bin`)), columns: floor.columns, table } : null;
    if (floor && floor2) {
      const split = splitBinaryCopy(floor2.files.map((f) => createWriteStream(f)));
      await pipeline(createReadStream(floor.file, { highWaterMark: 256 * 1024 }), split);
    }

    const pids: Pids = { service: service.pid, postmaster: server.postmasterPid };
    const copyRuns: CopyRun[] = [];
    const pgloaderRuns: CopyRun[] = [];
    const floorRuns: CopyRun[] = [];
    const floor2Runs: CopyRun[] = [];
    const apiRuns: ApiRun[] = [];
    let idle = 0;
    for (let r = 1; r <= c.repeat; r++) {
      const tag = c.repeat > 1 ? `[${c.label} ${r}/${c.repeat}]` : `[${c.label}]`;
      if (c.withCopy) {
        sampler.mark('copy');
        const run = await psqlCopyRun(db, c, pids);
        copyRuns.push(run);
        log(`  ${tag} psql \\copy: ${run.seconds.toFixed(2)} s, ${fmtInt(c.rows / run.seconds)} rows/s (${fmtCpu(run.cpu)})`);
        // Keeps the big case's disk footprint down; the COPY runs are done.
        if (r === c.repeat) await db.sql`drop table bench_raw`;
      }
      if (c.withPgloader) {
        sampler.mark('pgloader');
        const run = await pgloaderRun(db, tmp, c, pids);
        pgloaderRuns.push(run);
        log(`  ${tag} pgloader: ${run.seconds.toFixed(2)} s, ${fmtInt(c.rows / run.seconds)} rows/s (${fmtCpu(run.cpu)})`);
        if (r === c.repeat) await db.sql`drop table bench_pgloader`;
      }
      if (floor) {
        sampler.mark('floor');
        const run = await floorRun(db, dataDir, c, floor, pids);
        floorRuns.push(run);
        log(`  ${tag} PostgreSQL alone on the load's binary rows: ${run.seconds.toFixed(2)} s, ${fmtInt(c.rows / run.seconds)} rows/s (${fmtCpu(run.cpu)})`);
        await db.sql`drop table bench_floor`;
        if (r === c.repeat) await fs.rm(floor.file, { force: true });
      }
      if (floor2) {
        sampler.mark('floor');
        const run = await floor2Run(db, dataDir, c, floor2, pids);
        floor2Runs.push(run);
        log(
          `  ${tag} PostgreSQL alone on the load's binary rows, two COPYs at once: ${run.seconds.toFixed(2)} s, ${fmtInt(c.rows / run.seconds)} rows/s (${fmtCpu(run.cpu)})`,
        );
        await dropFloor2(db);
        if (r === c.repeat) for (const f of floor2.files) await fs.rm(f, { force: true });
      }
      sampler.mark('idle');
      if (r === 1) idle = sampler.lastRss;
      const run = await apiRun(admin, db, table, c, sampler, pids, () => service.stdout());
      apiRuns.push(run);
      log(
        `  ${tag} API: ${run.seconds.toFixed(2)} s, ${fmtInt(c.rows / run.seconds)} rows/s = upload ${run.uploadSeconds.toFixed(2)} + queued ${run.queuedSeconds.toFixed(2)} + job ${run.jobSeconds.toFixed(2)} + seen ${run.observeSeconds.toFixed(2)} s (${fmtCpu(run.cpu)}); service RSS now ${toMiB(sampler.lastRss)} MiB, peak so far ${toMiB(sampler.peak)} MiB`,
      );
      if (run.split) log(`  ${tag} job: ${fmtSplit(run.split)}`);
      if (run.copyWaits) log(`  ${tag} ${fmtWaits(run.copyWaits)}`);
    }
    sampler.stop();
    const copy = copyRuns.length ? median(copyRuns) : null;
    const pgloader = pgloaderRuns.length ? median(pgloaderRuns) : null;
    const floorMedian = floorRuns.length ? median(floorRuns) : null;
    const floor2Median = floor2Runs.length ? median(floor2Runs) : null;
    const api = median(apiRuns);
    return {
      label: c.label,
      role: c.role,
      rows: c.rows,
      bytes: c.bytes,
      copyRuns,
      pgloaderRuns,
      floorRuns,
      floor2Runs,
      apiRuns,
      copy,
      pgloader,
      floor: floorMedian,
      floor2: floor2Median,
      api,
      ratio: copy ? copy.seconds / api.seconds : null,
      pgloaderRatio: copy && pgloader ? copy.seconds / pgloader.seconds : null,
      floorRatio: copy && floorMedian ? copy.seconds / floorMedian.seconds : null,
      floor2Ratio: copy && floor2Median ? copy.seconds / floor2Median.seconds : null,
      rss: {
        peakMiB: toMiB(sampler.peak),
        startupPeakMiB: toMiB(sampler.peakByPhase.get('startup') ?? 0),
        idleMiB: toMiB(idle),
        uploadPeakMiB: toMiB(sampler.peakByPhase.get('upload') ?? 0),
        jobPeakMiB: toMiB(sampler.peakByPhase.get('job') ?? 0),
        samples: sampler.samples,
      },
    };
  } catch (err) {
    const tail = (s: string) => s.split('\n').slice(-30).join('\n');
    throw new Error(
      `${c.label}: ${err instanceof Error ? err.message : String(err)}\n--- service stdout (tail) ---\n${tail(service.stdout())}\n--- service stderr (tail) ---\n${tail(service.stderr())}`,
      { cause: err },
    );
  } finally {
    sampler.stop();
    if (opts.rssTraceDir) {
      await fs.mkdir(opts.rssTraceDir, { recursive: true });
      const name = path.join(opts.rssTraceDir, `rss-${c.label.replace(/[^A-Za-z0-9.]+/g, '_')}.csv`);
      await fs.writeFile(name, `ms,phase,rss_mib\n${sampler.trace.map(([t, p, b]) => `${t},${p},${toMiB(b)}`).join('\n')}\n`);
      log(`  [${c.label}] RSS trace written to ${name}`);
    }
    await admin?.close();
    const exit = await service.stop();
    if (opts.serviceLogDir) {
      await fs.mkdir(opts.serviceLogDir, { recursive: true });
      const name = path.join(opts.serviceLogDir, `service-${c.label.replace(/[^A-Za-z0-9.]+/g, '_')}.log`);
      await fs.writeFile(name, `${service.stdout()}\n--- stderr ---\n${service.stderr()}`);
      log(`  [${c.label}] service output written to ${name}`);
    }
    if (exit.code !== 0 && exit.signal === null) log(`  [${c.label}] warning: the service exited with code ${exit.code}\n${service.stderr().slice(-2000)}`);
    await db.drop().catch((e: unknown) => log(`  [${c.label}] warning: could not drop ${db.name}: ${String(e)}`));
    await fs.rm(dataDir, { recursive: true, force: true });
  }
}

export async function runIngestBench(opts: IngestBenchOptions): Promise<IngestBenchReport> {
  const { log } = opts;
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-bench-'));
  let server: PgServer | null = null;
  try {
    server = await openPgServer(tmp);
    log(
      `PostgreSQL ${server.version} (${server.embedded ? 'embedded, started by the bench' : 'DATABASE_URL'}), node ${process.version}, ${os.cpus().length} CPUs`,
    );
    const pgloader = opts.pgloader ? pgloaderVersion() : null;
    log(pgloader ? `peer: ${pgloader}` : `peer: pgloader ${opts.pgloader ? 'is not on PATH' : 'skipped (BENCH_PGLOADER=0)'}; its runs are skipped`);
    const cases: CaseResult[] = [];

    const file = path.join(tmp, 'attendance.csv');
    let started = process.hrtime.bigint();
    const bytes = await writeAttendanceCsv(file, opts.rows);
    log(`generated ${fmtInt(opts.rows)} rows, ${toMiB(bytes)} MiB in ${secondsSince(started).toFixed(1)} s`);
    cases.push(
      await runCase(
        server,
        tmp,
        {
          label: `${fmtInt(opts.rows)} rows`,
          role: 'main',
          file,
          rows: opts.rows,
          bytes,
          withCopy: true,
          withPgloader: pgloader !== null,
          withFloor: opts.floor,
          repeat: opts.repeat,
        },
        opts,
      ),
    );
    await fs.rm(file, { force: true });

    if (!opts.skipBig) {
      const bigRows = opts.bigRows ?? Math.round(opts.bigBytes / (bytes / opts.rows));
      const bigFile = path.join(tmp, 'attendance-big.csv');
      started = process.hrtime.bigint();
      const bigBytes = await writeAttendanceCsv(bigFile, bigRows);
      log(`generated ${fmtInt(bigRows)} rows, ${toMiB(bigBytes)} MiB in ${secondsSince(started).toFixed(1)} s`);
      const label = bigBytes >= 1000 * MiB ? `${(bigBytes / GiB).toFixed(2)} GiB` : `${toMiB(bigBytes)} MiB`;
      cases.push(
        await runCase(
          server,
          tmp,
          { label, role: 'big', file: bigFile, rows: bigRows, bytes: bigBytes, withCopy: opts.bigCopy, withPgloader: false, repeat: 1 },
          opts,
        ),
      );
      await fs.rm(bigFile, { force: true });
      // Issue #16's memory bar is also a difference: peak RSS for the 1 GiB file against a 10 MB one.
      const smallRows = Math.max(1, Math.round((10 * 1000 * 1000) / (bytes / opts.rows)));
      const smallFile = path.join(tmp, 'attendance-small.csv');
      const smallBytes = await writeAttendanceCsv(smallFile, smallRows);
      cases.push(
        await runCase(
          server,
          tmp,
          {
            label: `${toMiB(smallBytes)} MiB`,
            role: 'small',
            file: smallFile,
            rows: smallRows,
            bytes: smallBytes,
            withCopy: false,
            withPgloader: false,
            repeat: 1,
          },
          opts,
        ),
      );
      await fs.rm(smallFile, { force: true });
    }
    return { node: process.version, postgres: server.version, embeddedPostgres: server.embedded, cpus: os.cpus().length, pgloader, cases };
  } finally {
    await server?.dispose().catch((e: unknown) => log(`warning: database cleanup failed: ${String(e)}`));
    await fs.rm(tmp, { recursive: true, force: true });
  }
}

/** The results table, the breakdown and the bars. */
export function formatReport(report: IngestBenchReport): string[] {
  const head = ['case', 'path', 'runs', 'rows', 'MiB', 'seconds', 'min-max s', 'rows/s', 'ratio', 'peak RSS MiB'];
  const rows: string[][] = [];
  const spread = (runs: Array<{ seconds: number }>) =>
    runs.length > 1 ? `${Math.min(...runs.map((r) => r.seconds)).toFixed(2)}-${Math.max(...runs.map((r) => r.seconds)).toFixed(2)}` : '-';
  for (const c of report.cases) {
    // One table row per way of loading: runs, median seconds, range, rows/s, ratio to psql \copy, peak RSS.
    const line = (how: string, runs: Array<{ seconds: number }>, median: { seconds: number }, ratio: string, rss: string) =>
      rows.push([
        c.label,
        how,
        String(runs.length),
        fmtInt(c.rows),
        toMiB(c.bytes).toFixed(1),
        median.seconds.toFixed(2),
        spread(runs),
        fmtInt(c.rows / median.seconds),
        ratio,
        rss,
      ]);
    if (c.copy) line('psql \\copy', c.copyRuns, c.copy, '1.00', '-');
    if (c.pgloader) line('pgloader', c.pgloaderRuns, c.pgloader, c.pgloaderRatio?.toFixed(2) ?? 'n/a', '-');
    if (c.floor) line('PG alone', c.floorRuns, c.floor, c.floorRatio?.toFixed(2) ?? 'n/a', '-');
    if (c.floor2) line('PG alone x2', c.floor2Runs, c.floor2, c.floor2Ratio?.toFixed(2) ?? 'n/a', '-');
    line('API', c.apiRuns, c.api, c.ratio === null ? 'n/a' : c.ratio.toFixed(2), c.rss.peakMiB.toFixed(1));
  }
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]) => r.map((cell, i) => (i < 2 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ');
  const lines = [fmt(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(fmt), ''];
  for (const c of report.cases) {
    const a = c.api;
    lines.push(
      `${c.label} API (median run): upload ${a.uploadSeconds.toFixed(2)} s + queued ${a.queuedSeconds.toFixed(2)} s + job ${a.jobSeconds.toFixed(2)} s + seen ${a.observeSeconds.toFixed(2)} s`,
    );
    if (a.split) lines.push(`${c.label} API job (median run): ${fmtSplit(a.split)}`);
    if (a.copyWaits) lines.push(`${c.label} API (median run): ${fmtWaits(a.copyWaits)}`);
    lines.push(`${c.label} API ${fmtCpu(a.cpu)} (upload request alone: ${fmtCpu(a.uploadCpu)})`);
    if (c.copy) lines.push(`${c.label} psql \\copy ${fmtCpu(c.copy.cpu)}`);
    if (c.pgloader) lines.push(`${c.label} pgloader ${fmtCpu(c.pgloader.cpu)}`);
    if (c.floor)
      lines.push(
        `${c.label} PG alone (PostgreSQL taking the load's binary rows, no Node): ${fmtCpu(c.floor.cpu)}; the API at ${(c.floor.seconds / c.api.seconds).toFixed(2)} of it`,
      );
    lines.push(
      `${c.label} service RSS MiB: startup peak ${c.rss.startupPeakMiB}, idle ${c.rss.idleMiB}, upload peak ${c.rss.uploadPeakMiB}, job peak ${c.rss.jobPeakMiB}, VmHWM ${c.rss.peakMiB} (${c.rss.samples} samples)`,
    );
  }
  const main = report.cases.find((c) => c.role === 'main');
  const big = report.cases.find((c) => c.role === 'big');
  const small = report.cases.find((c) => c.role === 'small');
  // Issue #16: >= 1.0 x psql \copy on the embedded server, >= 0.8 x on an external one.
  const bar = report.embeddedPostgres ? 1.0 : 0.8;
  if (main?.ratio != null)
    lines.push(
      `bar: API / psql \\copy >= ${bar.toFixed(1)} (${report.embeddedPostgres ? 'embedded' : 'external'} PostgreSQL) on ${main.label}: ${main.ratio.toFixed(2)} ${main.ratio >= bar ? 'PASS' : 'MISS'}`,
    );
  if (main?.pgloaderRatio != null)
    lines.push(
      `peer: pgloader / psql \\copy on ${main.label}: ${main.pgloaderRatio.toFixed(2)}; API / pgloader ${(main.pgloader!.seconds / main.api.seconds).toFixed(2)}`,
    );
  else lines.push(`peer: pgloader ${report.pgloader === null ? 'not run (not on PATH, or BENCH_PGLOADER=0)' : 'not run'}`);
  if (main?.floorRatio != null)
    lines.push(
      `limit: PostgreSQL alone on the load's binary rows / psql \\copy on ${main.label}: ${main.floorRatio.toFixed(2)} (the API can come no closer to psql \\copy than this without more than one COPY stream); API / PG alone ${(main.floor!.seconds / main.api.seconds).toFixed(2)}${main.floor2Ratio != null ? `; PostgreSQL alone over two COPYs at once / psql \\copy ${main.floor2Ratio.toFixed(2)} (what SLUICE_LOAD_STREAMS=2 could reach where the service has cores of its own)` : ''}`,
    );
  if (big) lines.push(`bar: service peak RSS < 300 MiB on ${big.label}: ${big.rss.peakMiB} MiB ${big.rss.peakMiB < 300 ? 'PASS' : 'MISS'}`);
  if (big && small) {
    const diff = Math.round((big.rss.peakMiB - small.rss.peakMiB) * 10) / 10;
    lines.push(`bar: peak RSS ${big.label} - ${small.label} < 64 MiB: ${big.rss.peakMiB} - ${small.rss.peakMiB} = ${diff} MiB ${diff < 64 ? 'PASS' : 'MISS'}`);
  }
  return lines;
}

/** One machine-readable object (printed as a single JSON line). */
export function reportJson(report: IngestBenchReport): Record<string, unknown> {
  const cpu = (c: CpuUse) => ({
    service: c.service === null ? null : round(c.service, 2),
    postgres: c.postgres === null ? null : round(c.postgres, 2),
    bench: round(c.client, 2),
  });
  return {
    bench: 'sluice-ingest',
    node: report.node,
    postgres: report.postgres,
    embeddedPostgres: report.embeddedPostgres,
    cpus: report.cpus,
    pgloader: report.pgloader,
    cases: report.cases.map((c) => ({
      label: c.label,
      role: c.role,
      rows: c.rows,
      bytes: c.bytes,
      runs: c.apiRuns.length,
      copySeconds: c.copy ? round(c.copy.seconds, 3) : null,
      copyRowsPerSec: c.copy ? Math.round(c.rows / c.copy.seconds) : null,
      copySecondsAll: c.copyRuns.map((r) => round(r.seconds, 3)),
      pgloaderSeconds: c.pgloader ? round(c.pgloader.seconds, 3) : null,
      pgloaderRowsPerSec: c.pgloader ? Math.round(c.rows / c.pgloader.seconds) : null,
      pgloaderSecondsAll: c.pgloaderRuns.map((r) => round(r.seconds, 3)),
      pgloaderRatio: c.pgloaderRatio === null ? null : round(c.pgloaderRatio, 3),
      floorSeconds: c.floor ? round(c.floor.seconds, 3) : null,
      floorSecondsAll: c.floorRuns.map((r) => round(r.seconds, 3)),
      floorRatio: c.floorRatio === null ? null : round(c.floorRatio, 3),
      floor2Seconds: c.floor2 ? round(c.floor2.seconds, 3) : null,
      floor2SecondsAll: c.floor2Runs.map((r) => round(r.seconds, 3)),
      floor2Ratio: c.floor2Ratio === null ? null : round(c.floor2Ratio, 3),
      apiSeconds: round(c.api.seconds, 3),
      apiRowsPerSec: Math.round(c.rows / c.api.seconds),
      apiSecondsAll: c.apiRuns.map((r) => round(r.seconds, 3)),
      ratio: c.ratio === null ? null : round(c.ratio, 3),
      uploadSeconds: round(c.api.uploadSeconds, 3),
      queuedSeconds: round(c.api.queuedSeconds, 3),
      jobSeconds: round(c.api.jobSeconds, 3),
      observeSeconds: round(c.api.observeSeconds, 3),
      jobSplitSeconds: c.api.split
        ? {
            prepare: round(c.api.split.prepare, 3),
            copy: round(c.api.split.copy, 3),
            key: round(c.api.split.key, 3),
            commit: round(c.api.split.commit, 3),
            ...(c.api.split.duringUpload
              ? {
                  duringUpload: {
                    copy: round(c.api.split.duringUpload.copy, 3),
                    afterStored: round(c.api.split.duringUpload.afterStored, 3),
                    commit: round(c.api.split.duringUpload.commit, 3),
                  },
                }
              : {}),
          }
        : null,
      apiCpuSeconds: cpu(c.api.cpu),
      uploadCpuSeconds: cpu(c.api.uploadCpu),
      copyCpuSeconds: c.copy ? cpu(c.copy.cpu) : null,
      peakRssMiB: c.rss.peakMiB,
      startupPeakRssMiB: c.rss.startupPeakMiB,
      idleRssMiB: c.rss.idleMiB,
      uploadPeakRssMiB: c.rss.uploadPeakMiB,
      jobPeakRssMiB: c.rss.jobPeakMiB,
    })),
  };
}

// On its own: `npx tsx bench/ingest.bench.ts`.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const report = await runIngestBench(optionsFromEnv());
  console.log('');
  for (const l of formatReport(report)) console.log(l);
  console.log(JSON.stringify(reportJson(report)));
}
