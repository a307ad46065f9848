/**
 * The rows a load sends PostgreSQL, and the table it sends them to, for the benchmarks that time
 * (bench/ingest.bench.ts, "PG alone") or count (bench/pg-instructions.bench.ts) PostgreSQL alone
 * taking them, with no Node in between.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { finished } from 'node:stream/promises';
import { runCsvPipeline } from '../../src/ingest/csv-pipeline';
import { quoteLiteral } from '../../src/modules/datasets/dataset-tables.store';
import { compileSpec } from '../../src/modules/specs/spec.compile';
import { attendanceSpec } from './attendance-data';

/** The file's id in the floor runs' table (any UUID: the rows carry none, as in the load). */
export const FLOOR_FILE_ID = '00000000-0000-4000-8000-00000000f100';

/** The bench spec, compiled as the service compiles it. */
export function compiledAttendanceSpec() {
  const compiled = compileSpec(attendanceSpec, { name: 'attendance', kind: 'EVENT' });
  if (!compiled.ok) throw new Error(`the bench spec does not compile: ${JSON.stringify(compiled.problems)}`);
  return compiled.spec;
}

/**
 * The rows of `file` as the load during upload sends them to PostgreSQL (binary COPY: `_line` and
 * the spec's columns, `_file_id` by the partition's default), written to `out` by Sluice's own
 * pipeline, and the column list they fill.
 */
export async function renderLoadRows(file: string, out: string): Promise<string[]> {
  const spec = compiledAttendanceSpec();
  const sink = createWriteStream(out);
  const result = await runCsvPipeline(
    createReadStream(file, { highWaterMark: 256 * 1024 }),
    spec,
    { copy: sink },
    {
      fileId: FLOOR_FILE_ID,
      copyFormat: 'binary',
      copyFileId: false,
      errorLineColumn: true,
    },
  );
  sink.end();
  await finished(sink);
  if (result.invalid > 0) throw new Error(`the bench file has ${result.invalid} invalid rows`);
  return ['_line', ...spec.columns.map((c) => c.column)];
}

/**
 * SQL that makes `name` as the load makes a file's partition of the spec table `parent`, inside
 * the transaction that then COPYs into it: like the parent with its defaults, the CHECK on
 * `_file_id`, and the constant defaults the COPY runs under (see prepareRowTable and loadDefaults
 * in src/modules/datasets/dataset-tables.store.ts).
 */
export function floorTableSql(parent: string, name: string): string[] {
  return [
    `create table ${name} (like "${parent}" including defaults, constraint ${name}_file check (_file_id = ${quoteLiteral(FLOOR_FILE_ID)}));`,
    floorDefaultsSql(name),
  ];
}

/** The constant defaults the load's COPY into `name` runs under (loadDefaults in dataset-tables.store.ts). */
export function floorDefaultsSql(name: string): string {
  return `alter table ${name} alter column _file_id set default ${quoteLiteral(FLOOR_FILE_ID)}::uuid, alter column _ingested_at set default ${quoteLiteral(new Date().toISOString())}::timestamptz;`;
}

/**
 * psql lines that load `file` (renderLoadRows) into `name` as the load does: early writeback
 * where the rows skip WAL (flushWhileLoading), then `COPY … FREEZE` in binary.
 */
export function floorCopySql(name: string, columns: string[], file: string): string[] {
  return [
    "select set_config('backend_flush_after', '256kB', true) where current_setting('wal_level') = 'minimal';",
    `\\copy ${name} (${columns.join(', ')}) from ${quoteLiteral(file)} with (format binary, freeze)`,
  ];
}
