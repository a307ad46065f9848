/**
 * `npm run bench`: the ingestion benchmark (not a test; it never fails on a missed bar).
 *
 *   1. bench/csv-pipeline.bench.ts: parser-only micro benchmark, in-process pipeline, no database
 *      (BENCH_SKIP_MICRO=1 skips it).
 *   2. bench/ingest.bench.ts: the whole ingestion path through the public API of a real service
 *      process against the real `psql \copy` (CSV, header) of the same file into a plain table of
 *      the same column types, measured in the same run (pgloader as a peer when on PATH), plus the
 *      service's peak RSS on a ~1 GiB file and on a ~10 MB one (the difference bar).
 *   3. bench/bulk.bench.ts: a directory bulk upload of BENCH_BULK_ROWS locations through the API
 *      against raw multi-row INSERTs of the same rows in the same run (BENCH_SKIP_BULK=1 skips it).
 *   4. bench/responsive.bench.ts: authenticated reads at 800/s and /healthz during a 1M-row import
 *      in one service process (role all), BENCH_RESPONSIVE_REPEAT runs (default 3), each its own
 *      service, then how many of them met all three bars (BENCH_SKIP_RESPONSIVE=1 skips it).
 *   5. bench/fanout.bench.ts: BENCH_FANOUT_SUBSCRIBERS graphql-ws subscribers on one ingestion job:
 *      commit-to-client latency, every event to every subscriber, service RSS per connection
 *      (BENCH_SKIP_FANOUT=1 skips it).
 *
 * Environment:
 *   DATABASE_URL       PostgreSQL server to use (a fresh sluice_bench_* database per case, dropped
 *                      after). Unset: an embedded PostgreSQL is started in a temp folder.
 *   BENCH_ROWS         rows of the main case (default 1,000,000).
 *   BENCH_REPEAT       alternating psql \copy / pgloader / API runs of the main case, medians reported (default 3).
 *   BENCH_PGLOADER=0   skip the pgloader peer (it runs only when `pgloader` is on PATH).
 *   BENCH_SKIP_BIG=1   skip the ~1 GiB case and the ~10 MB one after it (one run of each).
 *   BENCH_BIG_ROWS     rows of the big case (default: as many as make BENCH_BIG_BYTES, 1 GiB).
 *   BENCH_BIG_COPY=0   skip the raw COPY baseline of the big case.
 *   BENCH_SKIP_MICRO=1 skip the parser micro benchmark.
 *   BENCH_MICRO_REPEAT interleaved rounds of the micro benchmark's pipeline cases (default 3).
 *   BENCH_SKIP_INGEST=1 skip the ingestion benchmark (2).
 *   BENCH_BULK_ROWS    rows of the directory bulk upload case (default 50,000).
 *   BENCH_SKIP_BULK=1  skip the directory bulk upload benchmark (3).
 *   BENCH_FANOUT_SUBSCRIBERS  WebSocket subscribers of the fan-out case (default 5,000; needs about
 *                      that many open files more than `ulimit -n` gives by default).
 *   BENCH_FANOUT_ROWS  rows of the watched ingestion job (default 300,000).
 *   BENCH_FANOUT_BATCH connections opened at once (default 250).
 *   BENCH_FANOUT_CLIENT_PROCESSES  child processes the fan-out clients are spread over (default 4).
 *   BENCH_SKIP_FANOUT=1 skip the fan-out benchmark (5).
 *   BENCH_RESPONSIVE_REPEAT  runs of the responsiveness benchmark (default 3; its own variables,
 *                      BENCH_READ_RATE and the rest, are passed on).
 *   BENCH_SKIP_RESPONSIVE=1 skip the responsiveness benchmark (4).
 *   BENCH_LOG_LEVEL    LOG_LEVEL of the service (default info).
 *   BENCH_RSS_TRACE    folder: write every RSS sample of each case there as CSV.
 *   BENCH_PIPELINE_THREAD_NICE  the service's SLUICE_PIPELINE_THREAD_NICE (A/B of the pipeline thread's nice value).
 *   BENCH_SERVICE_ENV  settings for the service, for an A/B: "SLUICE_LOAD_DURING_UPLOAD=0 SLUICE_X=1" (the
 *                      bench's own SLUICE_* variables do not reach the service).
 *   BENCH_SERVICE_LOG  folder: keep each ingestion case's service output there.
 *   BENCH_FLOOR=0      skip the ingestion benchmark's "PostgreSQL alone" runs (one COPY and two at once).
 *   BENCH_COPY_WAITS=1 sample what the load's COPY backend waits on during each API run (pg_stat_activity).
 *   BENCH_THREAD_CPU=1 print the service's CPU by thread (main, busiest others, rest) for each API run.
 *   BENCH_SERVICE_NODE_ARGS  extra node flags for the service, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
 *   BENCH_SERVICE_SCRIPT     the service's entry: default the compiled build (dist/main.js, built when
 *                            stale, as `npm start` runs it); `tsx` runs `--import tsx src/main.ts`.
 *
 * Diagnostics not run here: `npx tsx bench/stages.bench.ts` times each stage of the path alone;
 * `npx tsx bench/pg-instructions.bench.ts` counts PostgreSQL's instructions on the load's rows against `psql \copy`'s (valgrind).
 *
 * Prints a table per benchmark, each followed by one JSON line (`{"bench":"sluice-ingest",...}`,
 * `{"bench":"sluice-bulk-upload",...}`, `{"bench":"sluice-responsive-runs",...}`, `{"bench":"sluice-fanout",...}`).
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bulkReportJson, bulkRowsFromEnv, formatBulkReport, runBulkBench } from './bulk.bench';
import { fanoutOptionsFromEnv, fanoutReportJson, formatFanoutReport, runFanoutBench } from './fanout.bench';
import { formatReport, optionsFromEnv, reportJson, runIngestBench } from './ingest.bench';

const here = path.dirname(fileURLToPath(import.meta.url));

/** Runs `bench/<script>` in a node process of its own; its output is passed through and kept. */
function runBenchProcess(script: string): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(here, script)], {
      cwd: path.resolve(here, '..'),
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let stdout = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
      process.stdout.write(c);
    });
    child.on('error', reject);
    // 'close', not 'exit': the output is complete only once the pipe has closed.
    child.on('close', (code) => resolve({ code, stdout }));
  });
}

/** What one responsiveness run prints as its JSON line (bench/responsive.bench.ts). */
interface ResponsiveRun {
  rows: number;
  readsP95: number;
  readsP99: number;
  healthP99: number;
  readsFailed: number;
  importSeconds: number;
}

const RESPONSIVE_BARS = { readsP95Ms: 50, readsP99Ms: 150, healthP99Ms: 50 } as const;

/**
 * Bar 3 of issue #16 over several runs: each run's figures swing with the machine (the two cores
 * carry the reads, the upload, the pipeline and the COPY at once), so one run says little; this
 * prints every run, the medians and how many runs met all three bars.
 */
function formatResponsiveRuns(runs: ResponsiveRun[], failedRuns: number): string[] {
  const ms = (n: number) => n.toFixed(1);
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
  const passed = (r: ResponsiveRun) =>
    r.readsFailed === 0 && r.readsP95 < RESPONSIVE_BARS.readsP95Ms && r.readsP99 < RESPONSIVE_BARS.readsP99Ms && r.healthP99 < RESPONSIVE_BARS.healthP99Ms;
  const lines = runs.map(
    (r, i) =>
      `run ${i + 1}: reads p95 ${ms(r.readsP95)} ms, p99 ${ms(r.readsP99)} ms, /healthz p99 ${ms(r.healthP99)} ms, ${r.readsFailed} failed, import ${r.importSeconds.toFixed(1)} s: ${passed(r) ? 'PASS' : 'MISS'}`,
  );
  if (runs.length)
    lines.push(
      `medians of ${runs.length}: reads p95 ${ms(med(runs.map((r) => r.readsP95)))} ms, p99 ${ms(med(runs.map((r) => r.readsP99)))} ms, /healthz p99 ${ms(med(runs.map((r) => r.healthP99)))} ms`,
    );
  lines.push(
    `bar: reads p95 < ${RESPONSIVE_BARS.readsP95Ms} ms, p99 < ${RESPONSIVE_BARS.readsP99Ms} ms and /healthz p99 < ${RESPONSIVE_BARS.healthP99Ms} ms during an import of ${(runs[0]?.rows ?? 0).toLocaleString('en-US')} rows: all three met in ${runs.filter(passed).length} of ${runs.length + failedRuns} runs${failedRuns ? ` (${failedRuns} run(s) ended in an error)` : ''}`,
  );
  return lines;
}

async function main(): Promise<void> {
  const started = Date.now();
  if (process.env['BENCH_SKIP_MICRO'] !== '1') {
    console.log('== CSV pipeline micro benchmark (bench/csv-pipeline.bench.ts; in-process, no database) ==');
    const { code } = await runBenchProcess('csv-pipeline.bench.ts');
    if (code !== 0) console.log(`(micro benchmark exited with code ${code}; continuing)`);
    console.log('');
  }
  if (process.env['BENCH_SKIP_INGEST'] !== '1') {
    console.log('== Ingestion through the public API vs psql \\copy (bench/ingest.bench.ts) ==');
    const report = await runIngestBench(optionsFromEnv());
    console.log('');
    for (const line of formatReport(report)) console.log(line);
    console.log(JSON.stringify(reportJson(report)));
    console.log('');
  }
  if (process.env['BENCH_SKIP_BULK'] !== '1') {
    console.log('== Directory bulk upload through the public API vs raw multi-row INSERT (bench/bulk.bench.ts) ==');
    const bulk = await runBulkBench(bulkRowsFromEnv());
    console.log('');
    for (const line of formatBulkReport(bulk)) console.log(line);
    console.log(JSON.stringify(bulkReportJson(bulk)));
    console.log('');
  }
  if (process.env['BENCH_SKIP_RESPONSIVE'] !== '1') {
    const repeat = Number(process.env['BENCH_RESPONSIVE_REPEAT'] ?? 3);
    if (!Number.isInteger(repeat) || repeat < 1) throw new Error('BENCH_RESPONSIVE_REPEAT must be a positive integer');
    console.log(`== Reads during an import, in one service process (bench/responsive.bench.ts, ${repeat} runs) ==`);
    const runs: ResponsiveRun[] = [];
    let failedRuns = 0;
    for (let i = 0; i < repeat; i++) {
      const { code, stdout } = await runBenchProcess('responsive.bench.ts');
      const line = stdout.split('\n').find((l) => l.startsWith('{"bench":"sluice-responsive"'));
      if (code !== 0 || !line) failedRuns++;
      else runs.push(JSON.parse(line) as ResponsiveRun);
    }
    console.log('');
    for (const line of formatResponsiveRuns(runs, failedRuns)) console.log(line);
    console.log(JSON.stringify({ bench: 'sluice-responsive-runs', runs, failedRuns }));
    console.log('');
  }
  if (process.env['BENCH_SKIP_FANOUT'] !== '1') {
    console.log('== graphql-ws fan-out: subscribers on one job (bench/fanout.bench.ts) ==');
    const fanout = await runFanoutBench(fanoutOptionsFromEnv());
    console.log('');
    for (const line of formatFanoutReport(fanout)) console.log(line);
    console.log(JSON.stringify(fanoutReportJson(fanout)));
  }
  console.log(`total bench time ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
    process.exit(1);
  },
);
