/**
 * Responsiveness while ingesting (issue #16): `npx tsx bench/responsive.bench.ts` for one run;
 * `npm run bench` runs it BENCH_RESPONSIVE_REPEAT times (default 3) and counts the runs that met
 * the bars (not a test, it never fails on a missed bar).
 *
 * One service process in role `all` (API and job workers in one event loop), a fresh database
 * (DATABASE_URL, else an embedded PostgreSQL). While a BENCH_ROWS-row (default 1,000,000) file is
 * uploaded and ingested, authenticated GraphQL reads (`files(first: 10)`, as issue #16 measured;
 * BENCH_READ=job reads `job(id)`, as a client polling its job) are
 * sent at a fixed rate (BENCH_READ_RATE, default 800/s, open loop: a late answer does not delay
 * the next request) and `GET /healthz` at BENCH_HEALTH_RATE (default 20/s). Prints p50/p95/p99/max
 * of each during the import and against the bars: reads p95 < 50 ms, p99 < 150 ms; /healthz
 * p99 < 50 ms. Also prints the same reads with no import running, as the reference.
 * BENCH_PIPELINE_THREADS=false runs the service with SLUICE_PIPELINE_THREADS=false (the CSV
 * pipeline on the API's event loop), for the A/B; BENCH_PIPELINE_THREAD_NICE sets
 * SLUICE_PIPELINE_THREAD_NICE (default: the service's, 10; 0 for the A/B). The reads go out over
 * node:http keep-alive connections with a prebuilt body (the client shares the cores with the
 * service, so it must cost little per request); BENCH_CLIENT=sdk sends them through the SDK.
 * The upload goes from this process (uploadFileStream, as the CLI sends it), so its streaming
 * shares an event loop with the read generator; BENCH_UPLOADER=cli sends it from a separate
 * `sluice upload --no-wait` process instead (bin/sluice.mjs), as another user's upload would
 * come, and this process only reads and waits for the job.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { print } from 'graphql';
import { uploadFileStream } from '../src/cli/upload-stream';
import { FilesDocument, JobDocument, RegisterSpecDocument, SluiceClient, UploadFileDocument } from '../src/sdk/client';
import { attendanceSpec, writeAttendanceCsv } from './lib/attendance-data';
import { processCpuSplit } from './lib/cpu';
import { openPgServer } from './lib/database';
import { repoRoot, signInBenchAdmin, spawnBenchService } from './lib/service';
import { waitForJob } from './ingest.bench';

const envInt = (name: string, fallback: number) => {
  const raw = process.env[name];
  const n = raw ? Number(raw.replace(/_/g, '')) : fallback;
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number`);
  return n;
};

interface Latencies {
  ms: number[];
  /** When each answered request was sent (performance.now()), in the order of `ms`. */
  sentAt: number[];
  failed: number;
}

function pct(sorted: number[], p: number): number {
  if (!sorted.length) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function describe(label: string, l: Latencies, seconds: number): { p95: number; p99: number; line: string } {
  const s = [...l.ms].sort((a, b) => a - b);
  const f = (n: number) => n.toFixed(1);
  const p95 = pct(s, 95);
  const p99 = pct(s, 99);
  return {
    p95,
    p99,
    line: `${label}: ${s.length} answered (${(s.length / seconds).toFixed(0)}/s), ${l.failed} failed; ms p50 ${f(pct(s, 50))}, p95 ${f(p95)}, p99 ${f(p99)}, max ${f(s.at(-1) ?? Number.NaN)}`,
  };
}

/**
 * BENCH_TIMELINE=1: the reads of the import window in slices of `sliceMs`, with the moments
 * `marks` names (ms since `t0`), to see which phase of the import the slow reads fall in.
 */
function printTimeline(l: Latencies, t0: number, sliceMs: number, marks: Record<string, number>): void {
  const slices = new Map<number, number[]>();
  for (let i = 0; i < l.ms.length; i++) {
    const k = Math.floor((l.sentAt[i]! - t0) / sliceMs);
    let v = slices.get(k);
    if (!v) slices.set(k, (v = []));
    v.push(l.ms[i]!);
  }
  for (const k of [...slices.keys()].sort((a, b) => a - b)) {
    const v = slices.get(k)!.sort((a, b) => a - b);
    const from = k * sliceMs;
    const here = Object.entries(marks)
      .filter(([, at]) => at >= from && at < from + sliceMs)
      .map(([name]) => ` <- ${name}`)
      .join('');
    console.log(
      `  ${(from / 1000).toFixed(2).padStart(6)} s  n ${String(v.length).padStart(4)}  p50 ${pct(v, 50).toFixed(1).padStart(6)}  p95 ${pct(v, 95).toFixed(1).padStart(6)}  max ${(v.at(-1) ?? 0).toFixed(1).padStart(6)}${here}`,
    );
  }
}

/** Fires `fn` at `rate` per second (open loop) until `stop()` is called; resolves with every latency once all answered. */
function fixedRate(rate: number, fn: () => Promise<unknown>): { stop: () => Promise<Latencies> } {
  const out: Latencies = { ms: [], sentAt: [], failed: 0 };
  const inflight = new Set<Promise<void>>();
  const started = performance.now();
  let sent = 0;
  let stopped = false;
  // A 5 ms tick sends what is due since the start: the rate holds even when ticks run late.
  const timer = setInterval(() => {
    const due = Math.floor(((performance.now() - started) / 1000) * rate);
    while (!stopped && sent < due) {
      sent++;
      const t0 = performance.now();
      const p = fn().then(
        () => {
          out.ms.push(performance.now() - t0);
          out.sentAt.push(t0);
        },
        () => void out.failed++,
      );
      inflight.add(p);
      void p.finally(() => inflight.delete(p));
    }
  }, 5);
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await Promise.all([...inflight]);
      return out;
    },
  };
}

/**
 * Authenticated GraphQL POSTs over node:http keep-alive connections (at most 64 at once): resolves
 * once a 200 answer without `errors` has been read whole, rejects otherwise or after 5 s.
 */
function lightReader(
  url: string,
  token: string,
  body: () => { query: string; variables: Record<string, unknown> },
): { read: () => Promise<void>; close: () => void } {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const target = new URL('/graphql', url);
  const read = () =>
    new Promise<void>((resolve, reject) => {
      const payload = JSON.stringify(body());
      const req = http.request(
        target,
        {
          method: 'POST',
          agent,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), authorization: `Bearer ${token}` },
          timeout: 5000,
        },
        (res) => {
          const parts: Buffer[] = [];
          res.on('data', (c: Buffer) => parts.push(c));
          res.on('end', () => {
            const text = Buffer.concat(parts).toString('utf8');
            let errors: unknown = 'unreadable answer';
            try {
              errors = (JSON.parse(text) as { errors?: unknown }).errors;
            } catch {}
            if (res.statusCode === 200 && errors === undefined) resolve();
            else reject(new Error(`read answered ${res.statusCode}: ${text.slice(0, 200)}`));
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error('read timed out after 5 s')));
      req.on('error', reject);
      req.end(payload);
    });
  return { read, close: () => agent.destroy() };
}

/** `sluice upload <file> --no-wait --json` in a process of its own (bin/sluice.mjs, the compiled CLI once built): the stored file's job. */
function uploadWithCli(url: string, token: string, file: string): Promise<{ job: { id: string } }> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [path.join(repoRoot, 'bin', 'sluice.mjs'), '--json', '--url', url, 'upload', file, '--program', 'attendance', '--spec', 'attendance', '--no-wait'],
      { env: { PATH: process.env['PATH'] ?? '', HOME: os.tmpdir(), SLUICE_TOKEN: token }, maxBuffer: 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err) return reject(new Error(`sluice upload failed: ${err.message}\n${stderr}`));
        try {
          resolve(JSON.parse(stdout) as { job: { id: string } });
        } catch {
          reject(new Error(`sluice upload printed no JSON: ${stdout.slice(0, 500)}`));
        }
      },
    );
  });
}

async function main(): Promise<void> {
  const rows = envInt('BENCH_ROWS', 1_000_000);
  const readRate = envInt('BENCH_READ_RATE', 800);
  const healthRate = envInt('BENCH_HEALTH_RATE', 20);
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-responsive-'));
  const server = await openPgServer(tmp);
  const db = await server.createDatabase();
  const dataDir = await fs.mkdtemp(path.join(tmp, 'service-'));
  const { service, url } = await spawnBenchService(db.url, dataDir, {
    // Access lines at 800 requests/s would be most of the service's work: warnings only.
    LOG_LEVEL: 'warn',
    SLUICE_PIPELINE_THREADS: process.env['BENCH_PIPELINE_THREADS'] ?? 'true',
  });

  let admin: SluiceClient | null = null;
  try {
    await service.waitFor(/Sluice .* is ready/);
    admin = await signInBenchAdmin(url);
    await admin.request(RegisterSpecDocument, { kind: 'EVENT', spec: attendanceSpec });
    const file = path.join(tmp, 'attendance.csv');
    await writeAttendanceCsv(file, rows);
    console.log(
      `PostgreSQL ${server.version} (${server.embedded ? 'embedded' : 'DATABASE_URL'}), ${os.cpus().length} CPUs, ${rows.toLocaleString('en-US')} rows, reads ${readRate}/s (${process.env['BENCH_CLIENT'] === 'sdk' ? 'SDK client' : 'node:http client'}), /healthz ${healthRate}/s, pipeline threads ${process.env['BENCH_PIPELINE_THREADS'] ?? 'true'}, thread nice ${process.env['BENCH_PIPELINE_THREAD_NICE'] ?? 'default'}`,
    );

    // A job to read while nothing runs (the reference), and the reads themselves.
    const small = path.join(tmp, 'small.csv');
    await writeAttendanceCsv(small, 10);
    const upload = (filePath: string) =>
      uploadFileStream(UploadFileDocument, {
        url,
        token: admin!.options.token!,
        variables: { program: 'attendance', spec: 'attendance', file: null },
        fileVariable: 'file',
        filePath,
      });
    const first = await upload(small);
    await waitForJob(admin, first.uploadFile.job.id, 60_000);
    // Each read gives up after 5 s (counted as failed): an overloaded service must not pile up
    // an unbounded number of requests in flight.
    const client = new SluiceClient({ url, token: admin.options.token!, fetch: (input, init) => fetch(input, { ...init, signal: AbortSignal.timeout(5000) }) });
    let readId = first.uploadFile.job.id;
    const byJob = process.env['BENCH_READ'] === 'job';
    const sdkRead = byJob ? () => client.request(JobDocument, { id: readId }) : () => client.request(FilesDocument, { first: 10 });
    // The load generator shares the two cores with the service: by default it sends each read
    // with node:http on kept-alive connections (a fraction of the SDK's fetch cost per request),
    // so the rate offered is not capped by the client. BENCH_CLIENT=sdk sends through the SDK.
    const light = lightReader(url, admin.options.token!, () =>
      byJob ? { query: print(JobDocument), variables: { id: readId } } : { query: print(FilesDocument), variables: { first: 10 } },
    );
    const read = process.env['BENCH_CLIENT'] === 'sdk' ? sdkRead : light.read;
    const health = async () => {
      const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(5000) });
      await res.arrayBuffer();
      if (!res.ok) throw new Error(`healthz ${res.status}`);
    };

    // Warm-up, not counted: the first requests of a fresh process run cold code (V8 compiles the
    // GraphQL and HTTP paths, caches fill), which would otherwise be the idle reference's tail.
    const warm = fixedRate(Math.min(readRate, 200), read);
    await new Promise((r) => setTimeout(r, 2000));
    await warm.stop();

    let t0 = performance.now();
    const cpu0 = processCpuSplit(service.pid);
    let reads = fixedRate(readRate, read);
    let checks = fixedRate(healthRate, health);
    await new Promise((r) => setTimeout(r, 5000));
    const idle = { reads: await reads.stop(), checks: await checks.stop(), seconds: (performance.now() - t0) / 1000 };
    // The service's CPU per request while idle (all its threads; the /healthz checks are a few %):
    // what the offered rate costs before any import competes for the cores.
    const cpu1 = processCpuSplit(service.pid);
    const idleSplit = cpu0 !== null && cpu1 !== null ? { user: cpu1.user - cpu0.user, system: cpu1.system - cpu0.system } : null;
    const idleCpu = idleSplit === null ? null : idleSplit.user + idleSplit.system;
    const idleCpuPerRequest = idleCpu === null ? null : idleCpu / Math.max(1, idle.reads.ms.length + idle.checks.ms.length);
    console.log(`  idle reference done (${idle.reads.ms.length} reads answered)`);

    t0 = performance.now();
    reads = fixedRate(readRate, read);
    checks = fixedRate(healthRate, health);
    const uploadFile = process.env['BENCH_UPLOADER'] === 'cli' ? await uploadWithCli(url, admin.options.token!, file) : (await upload(file)).uploadFile;
    const uploadedAt = performance.now() - t0;
    readId = uploadFile.job.id;
    console.log(`  uploaded in ${((performance.now() - t0) / 1000).toFixed(1)} s; job ${readId} running`);
    const { job } = await waitForJob(admin, uploadFile.job.id, 30 * 60_000);
    const seenAt = performance.now() - t0;
    const busy = { reads: await reads.stop(), checks: await checks.stop(), seconds: (performance.now() - t0) / 1000 };
    light.close();
    if (job.state !== 'SUCCEEDED') throw new Error(`job ended ${job.state}: ${JSON.stringify(job.error)}`);

    console.log(`idle, ${idle.seconds.toFixed(1)} s:`);
    console.log(`  ${describe('reads', idle.reads, idle.seconds).line}`);
    console.log(`  ${describe('/healthz', idle.checks, idle.seconds).line}`);
    if (idleSplit !== null && idleCpu !== null && idleCpuPerRequest !== null) {
      // The kernel's part is the sockets' (each write wakes the client or a PostgreSQL backend).
      console.log(
        `  service CPU ${idleCpu.toFixed(2)} s (user ${idleSplit.user.toFixed(2)}, kernel ${idleSplit.system.toFixed(2)}): ${(idleCpuPerRequest * 1e6).toFixed(0)} us per request, ${(idleCpu / idle.seconds).toFixed(2)} of a core at this rate`,
      );
    }
    console.log(`during the import (upload -> SUCCEEDED), ${busy.seconds.toFixed(1)} s:`);
    const r = describe('reads', busy.reads, busy.seconds);
    if (process.env['BENCH_TIMELINE'] === '1') {
      console.log('  reads by when they were sent (250 ms slices; the upload ends, the client sees SUCCEEDED):');
      printTimeline(busy.reads, t0, 250, { 'upload answered': uploadedAt, 'job SUCCEEDED seen': seenAt });
    }
    const h = describe('/healthz', busy.checks, busy.seconds);
    console.log(`  ${r.line}`);
    console.log(`  ${h.line}`);
    console.log(
      `bar: reads p95 < 50 ms: ${r.p95 < 50 ? 'PASS' : 'MISS'}; p99 < 150 ms: ${r.p99 < 150 ? 'PASS' : 'MISS'}; /healthz p99 < 50 ms: ${h.p99 < 50 ? 'PASS' : 'MISS'}`,
    );
    console.log(
      JSON.stringify({
        bench: 'sluice-responsive',
        rows,
        pipelineThreads: process.env['BENCH_PIPELINE_THREADS'] !== 'false',
        threadNice: process.env['BENCH_PIPELINE_THREAD_NICE'] ?? 'default',
        readRate,
        healthRate,
        readsP95: r.p95,
        readsP99: r.p99,
        healthP99: h.p99,
        readsFailed: busy.reads.failed,
        idleCpuUsPerRequest: idleCpuPerRequest === null ? null : Math.round(idleCpuPerRequest * 1e6),
        importSeconds: busy.seconds,
      }),
    );
  } catch (err) {
    console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
    console.error(`--- service stderr (tail) ---\n${service.stderr().slice(-3000)}`);
    throw err;
  } finally {
    await admin?.close();
    await service.stop();
    await db.drop().catch(() => undefined);
    await server.dispose().catch(() => undefined);
    await fs.rm(tmp, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
    process.exit(1);
  },
);
