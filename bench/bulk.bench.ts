/**
 * Directory bulk upload benchmark: part of `npm run bench` (see bench/run.ts), or on its own with
 * `npx tsx bench/bulk.bench.ts`.
 *
 * On a fresh database and a fresh service process (`node --import tsx src/main.ts`), with the same
 * BENCH_BULK_ROWS-row location file (default 50,000: states down to schools, every parent earlier
 * in the file, a per-row `type` column):
 *   - baseline: raw multi-row INSERTs (1,000 rows per statement, parent ids resolved in this
 *     process) into a table with the same columns, unique code and parent foreign key, from
 *     postgres.js; no rules, no per-row results;
 *   - the public API: bulkUpload(LOCATION) -> job SUCCEEDED, timed from the start of the upload
 *     request to the moment the client sees the terminal state (header check and row count, the
 *     per-row rules, lookups, the writes and the per-row results all included).
 * Prints rows/s of both and the ratio API / baseline, then one JSON line.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BulkUploadDocument, type SluiceClient, UploadStatusDocument } from '../src/sdk/client';
import { waitForJob } from './ingest.bench';
import { openPgServer, type BenchDatabase } from './lib/database';
import { locationCsv, locationRows, type LocationRow } from './lib/location-data';
import { signInBenchAdmin, spawnBenchService } from './lib/service';

const INSERT_BATCH = 1000;

export interface BulkBenchReport {
  rows: number;
  baselineSeconds: number;
  apiSeconds: number;
  /** Upload request alone (store, header check, row count, queue). */
  uploadSeconds: number;
  ratio: number;
  postgres: string;
}

const secondsSince = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e9;
const fmtInt = (n: number) => Math.round(n).toLocaleString('en-US');

async function baseline(db: BenchDatabase, rows: LocationRow[]): Promise<number> {
  await db.sql`create table bench_locations (id text primary key, code text not null unique, name text not null, type text not null, parent_id text references bench_locations (id))`;
  const ids = new Map<string, string>();
  const started = process.hrtime.bigint();
  for (let i = 0; i < rows.length; i += INSERT_BATCH) {
    const batch = rows.slice(i, i + INSERT_BATCH).map((r) => {
      const id = randomUUID();
      ids.set(r.code, id);
      return { id, code: r.code, name: r.name, type: r.type, parent_id: r.parentCode ? ids.get(r.parentCode)! : null };
    });
    await db.sql`insert into bench_locations ${db.sql(batch, 'id', 'code', 'name', 'type', 'parent_id')}`;
  }
  return secondsSince(started);
}

export async function runBulkBench(rowsWanted: number, log: (line: string) => void = (l) => console.log(l)): Promise<BulkBenchReport> {
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-bulk-bench-'));
  const server = await openPgServer(tmp);
  try {
    const db = await server.createDatabase();
    const rows = locationRows(rowsWanted);
    const csv = locationCsv(rows);
    log(`generated ${fmtInt(rows.length)} location rows, ${(csv.length / 1024 / 1024).toFixed(1)} MiB`);
    const { service, url } = await spawnBenchService(db.url, await fs.mkdtemp(path.join(tmp, 'service-')), {
      LOG_LEVEL: process.env['BENCH_LOG_LEVEL'] ?? 'info',
      SLUICE_BULK_MAX_ROWS: String(Math.max(rows.length, 100_000)),
    });
    let admin: SluiceClient | null = null;
    try {
      await service.waitFor(/Sluice is listening/);
      admin = await signInBenchAdmin(url);

      const baselineSeconds = await baseline(db, rows);
      log(`  raw multi-row INSERT: ${baselineSeconds.toFixed(2)} s, ${fmtInt(rows.length / baselineSeconds)} rows/s`);

      const started = process.hrtime.bigint();
      const { bulkUpload } = await admin.upload(
        BulkUploadDocument,
        { kind: 'LOCATION', file: null },
        { file: { body: csv, filename: 'locations.csv', contentType: 'text/csv' } },
      );
      const uploadSeconds = secondsSince(started);
      const { job } = await waitForJob(admin, bulkUpload.status.job.id, 30 * 60_000);
      const apiSeconds = secondsSince(started);
      const { uploadStatus } = await admin.request(UploadStatusDocument, { processId: bulkUpload.processId, first: 1 });
      if (job.state !== 'SUCCEEDED' || uploadStatus.counts.succeeded !== rows.length) {
        throw new Error(`bulk upload ended ${job.state}: ${JSON.stringify(uploadStatus.counts)} ${JSON.stringify(uploadStatus.failureResult.nodes)}`);
      }
      log(`  API bulkUpload: ${apiSeconds.toFixed(2)} s, ${fmtInt(rows.length / apiSeconds)} rows/s (upload request ${uploadSeconds.toFixed(2)} s)`);
      return { rows: rows.length, baselineSeconds, apiSeconds, uploadSeconds, ratio: baselineSeconds / apiSeconds, postgres: server.version };
    } finally {
      await admin?.close();
      await service.stop();
      await db.drop();
    }
  } finally {
    await server.dispose();
    await fs.rm(tmp, { recursive: true, force: true });
  }
}

export function formatBulkReport(r: BulkBenchReport): string[] {
  return [
    `path                   rows     seconds   rows/s    ratio`,
    `raw multi-row INSERT   ${fmtInt(r.rows).padStart(6)}  ${r.baselineSeconds.toFixed(2).padStart(8)}  ${fmtInt(r.rows / r.baselineSeconds).padStart(8)}   1.00`,
    `API bulkUpload         ${fmtInt(r.rows).padStart(6)}  ${r.apiSeconds.toFixed(2).padStart(8)}  ${fmtInt(r.rows / r.apiSeconds).padStart(8)}   ${r.ratio.toFixed(2)}`,
  ];
}

export function bulkReportJson(r: BulkBenchReport): Record<string, unknown> {
  const round = (n: number) => Math.round(n * 1000) / 1000;
  return {
    bench: 'sluice-bulk-upload',
    postgres: r.postgres,
    rows: r.rows,
    baselineSeconds: round(r.baselineSeconds),
    baselineRowsPerSec: Math.round(r.rows / r.baselineSeconds),
    apiSeconds: round(r.apiSeconds),
    apiRowsPerSec: Math.round(r.rows / r.apiSeconds),
    uploadSeconds: round(r.uploadSeconds),
    ratio: round(r.ratio),
  };
}

export function bulkRowsFromEnv(): number {
  const raw = process.env['BENCH_BULK_ROWS'];
  const n = raw ? Number(raw.replace(/_/g, '')) : 50_000;
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`BENCH_BULK_ROWS must be a positive integer, got ${JSON.stringify(raw)}`);
  return n;
}

// On its own: `npx tsx bench/bulk.bench.ts`.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const report = await runBulkBench(bulkRowsFromEnv());
  console.log('');
  for (const l of formatBulkReport(report)) console.log(l);
  console.log(JSON.stringify(bulkReportJson(report)));
  process.exit(0);
}
