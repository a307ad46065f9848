/**
 * Where the ingestion time goes, stage by stage, on the same file and spec as bench/ingest.bench.ts:
 * `npx tsx bench/stages.bench.ts [rows]` (diagnostic; not part of `npm run bench`).
 *
 *   A. pipeline -> /dev/null                    Node: parse + validate + COPY text
 *   B. A + valid-rows CSV -> /dev/null          + the process_input/ output file
 *   C. COPY text (pre-rendered) -> Sluice table PostgreSQL alone: 11 columns, PK (_file_id, _line)
 *   D. COPY text (pre-rendered) -> same, no PK  PostgreSQL alone, without the index
 *      (and with a plain btree or a BRIN index on _file_id instead of the PK)
 *   G. COPY text -> a fresh partition, key built after, attached: what the service does
 *   E. raw CSV COPY -> 10-column table          the baseline of bench/ingest.bench.ts
 *   F. pipeline -> Sluice table (one tx) + valid CSV to disk: what the job does, minus GraphQL/jobs
 */
import { createReadStream, createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { once } from 'node:events';
import { runCsvPipeline } from '../src/ingest/csv-pipeline';
import { compileSpec, pgType } from '../src/modules/specs/spec.compile';
import { ATTENDANCE_COLUMNS, attendanceSpec, RAW_TABLE_COLUMNS_SQL, writeAttendanceCsv } from './lib/attendance-data';
import { openPgServer, type BenchDatabase } from './lib/database';

const ROWS = Number(process.argv[2] ?? 1_000_000);
const FILE_ID = '5f0c6f9e-3b7a-4c1e-9d2a-0123456789ab';

const compiled = compileSpec(attendanceSpec, { name: 'attendance', kind: 'EVENT' });
if (!compiled.ok) throw new Error(JSON.stringify(compiled.problems));
const spec = compiled.spec;
const columns = ['_file_id', '_line', ...spec.columns.map((c) => c.column)];

const nullSink = () => new Writable({ write: (_c, _e, cb) => cb(), writev: (_c, cb) => cb() });

async function time(label: string, fn: () => Promise<void>): Promise<void> {
  const started = process.hrtime.bigint();
  await fn();
  const s = Number(process.hrtime.bigint() - started) / 1e9;
  console.log(
    `${label.padEnd(58)} ${s.toFixed(2).padStart(6)} s  ${Math.round(ROWS / s)
      .toLocaleString('en-US')
      .padStart(10)} rows/s`,
  );
}

async function sluiceTable(db: BenchDatabase, name: string, index: 'pk' | 'none' | 'btree_file' | 'brin_file'): Promise<void> {
  const cols = spec.columns.map((c) => `${c.column} ${pgType(c)}`).join(', ');
  await db.sql.unsafe(
    `create table ${name} (_file_id uuid not null, _line integer not null, _ingested_at timestamptz not null default now(), ${cols}${index === 'pk' ? ', primary key (_file_id, _line)' : ''}) with (autovacuum_enabled = false)`,
  );
  if (index === 'btree_file') await db.sql.unsafe(`create index on ${name} (_file_id)`);
  if (index === 'brin_file') await db.sql.unsafe(`create index on ${name} using brin (_file_id)`);
}

async function main(): Promise<void> {
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-stages-'));
  const server = await openPgServer(tmp);
  try {
    const db = await server.createDatabase();
    const csv = path.join(tmp, 'attendance.csv');
    const copyText = path.join(tmp, 'attendance.copy');
    await writeAttendanceCsv(csv, ROWS);
    console.log(
      `${ROWS.toLocaleString('en-US')} rows, ${((await fs.stat(csv)).size / 2 ** 20).toFixed(1)} MiB, PostgreSQL ${server.version}, node ${process.version}`,
    );
    // Warm-up (JIT, page cache) and the pre-rendered COPY text for C and D.
    const out = createWriteStream(copyText);
    await runCsvPipeline(createReadStream(csv), spec, { copy: out }, { fileId: FILE_ID });
    out.end();
    await once(out, 'finish');

    await time('A. pipeline -> /dev/null', async () => {
      await runCsvPipeline(createReadStream(csv), spec, { copy: nullSink() }, { fileId: FILE_ID });
    });
    await time('B. pipeline + valid CSV -> /dev/null', async () => {
      await runCsvPipeline(createReadStream(csv), spec, { copy: nullSink(), validCsv: nullSink(), errorCsv: nullSink() }, { fileId: FILE_ID });
    });
    const copyInto = async (table: string, file: string, options = '') => {
      await db.sql`checkpoint`.catch(() => undefined);
      await time(`${table}${options ? ` ${options}` : ''}`, async () => {
        const list = table.startsWith('raw') ? ATTENDANCE_COLUMNS.join(', ') : columns.join(', ');
        const w = await db.sql.unsafe(`copy ${table} (${list}) from stdin ${options}`).writable();
        await pipeline(createReadStream(file, { highWaterMark: 256 * 1024 }), w);
      });
    };
    await sluiceTable(db, 'sluice_pk', 'pk');
    await sluiceTable(db, 'sluice_nopk', 'none');
    await sluiceTable(db, 'sluice_btree_file_id', 'btree_file');
    await sluiceTable(db, 'sluice_brin_file_id', 'brin_file');
    await db.sql.unsafe(`create table raw_csv (${RAW_TABLE_COLUMNS_SQL}) with (autovacuum_enabled = false)`);
    console.log('C/D/E: PostgreSQL COPY alone (pre-rendered input, streamed by postgres.js)');
    await copyInto('sluice_pk', copyText);
    await copyInto('sluice_nopk', copyText);
    await copyInto('sluice_btree_file_id', copyText);
    await copyInto('sluice_brin_file_id', copyText);
    await copyInto('raw_csv', csv, 'with (format csv, header true)');
    // G: what Sluice does: a partitioned table (list on _file_id), each file its own partition:
    // COPY into a fresh table without an index (a CHECK on _file_id so ATTACH needs no scan),
    // then build the key in one sort (unique (_line); the CHECK makes it unique on the pair), then
    // attach. All in one transaction. (Text COPY here, like C and D; the service sends binary.)
    const cols = spec.columns.map((c) => `${c.column} ${pgType(c)}`).join(', ');
    await db.sql.unsafe(
      `create table sluice_part (_file_id uuid not null, _line integer not null, _ingested_at timestamptz not null default now(), ${cols}) partition by list (_file_id)`,
    );
    await db.sql`checkpoint`.catch(() => undefined);
    await time('G. partition per file: COPY, then key, then attach', async () => {
      await db.sql.begin(async (tx) => {
        await tx.unsafe(
          `create table sluice_part_f1 (like sluice_part including defaults, constraint f1 check (_file_id = '${FILE_ID}')) with (autovacuum_enabled = false)`,
        );
        const w = await tx.unsafe(`copy sluice_part_f1 (${columns.join(', ')}) from stdin`).writable();
        await pipeline(createReadStream(copyText, { highWaterMark: 256 * 1024 }), w);
        const t1 = process.hrtime.bigint();
        await tx.unsafe(`alter table sluice_part_f1 add unique (_line)`);
        const t2 = process.hrtime.bigint();
        await tx.unsafe(`alter table sluice_part attach partition sluice_part_f1 for values in ('${FILE_ID}')`);
        const t3 = process.hrtime.bigint();
        console.log(`   (key ${(Number(t2 - t1) / 1e9).toFixed(2)} s, attach ${(Number(t3 - t2) / 1e9).toFixed(2)} s)`);
      });
    });

    await db.sql`truncate sluice_pk`;
    await db.sql`checkpoint`.catch(() => undefined);
    const validOut = path.join(tmp, 'valid.csv');
    await time('F. pipeline -> Sluice table (tx) + valid CSV file', async () => {
      const valid = createWriteStream(validOut);
      await db.sql.begin(async (tx) => {
        const copy = await tx.unsafe(`copy sluice_pk (${columns.join(', ')}) from stdin`).writable();
        await runCsvPipeline(createReadStream(csv), spec, { copy, validCsv: valid }, { fileId: FILE_ID });
        copy.end();
        await once(copy, 'finish');
      });
      valid.end();
      await once(valid, 'finish');
    });
    await db.drop();
  } finally {
    await server.dispose();
    await fs.rm(tmp, { recursive: true, force: true });
  }
}

await main();
