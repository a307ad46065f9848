/**
 * CSV pipeline throughput: `npx tsx bench/csv-pipeline.bench.ts [rows]`.
 * Generates a seeded attendance CSV (default 1,000,000 rows x 8 columns) in a temp folder, then
 * times, each on the same file:
 *   1. reading the bytes alone (the floor),
 *   2. papaparse's core parser alone, driven chunk by chunk as the pipeline does,
 *   3. fast-csv parsing alone (one 'data' event per row),
 *   4. the full pipeline (parse + compiled validation + binary COPY) into a /dev/null sink: the
 *      papaparse path, the byte fast path with the dialect detected (as the service runs), and
 *      the fast path with the dialect given. These run interleaved for BENCH_MICRO_REPEAT rounds
 *      (default 3) and are printed as medians with their range: the range is the machine's noise,
 *      against which a change to the hot loop is judged.
 * The DESIGN.md reference is `psql \copy` at about 630,000 rows/s on this kind of machine.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { parseStream } from 'fast-csv';
import Papa from 'papaparse';
import { runCsvPipeline } from '../src/ingest/csv-pipeline';
import type { CsvDialectOptions } from '../src/ingest/csv-dialect';
import { compileSpec } from '../src/modules/specs/spec.compile';
import { mulberry32 } from './lib/attendance-data';

const ROWS = Number(process.argv[2] ?? 1_000_000);
const SEED = 20_240_601;
const PSQL_COPY_ROWS_PER_S = 630_000;
/** Interleaved rounds of the pipeline cases; medians and the spread (this machine's noise) are printed. */
const REPEAT = Math.max(1, Number(process.env['BENCH_MICRO_REPEAT'] ?? 3));

const attendanceSpec = {
  program: 'attendance',
  input: {
    type: 'object',
    properties: {
      date: { type: 'string', format: 'date', dateFormat: 'DD/MM/YY', shouldNotNull: true, unique: true },
      school_id: { type: 'integer', shouldNotNull: true, unique: true },
      student_id: { type: 'string', shouldNotNull: true, unique: true },
      grade: { type: 'integer', minimum: 1, maximum: 12 },
      section: { type: 'string', enum: ['A', 'B', 'C', 'D'] },
      gender: { type: 'string', enum: ['M', 'F', 'O'] },
      present: { type: 'boolean', shouldNotNull: true },
      marks: { type: 'number', minimum: 0, maximum: 100 },
    },
    required: ['date', 'school_id', 'student_id', 'grade', 'section', 'gender', 'present', 'marks'],
  },
};

async function generate(file: string, rows: number): Promise<void> {
  const random = mulberry32(SEED);
  const out = createWriteStream(file);
  out.write('date,school_id,student_id,grade,section,gender,present,marks\n');
  let batch = '';
  for (let i = 0; i < rows; i++) {
    const day = String(1 + (i % 28)).padStart(2, '0');
    const school = 1_000_000_000 + Math.floor(i / 1000);
    const grade = 1 + Math.floor(random() * 12);
    const section = 'ABCD'[Math.floor(random() * 4)]!;
    const gender = 'MFO'[Math.floor(random() * 3)]!;
    const present = random() < 0.9 ? 'true' : 'false';
    const marks = (random() * 100).toFixed(1);
    batch += `${day}/03/23,${school},stu_${i},${grade},${section},${gender},${present},${marks}\n`;
    if (batch.length > 1 << 20) {
      if (!out.write(batch)) await once(out, 'drain');
      batch = '';
    }
  }
  out.end(batch);
  await once(out, 'finish');
}

async function time(label: string, rows: number, fn: () => Promise<number>, quiet = false): Promise<number> {
  const started = process.hrtime.bigint();
  const seen = await fn();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const rate = rows / seconds;
  if (!quiet)
    console.log(
      `${label.padEnd(44)} ${seconds.toFixed(2).padStart(6)} s  ${Math.round(rate).toLocaleString('en-US').padStart(10)} rows/s  (${seen.toLocaleString('en-US')} rows)`,
    );
  return rate;
}

async function readOnly(file: string): Promise<number> {
  let bytes = 0;
  for await (const chunk of createReadStream(file)) bytes += (chunk as Buffer).length;
  return bytes > 0 ? ROWS : 0;
}

async function papaOnly(file: string): Promise<number> {
  const parser = new Papa.Parser({ delimiter: ',', newline: '\n', quoteChar: '"' });
  const decoder = new TextDecoder();
  let pending = '';
  let rows = 0;
  for await (const chunk of createReadStream(file)) {
    const text = pending + decoder.decode(chunk as Buffer, { stream: true });
    const parsed = parser.parse(text, 0, true) as Papa.ParseResult<string[]>;
    rows += parsed.data.length;
    pending = text.slice(parsed.meta.cursor);
  }
  rows += (parser.parse(pending, 0, false) as Papa.ParseResult<string[]>).data.length;
  return rows - 1; // header
}

function fastCsvOnly(file: string): Promise<number> {
  return new Promise((resolve, reject) => {
    let rows = 0;
    parseStream(createReadStream(file), { headers: false })
      .on('error', reject)
      .on('data', () => rows++)
      .on('end', () => resolve(rows - 1));
  });
}

/**
 * The service's pipeline (byte fast path, binary COPY), or the papaparse path alone (`fastPath: false`),
 * on the attendance spec or `raw` (the wide one).
 * `dialect`: given as an upload's arguments would give it (no detection), else detected as by default.
 */
async function pipelineToDevNull(file: string, fastPath: boolean, dialect?: CsvDialectOptions, raw: unknown = attendanceSpec): Promise<number> {
  const compiled = compileSpec(raw, raw === attendanceSpec ? { name: 'attendance', kind: 'EVENT' } : { name: 'wide', kind: 'DATASET' });
  if (!compiled.ok) throw new Error(JSON.stringify(compiled.problems));
  const sink = createWriteStream('/dev/null');
  const result = await runCsvPipeline(
    createReadStream(file, { highWaterMark: 256 * 1024 }),
    compiled.spec,
    { copy: sink },
    {
      fileId: '5f0c6f9e-3b7a-4c1e-9d2a-0123456789ab',
      copyFormat: 'binary',
      fastPath,
      ...(dialect ? { dialect } : {}),
    },
  );
  sink.end();
  await once(sink, 'finish');
  if (result.invalid > 0) throw new Error(`${result.invalid} rows were invalid; the generator and spec disagree`);
  return result.valid;
}

/** A wide spec (WIDE_COLUMNS columns of four kinds), wider than the generated encoder takes (FUSED_MAX_COLUMNS). */
const WIDE_COLUMNS = 100;
const WIDE_KINDS = [{ type: 'string' }, { type: 'integer', minimum: 0 }, { type: 'date' }, { type: 'string', enum: ['a', 'b', 'c'] }];
const wideSpec = {
  program: 'wide',
  input: { type: 'object', properties: Object.fromEntries(Array.from({ length: WIDE_COLUMNS }, (_, i) => [`c${i}`, WIDE_KINDS[i % WIDE_KINDS.length]])) },
};

async function generateWide(file: string, rows: number): Promise<void> {
  const random = mulberry32(SEED);
  const out = createWriteStream(file);
  const header = Array.from({ length: WIDE_COLUMNS }, (_, i) => `c${i}`).join(',');
  let chunk = `${header}\n`;
  for (let r = 0; r < rows; r++) {
    const cells: string[] = [];
    for (let i = 0; i < WIDE_COLUMNS; i++) {
      const n = Math.floor(random() * 1000);
      cells.push([`s${n}`, String(n), `2024-0${1 + (n % 9)}-1${n % 10}`, 'abc'[n % 3]!][i % 4]!);
    }
    chunk += `${cells.join(',')}\n`;
    if (chunk.length > 1 << 20) {
      if (!out.write(chunk)) await once(out, 'drain');
      chunk = '';
    }
  }
  out.end(chunk);
  await once(out, 'finish');
}

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'sluice-bench-'));
  const file = path.join(dir, 'attendance.csv');
  try {
    await generate(file, ROWS);
    const size = (await stat(file)).size;
    console.log(`${ROWS.toLocaleString('en-US')} rows x 8 columns, ${(size / 2 ** 20).toFixed(1)} MiB, node ${process.version}`);
    await papaOnly(file); // warm-up: JIT and page cache
    const read = await time('read bytes only', ROWS, () => readOnly(file));
    const papa = await time('papaparse core parser, chunked', ROWS, () => papaOnly(file));
    const fast = await time('fast-csv parse only', ROWS, () => fastCsvOnly(file));
    // The pipeline cases run interleaved, round after round, so a slow spell of a shared machine
    // hits every case alike; each is reported as its median with the range (the noise) beside it.
    const cases: Array<{ label: string; run: () => Promise<number>; rates: number[] }> = [
      { label: 'pipeline, papaparse path (validate + binary COPY)', run: () => pipelineToDevNull(file, false), rates: [] },
      { label: 'pipeline, byte fast path (as the service runs)', run: () => pipelineToDevNull(file, true), rates: [] },
      { label: 'pipeline, byte fast path, dialect given', run: () => pipelineToDevNull(file, true, { encoding: 'UTF_8', delimiter: ',' }), rates: [] },
    ];
    for (let round = 0; round < REPEAT; round++) {
      for (const c of cases) c.rates.push(await time(c.label, ROWS, c.run, true));
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    for (const c of cases) {
      const m = median(c.rates);
      const spread = (Math.max(...c.rates) - Math.min(...c.rates)) / m;
      const rate = Math.round(m).toLocaleString('en-US').padStart(10);
      console.log(`${c.label.padEnd(52)} median ${rate} rows/s over ${REPEAT} rounds (range ±${((spread / 2) * 100).toFixed(0)}%)`);
    }
    const slow = median(cases[0]!.rates);
    const pipe = median(cases[1]!.rates);
    const given = median(cases[2]!.rates);
    console.log('');
    console.log(`fast path / papaparse path: ${(pipe / slow).toFixed(2)}x`);
    console.log(`fast path, dialect detected / dialect given: ${(pipe / given).toFixed(2)} (detection costs nothing when this is ~1.00)`);
    console.log(`pipeline / fast-csv parse alone: ${(pipe / fast).toFixed(2)}x`);
    console.log(`papaparse parse / fast-csv parse: ${(papa / fast).toFixed(2)}x`);
    console.log(`pipeline / psql \\copy reference (${PSQL_COPY_ROWS_PER_S.toLocaleString('en-US')} rows/s): ${(pipe / PSQL_COPY_ROWS_PER_S).toFixed(2)}`);
    console.log(`pipeline / read bytes only: ${(pipe / read).toFixed(3)}`);

    // A wide spec: the byte fast path (past FUSED_MAX_COLUMNS, the loop encoder) against the
    // papaparse path on the same file, interleaved. A fused encoder generated for 100 columns ran
    // 5-10x slower than the general loop (V8 optimises a large function late or never).
    const wideRows = Math.max(1000, Math.floor(ROWS / 25));
    const wideFile = path.join(dir, 'wide.csv');
    await generateWide(wideFile, wideRows);
    console.log('');
    console.log(`${wideRows.toLocaleString('en-US')} rows x ${WIDE_COLUMNS} columns, ${((await stat(wideFile)).size / 2 ** 20).toFixed(1)} MiB`);
    const wideCases: Array<{ label: string; run: () => Promise<number>; rates: number[] }> = [
      { label: `wide spec, papaparse path`, run: () => pipelineToDevNull(wideFile, false, undefined, wideSpec), rates: [] },
      { label: `wide spec, byte fast path`, run: () => pipelineToDevNull(wideFile, true, undefined, wideSpec), rates: [] },
    ];
    for (let round = 0; round < REPEAT; round++) for (const c of wideCases) c.rates.push(await time(c.label, wideRows, c.run, true));
    for (const c of wideCases) console.log(`${c.label.padEnd(52)} median ${Math.round(median(c.rates)).toLocaleString('en-US').padStart(10)} rows/s`);
    console.log(`wide spec: fast path / papaparse path: ${(median(wideCases[1]!.rates) / median(wideCases[0]!.rates)).toFixed(2)}x`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
