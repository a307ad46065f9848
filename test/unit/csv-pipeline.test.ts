import { readFileSync } from 'node:fs';
import { Readable, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { COPY_NULL, copyEscape, csvEscape, csvLine, neutraliseFormula } from '../../src/ingest/csv-escape';
import {
  AbortError,
  HeaderError,
  MAX_MESSAGE_LENGTH,
  MixedLineEndingsError,
  NotCsvError,
  RecordTooLargeError,
  runCsvPipeline,
  UnsupportedEncodingError,
  type CsvPipelineCounts,
  type CsvPipelineOptions,
  type InvalidRow,
} from '../../src/ingest/csv-pipeline';
import { KeyIndex } from '../../src/ingest/key-index';
import { boundedDistance, parseColumnMap, resolveColumnMap } from '../../src/ingest/header-match';
import iconv from 'iconv-lite';
import { mulberry32 } from '../../bench/lib/attendance-data';
import { checkHeader, compileCellChecks, compileRowValidator, MAX_PROBLEMS_LISTED, type HeaderMapping } from '../../src/ingest/row-validator';
import { fusedPlan } from '../../src/ingest/fused-encoder';
import { planFastColumns } from '../../src/ingest/fast-path';
import type { CompiledSpec } from '../../src/modules/specs/spec.compile';
import { chunked, compile, specWith } from '../helpers/pipeline';

const cqube = new URL('../fixtures/cqube/', import.meta.url);

function fixture(path: string): Buffer {
  return readFileSync(new URL(path, cqube));
}

/** A Writable that keeps what it receives; `highWaterMark` and `delayMs` exercise backpressure. */
class Collect extends Writable {
  text = '';
  drains = 0;
  constructor(opts: { highWaterMark?: number; delay?: boolean } = {}) {
    super({
      highWaterMark: opts.highWaterMark ?? 16 * 1024,
      decodeStrings: false,
      write: (chunk: string | Buffer, _enc, done) => {
        this.text += chunk.toString();
        if (opts.delay) setImmediate(done);
        else done();
      },
    });
    this.on('drain', () => this.drains++);
  }
  get lines(): string[] {
    return this.text === '' ? [] : this.text.replace(/\n$/, '').split('\n');
  }
}

/** A Writable that keeps the bytes it receives (for binary COPY). */
class BinaryCollect extends Writable {
  private parts: Buffer[] = [];
  constructor() {
    super({ write: (chunk: Buffer, _enc, done) => (this.parts.push(Buffer.from(chunk)), done()) });
  }
  bytes(): Buffer {
    return Buffer.concat(this.parts);
  }
}

interface Run {
  result: Awaited<ReturnType<typeof runCsvPipeline>>;
  copy: Collect;
  valid: Collect;
  errors: Collect;
  invalid: InvalidRow[];
}

async function run(csv: string | Buffer, spec: CompiledSpec, opts: Partial<CsvPipelineOptions> = {}, chunkSize = 0): Promise<Run> {
  const copy = new Collect();
  const valid = new Collect();
  const errors = new Collect();
  const invalid: InvalidRow[] = [];
  const bytes = typeof csv === 'string' ? Buffer.from(csv, 'utf8') : csv;
  const result = await runCsvPipeline(
    chunked(bytes, chunkSize),
    spec,
    { copy, validCsv: valid, errorCsv: errors, onInvalid: (row) => void invalid.push(row) },
    { fileId: 'f1', ...opts },
  );
  return { result, copy, valid, errors, invalid };
}

/** Runs whole, byte by byte and in 7-byte chunks; all three must agree, then returns the whole run. */
async function runEveryWay(csv: string | Buffer, spec: CompiledSpec, opts: Partial<CsvPipelineOptions> = {}): Promise<Run> {
  const whole = await run(csv, spec, opts, 0);
  for (const size of [1, 7]) {
    const split = await run(csv, spec, opts, size);
    expect({ size, result: split.result, copy: split.copy.text, valid: split.valid.text, errors: split.errors.text, invalid: split.invalid }).toEqual({
      size,
      result: whole.result,
      copy: whole.copy.text,
      valid: whole.valid.text,
      errors: whole.errors.text,
      invalid: whole.invalid,
    });
  }
  return whole;
}

const districtSpec = () => compile(JSON.parse(fixture('specs/dimension.district.json').toString()), 'district');

describe('runCsvPipeline on the cQube fixtures', () => {
  it('loads the 5 district rows with their line numbers', async () => {
    const { result, copy, valid, invalid } = await runEveryWay(fixture('data/district-dimension.data.csv'), districtSpec());
    expect(result).toEqual({
      total: 5,
      valid: 5,
      invalid: 0,
      bytes: fixture('data/district-dimension.data.csv').length,
      empty: false,
      header: ['district_id', 'district_name', 'state_id', 'state_name', 'latitude', 'longitude'],
      dialect: { delimiter: ',', encoding: 'UTF_8', bom: false, lineEnding: 'LF' },
    });
    expect(invalid).toEqual([]);
    expect(copy.lines).toEqual([
      'f1\t2\t101\tdistrict_101\t12\tstate_12\t15.643\t75.153',
      'f1\t3\t102\tdistrict_102\t12\tstate_12\t15.81\t75.545',
      'f1\t4\t201\tdistrict_201\t22\tstate_22\t15.711\t75.315',
      'f1\t5\t202\tdistrict_202\t22\tstate_22\t15.963\t75.973',
      'f1\t6\t12\tdistrict_12\t22\tstate_22\t15.963\t75.973',
    ]);
    // The process_input file is the source rows, header included.
    expect(valid.text).toBe(fixture('data/district-dimension.data.csv').toString());
  });

  it('rejects the teacherspresent export, whose header has columns the spec lacks, unless told to ignore them', async () => {
    const spec = compile(JSON.parse(fixture('specs/event.teacherspresent.json').toString()), 'teacherspresent');
    const csv = fixture('data/teacherspresent-event.data.head.csv');
    const error = await run(csv, spec).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(HeaderError);
    expect((error as HeaderError).problems.map((p) => [p.code, p.column])).toEqual([
      ['UNKNOWN_COLUMN', 'schoolcategory_id'],
      ['UNKNOWN_COLUMN', 'grade_state'],
    ]);

    // The spec's unique key (district, block, cluster, school) repeats in this export: every
    // repeat after the first is a DUPLICATE_KEY naming the first line.
    const { result, invalid } = await runEveryWay(csv, spec, { unknownColumns: 'ignore' });
    const firstLineOfKey = new Map<string, number>();
    const expected: Array<{ line: number; first: number }> = [];
    csv
      .toString()
      .trim()
      .split('\n')
      .slice(1)
      .forEach((text, i) => {
        const key = text.split(',').slice(1, 5).join(',');
        const first = firstLineOfKey.get(key);
        if (first === undefined) firstLineOfKey.set(key, i + 2);
        else expected.push({ line: i + 2, first });
      });
    expect(expected.length).toBeGreaterThan(0);
    expect(result).toMatchObject({ total: 50, valid: 50 - expected.length, invalid: expected.length });
    expect(invalid.map((r) => ({ line: r.line, codes: r.errors.map((e) => e.code), message: r.errors[0]!.message }))).toEqual(
      expected.map((e) => ({
        line: e.line,
        codes: ['DUPLICATE_KEY'],
        message: `district_id,block_id,cluster_id,school_id: the same key as line ${e.first}`,
      })),
    );
  });
});

describe('CSV syntax', () => {
  const spec = specWith({ id: { type: 'integer' }, name: { type: 'string' }, score: { type: 'number' } }, ['id', 'name']);

  it('handles BOM, CRLF, quoted commas, escaped quotes and newlines inside quotes, with physical line numbers', async () => {
    const csv =
      '\uFEFFid,name,score\r\n' + // line 1
      '1,"Smith, John",10\r\n' + // line 2
      '2,"He said ""hi""",20\r\n' + // line 3
      '3,"multi\r\nline\r\nname",30\r\n' + // lines 4-6
      '4,plain,abc\r\n' + // line 7: invalid
      '\r\n' + // line 8: blank, skipped
      '5,"tab\there \\ back",\r\n' + // line 9: empty score is NULL
      '6,"last\nLF inside",1.50'; // lines 10-11, no final newline
    const { result, copy, invalid, valid } = await runEveryWay(csv, spec);
    expect(result).toMatchObject({ total: 6, valid: 5, invalid: 1, empty: false, header: ['id', 'name', 'score'] });
    expect(copy.lines).toEqual([
      'f1\t2\t1\tSmith, John\t10',
      'f1\t3\t2\tHe said "hi"\t20',
      'f1\t4\t3\tmulti\\r\\nline\\r\\nname\t30',
      'f1\t9\t5\ttab\\there \\\\ back\t\\N',
      'f1\t10\t6\tlast\\nLF inside\t1.5',
    ]);
    expect(invalid).toEqual([
      {
        line: 7,
        cells: ['4', 'plain', 'abc'],
        raw: '4,plain,abc',
        errors: [{ column: 'score', code: 'NOT_A_NUMBER', message: 'score: "abc" is not a number in plain decimal notation (like -12.5)' }],
      },
    ]);
    // Valid rows are re-written as CSV with the original cell text, quoting where needed.
    expect(valid.text).toBe(
      'id,name,score\n1,"Smith, John",10\n2,"He said ""hi""",20\n3,"multi\r\nline\r\nname",30\n5,tab\there \\ back,\n6,"last\nLF inside",1.50\n',
    );
  });

  it('decides the line ending outside quoted header cells', async () => {
    const { copy, result } = await runEveryWay('"i\nd",name\r\n1,a\r\n', specWith({ 'i\nd': { type: 'integer' }, name: { type: 'string' } }));
    expect(result.header).toEqual(['i\nd', 'name']);
    expect(copy.lines).toEqual(['f1\t3\t1\ta']);
  });

  it('reads CR-only line endings', async () => {
    const { copy } = await runEveryWay('id,name\r1,a\r2,"b\rc"\r3,d', spec);
    expect(copy.lines).toEqual(['f1\t2\t1\ta\t\\N', 'f1\t3\t2\tb\\rc\t\\N', 'f1\t5\t3\td\t\\N']);
  });

  it('keeps multi-byte UTF-8 characters split across chunks intact', async () => {
    const { copy, result } = await runEveryWay('id,name\n1,Ünïcödé 😀\n2,"日本,語"\n', spec);
    expect(copy.lines).toEqual(['f1\t2\t1\tÜnïcödé 😀\t\\N', 'f1\t3\t2\t日本,語\t\\N']);
    expect(result.bytes).toBe(Buffer.byteLength('id,name\n1,Ünïcödé 😀\n2,"日本,語"\n'));
  });

  it('accepts text chunks from a stream with an encoding set', async () => {
    const copy = new Collect();
    const result = await runCsvPipeline(Readable.from(['\uFEFFid,na', 'me\n1,é\n']), spec, { copy }, { fileId: 'f1' });
    expect(result).toMatchObject({ total: 1, valid: 1, bytes: Buffer.byteLength('\uFEFFid,name\n1,é\n') });
    expect(copy.lines).toEqual(['f1\t2\t1\té\t\\N']);
  });

  it('reports unterminated and malformed quotes as MALFORMED_QUOTES', async () => {
    const { invalid, copy } = await runEveryWay('id,name\n1,ok\n2,"open\n3,never closed\n', spec);
    expect(copy.lines).toEqual(['f1\t2\t1\tok\t\\N']);
    expect(invalid.map((r) => [r.line, r.errors.map((e) => e.code)])).toEqual([[3, ['MALFORMED_QUOTES']]]);

    // papaparse keeps looking for a proper closing quote, so `"x"y` swallows the rest of the file.
    const swallowed = await run('id,name\n1,"x"y\n2,b\n', spec);
    expect(swallowed.invalid.map((r) => [r.line, r.errors.map((e) => e.code)])).toEqual([[2, ['MALFORMED_QUOTES']]]);
  });

  it('bounds a runaway record (unterminated quote) by maxRecordLength', async () => {
    const csv = `id,name\n1,"${'x'.repeat(5000)}\n`;
    const error = await run(csv, spec, { maxRecordLength: 1000 }, 100).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(RecordTooLargeError);
    expect(error).toMatchObject({ code: 'RECORD_TOO_LARGE', line: 2, limit: 1000 });
    expect((error as Error).message).toBe('The record starting at line 2 exceeds 1000 characters; check for an unterminated quote');
  });

  it('reports rows with the wrong number of fields, padding them in the error file', async () => {
    const { invalid, errors } = await runEveryWay('id,name,score\n1,a\n2,b,3,extra\n3,c,4\n', spec);
    expect(invalid.map((r) => [r.line, r.errors])).toEqual([
      [2, [{ column: '', code: 'WRONG_FIELD_COUNT', message: 'row has 2 fields; the header has 3' }]],
      [3, [{ column: '', code: 'WRONG_FIELD_COUNT', message: 'row has 4 fields; the header has 3' }]],
    ]);
    expect(errors.text).toBe(
      'id,name,score,error_description\n' + '1,a,,row has 2 fields; the header has 3\n' + '2,b,3,row has 4 fields; the header has 3,extra\n',
    );
  });
});

describe('empty input', () => {
  const spec = specWith({ id: { type: 'integer' } });

  it.each([
    ['0 bytes', ''],
    ['a BOM only', '\uFEFF'],
    ['blank lines only', '\n\r\n\n'],
  ])('returns empty for %s', async (_label, csv) => {
    const { result, copy } = await runEveryWay(csv, spec);
    expect(result).toEqual({
      total: 0,
      valid: 0,
      invalid: 0,
      bytes: Buffer.byteLength(csv),
      empty: true,
      header: [],
      dialect: { delimiter: ',', encoding: 'UTF_8', bom: csv.startsWith('\uFEFF'), lineEnding: 'LF' },
    });
    expect(copy.text).toBe('');
  });

  it.each([
    ['a header only', 'id'],
    ['a header and newline', 'id\r\n'],
    ['a header and blank lines', 'id\n\n\n'],
  ])('returns empty for %s', async (_label, csv) => {
    const { result, copy, valid } = await runEveryWay(csv, spec);
    expect(result).toMatchObject({ total: 0, empty: true, header: ['id'] });
    expect(copy.text).toBe('');
    expect(valid.text).toBe('id\n');
  });

  it('still checks the header of a header-only file', async () => {
    await expect(run('name\n', spec)).rejects.toBeInstanceOf(HeaderError);
  });
});

describe('values', () => {
  it('writes empty numeric cells as NULL, never 0, and requires shouldNotNull values', async () => {
    const spec = compile({
      program: 't',
      input: {
        type: 'object',
        properties: {
          n: { type: 'number' },
          i: { type: 'integer' },
          b: { type: 'boolean' },
          d: { type: 'date' },
          s: { type: 'string' },
          must: { type: 'number', shouldNotNull: true },
        },
        required: ['n', 'i', 'b', 'd', 's', 'must'],
      },
    });
    const { copy, invalid } = await runEveryWay('n,i,b,d,s,must\n,,,,,0\n  , , , , ,0\n0,0,0,2024-01-01,x,\n1,1,1,2024-01-02,y, \n', spec);
    expect(copy.lines).toEqual(['f1\t2\t\\N\t\\N\t\\N\t\\N\t\\N\t0', 'f1\t3\t\\N\t\\N\t\\N\t\\N\t\\N\t0']);
    expect(invalid.map((r) => [r.line, r.errors])).toEqual([
      [4, [{ column: 'must', code: 'REQUIRED_VALUE_MISSING', message: 'must: a value is required' }]],
      [5, [{ column: 'must', code: 'REQUIRED_VALUE_MISSING', message: 'must: a value is required' }]],
    ]);
  });

  it('fills optional columns missing from the header with NULL', async () => {
    const spec = specWith({ id: { type: 'integer' }, note: { type: 'string' }, score: { type: 'number' } }, ['id']);
    const { copy } = await runEveryWay('score,ID\n1.5,7\n', spec);
    expect(copy.lines).toEqual(['f1\t2\t7\t\\N\t1.5']);
  });

  const validator = (properties: Record<string, unknown>) => {
    const spec = specWith(properties);
    const validate = compileRowValidator(spec);
    const mapping: HeaderMapping = { fieldCount: 1, sourceIndex: [0] };
    return (cell: string) => validate([cell], mapping);
  };

  /** Asserts each cell converts to its COPY value, or (for a code) fails with that one code. */
  function expectCells(check: ReturnType<typeof validator>, table: Record<string, string>): void {
    for (const [cell, expected] of Object.entries(table)) {
      const result = check(cell);
      const got = result.ok ? result.values[0] : result.errors.map((e) => e.code).join(',');
      expect(got, `cell ${JSON.stringify(cell)}`).toBe(expected);
    }
  }

  it('accepts only plain decimal numbers and canonicalises them', () => {
    const check = validator({ x: { type: 'number' } });
    expectCells(check, { '15.643': '15.643', '-12.5': '-12.5', '+3': '3', '1.50': '1.5', '.5': '0.5', '7.': '7', ' 42 ': '42', '-0': '0' });
    for (const cell of ['1e400', '1e5', 'Infinity', '-Infinity', 'NaN', '0x10', '1,000', '1 000', '--1', '.', '1.2.3', '١٢']) {
      expectCells(check, { [cell]: 'NOT_A_NUMBER' });
    }
    const huge = check(`1${'0'.repeat(400)}`);
    expect(!huge.ok && huge.errors[0]!.message).toContain('beyond the double precision range');
  });

  it('accepts integers within PostgreSQL bigint only', () => {
    const check = validator({ x: { type: 'integer' } });
    expectCells(check, {
      '9223372036854775807': '9223372036854775807',
      '-9223372036854775808': '-9223372036854775808',
      '007': '7',
      '-000': '0',
      '+00012': '12',
    });
    for (const cell of ['9223372036854775808', '-9223372036854775809', '99999999999999999999999', '12.0', '1e3', 'x', '0x1F']) {
      expectCells(check, { [cell]: 'NOT_AN_INTEGER' });
    }
    const out = check('9223372036854775808');
    expect(!out.ok && out.errors[0]!.message).toBe('x: "9223372036854775808" is outside the bigint range -9223372036854775808 to 9223372036854775807');
  });

  it('reads booleans case-insensitively', () => {
    const check = validator({ x: { type: 'boolean' } });
    expectCells(check, { true: 't', TRUE: 't', Yes: 't', '1': 't', false: 'f', No: 'f', '0': 'f' });
    expect(check('maybe')).toEqual({
      ok: false,
      errors: [{ column: 'x', code: 'NOT_A_BOOLEAN', message: 'x: "maybe" is not one of true, false, 1, 0, yes, no' }],
    });
  });

  it('parses DD/MM/YY dates into ISO and rejects impossible ones', async () => {
    const spec = specWith({ day: { type: 'string', format: 'date', dateFormat: 'DD/MM/YY' }, n: { type: 'integer' } });
    const { copy, invalid } = await runEveryWay('day,n\n28/02/23,1\n31/02/23,2\n29/02/24,3\n2023-02-28,4\n1/3/99,5\n', spec);
    expect(copy.lines).toEqual(['f1\t2\t2023-02-28\t1', 'f1\t4\t2024-02-29\t3', 'f1\t6\t2099-03-01\t5']);
    expect(invalid.map((r) => [r.line, r.errors[0]!.code, r.errors[0]!.message])).toEqual([
      [3, 'INVALID_DATE', 'day: "31/02/23" is not a real date in the format DD/MM/YY'],
      [5, 'INVALID_DATE', 'day: "2023-02-28" is not a real date in the format DD/MM/YY'],
    ]);
  });

  it('checks enum, range, length and pattern, naming the value and the limit', () => {
    const spec = compile({
      program: 't',
      input: {
        type: 'object',
        properties: {
          section: { type: 'string', enum: ['A', 'B'] },
          grade: { type: 'integer', minimum: 1, maximum: 12, enum: [1, 2, 3, 10, 12] },
          marks: { type: 'number', minimum: 0, maximum: 100 },
          code: { type: 'string', minLength: 3, maxLength: 5, pattern: '^[A-Z]+$' },
        },
      },
    });
    const validate = compileRowValidator(spec);
    const mapping: HeaderMapping = { fieldCount: 4, sourceIndex: [0, 1, 2, 3] };
    expect(validate(['A', '12', '100', 'ABC'], mapping)).toEqual({ ok: true, values: ['A', '12', '100', 'ABC'] });
    expect(validate(['C', '0', '-0.5', 'AB'], mapping)).toEqual({
      ok: false,
      errors: [
        { column: 'section', code: 'NOT_IN_ENUM', message: 'section: "C" is not one of "A", "B"' },
        { column: 'grade', code: 'BELOW_MINIMUM', message: 'grade: "0" is below the minimum 1' },
        { column: 'marks', code: 'BELOW_MINIMUM', message: 'marks: "-0.5" is below the minimum 0' },
        { column: 'code', code: 'TOO_SHORT', message: 'code: "AB" has 2 characters; the minimum is 3' },
      ],
    });
    expect(validate(['a', '13', '100.01', 'ABCDEF'], mapping)).toMatchObject({
      ok: false,
      errors: [
        { code: 'NOT_IN_ENUM' },
        { code: 'ABOVE_MAXIMUM', message: 'grade: "13" is above the maximum 12' },
        { code: 'ABOVE_MAXIMUM', message: 'marks: "100.01" is above the maximum 100' },
        { code: 'TOO_LONG', message: 'code: "ABCDEF" has 6 characters; the maximum is 5' },
      ],
    });
    expect(validate(['B', '5', '1', 'abc'], mapping)).toEqual({
      ok: false,
      errors: [
        { column: 'grade', code: 'NOT_IN_ENUM', message: 'grade: "5" is not one of 1, 2, 3, 10, 12' },
        { column: 'code', code: 'PATTERN_MISMATCH', message: 'code: "abc" does not match the pattern ^[A-Z]+$' },
      ],
    });
  });

  it('counts lengths in code points, not UTF-16 units', () => {
    const check = validator({ x: { type: 'string', minLength: 2, maxLength: 2 } });
    expect(check('😀😀').ok).toBe(true);
    expect(check('😀').ok).toBe(false);
    expect(check('😀😀😀').ok).toBe(false);
  });

  it('escapes COPY specials and rejects NUL, which PostgreSQL text cannot hold', async () => {
    const spec = specWith({ s: { type: 'string' } });
    const { copy, invalid } = await runEveryWay('s\n"a\\b\tc"\n"nul\u0000here"\n\\N\n', spec);
    expect(copy.lines).toEqual(['f1\t2\ta\\\\b\\tc', 'f1\t4\t\\\\N']);
    expect(invalid.map((r) => [r.line, r.errors[0]!.code])).toEqual([[3, 'INVALID_CHARACTER']]);
  });

  it('escapes the file id for COPY', async () => {
    const { copy } = await run('s\nx\n', specWith({ s: { type: 'string' } }), { fileId: 'a\tb' });
    expect(copy.lines).toEqual(['a\\tb\t2\tx']);
  });
});

describe('a 1,000-row file with every 10th row bad', () => {
  const spec = specWith({ id: { type: 'integer' }, name: { type: 'string' }, score: { type: 'number', minimum: 0 } });
  const rows = ['id,name,score'];
  for (let i = 1; i <= 1000; i++) rows.push(i % 10 === 0 ? `${i},"bad, row ${i}",-${i}` : `${i},"row ${i}",${i}.5`);
  const csv = `${rows.join('\n')}\n`;

  it('gives exactly 900 valid and 100 invalid rows with their line numbers', async () => {
    const { result, copy, invalid, errors } = await runEveryWay(csv, spec);
    expect(result).toMatchObject({ total: 1000, valid: 900, invalid: 100, empty: false });
    expect(invalid.map((r) => r.line)).toEqual(Array.from({ length: 100 }, (_, k) => (k + 1) * 10 + 1));
    expect(invalid[0]!.errors).toEqual([{ column: 'score', code: 'BELOW_MINIMUM', message: 'score: "-10" is below the minimum 0' }]);
    const copyLines = copy.lines.map((l) => Number(l.split('\t')[1]));
    expect(copyLines).toHaveLength(900);
    expect(copyLines.every((line) => (line - 1) % 10 !== 0)).toBe(true);
    expect(copy.lines[0]).toBe('f1\t2\t1\trow 1\t1.5');
    expect(errors.lines).toHaveLength(101);
    expect(errors.lines[1]).toBe('10,"bad, row 10",-10,"score: ""-10"" is below the minimum 0"');
  });

  it('reports progress at most every N rows', async () => {
    const seen: CsvPipelineCounts[] = [];
    await run(csv, spec, { progressEveryRows: 100, onProgress: (c) => seen.push(c) }, 512);
    expect(seen.length).toBeGreaterThan(3);
    expect(seen.length).toBeLessThanOrEqual(10);
    seen.forEach((c, i) => {
      expect(c.valid + c.invalid).toBe(c.total);
      if (i > 0) expect(c.total - seen[i - 1]!.total).toBeGreaterThanOrEqual(100);
    });
  });

  it('waits for slow sinks to drain instead of buffering everything', async () => {
    const copy = new Collect({ highWaterMark: 64, delay: true });
    const result = await runCsvPipeline(chunked(Buffer.from(csv), 1024), spec, { copy }, { fileId: 'f1' });
    expect(result.valid).toBe(900);
    expect(copy.drains).toBeGreaterThan(5);
    expect(copy.lines).toHaveLength(900);
  });
});

describe('formula neutralisation in the error file', () => {
  it('prefixes cells a spreadsheet would run, leaves plain numbers alone, and never touches the valid file', async () => {
    const spec = specWith({ n: { type: 'number' }, note: { type: 'string' }, k: { type: 'integer' } });
    const csv = [
      'n,note,k',
      '-5,"=HYPERLINK(""http://x"")",1', // valid: kept as is in the valid file
      '-5,@SUM(A1),x',
      '-2+3,+cmd|calc,-7',
      '=1+1,"\tlead tab",1',
      '1,"\rcr",1.5',
    ].join('\n');
    const { valid, errors, copy } = await runEveryWay(csv, spec);
    expect(copy.lines).toEqual(['f1\t2\t-5\t=HYPERLINK("http://x")\t1']);
    expect(valid.text).toBe('n,note,k\n-5,"=HYPERLINK(""http://x"")",1\n');
    expect(errors.text).toBe(
      [
        'n,note,k,error_description',
        `-5,'@SUM(A1),x,"k: ""x"" is not a whole number"`,
        `'-2+3,'+cmd|calc,-7,"n: ""-2+3"" is not a number in plain decimal notation (like -12.5)"`,
        `'=1+1,'\tlead tab,1,"n: ""=1+1"" is not a number in plain decimal notation (like -12.5)"`,
        `1,"'\rcr",1.5,"k: ""1.5"" is not a whole number"`,
      ].join('\n') + '\n',
    );
  });

  it('neutralises the error description too', async () => {
    const spec = specWith({ s: { type: 'string', enum: ['a'] } });
    const { errors } = await run('s\n=cmd\n', spec);
    // The message starts with the column name, so it is safe; the cell is prefixed.
    expect(errors.lines[1]).toBe(`'=cmd,"s: ""=cmd"" is not one of ""a"""`);
  });
});

describe('duplicate keys', () => {
  it('marks later rows with an earlier row’s composite key, naming the first line', async () => {
    const spec = specWith({ a: { type: 'string', unique: true }, b: { type: 'integer', unique: true }, v: { type: 'number' } });
    const csv = 'a,b,v\nx,1,1\nx,2,2\ny,1,3\nx,01,4\n"x",1,5\nbad,zz,6\nbad,zz,7\nx,,8\nx,,9\n';
    const { result, invalid } = await runEveryWay(csv, spec);
    expect(result).toMatchObject({ total: 9, valid: 4, invalid: 5 });
    expect(invalid.map((r) => [r.line, r.errors.map((e) => `${e.code} ${e.column}: ${e.message}`)])).toEqual([
      [5, ['DUPLICATE_KEY a,b: a,b: the same key as line 2']], // 01 and 1 are the same integer
      [6, ['DUPLICATE_KEY a,b: a,b: the same key as line 2']],
      [7, ['NOT_AN_INTEGER b: b: "zz" is not a whole number']], // invalid rows never register a key
      [8, ['NOT_AN_INTEGER b: b: "zz" is not a whole number']],
      [10, ['DUPLICATE_KEY a,b: a,b: the same key as line 9']], // NULLs compare equal (NULLS NOT DISTINCT)
    ]);
  });

  it('keeps parts apart so ("ab","c") and ("a","bc") differ', () => {
    const index = new KeyIndex();
    expect(index.firstLineOf(['ab', 'c'], [0, 1], 2)).toBe(-1);
    expect(index.firstLineOf(['a', 'bc'], [0, 1], 3)).toBe(-1);
    expect(index.firstLineOf(['ab', 'c'], [0, 1], 4)).toBe(2);
    expect(index.size).toBe(2);
  });

  it('stays exact through growth and rehashing', () => {
    const index = new KeyIndex();
    for (let i = 0; i < 50_000; i++) expect(index.firstLineOf([`k${i}`, 'é😀'.repeat(i % 5)], [0, 1], i + 2)).toBe(-1);
    for (let i = 0; i < 50_000; i += 997) expect(index.firstLineOf([`k${i}`, 'é😀'.repeat(i % 5)], [0, 1], 0)).toBe(i + 2);
    expect(index.firstLineOf(['k1', ''], [0, 1], 0)).toBe(-1);
    expect(index.size).toBe(50_001);
  });
});

describe('headers', () => {
  const spec = compile({
    program: 't',
    input: {
      type: 'object',
      properties: {
        'District ID': { type: 'string' },
        'total_no_of_plays(App and Portal)': { type: 'integer' },
        note: { type: 'string' },
      },
      required: ['District ID', 'total_no_of_plays(App and Portal)'],
    },
  });

  it('matches case-insensitively and trimmed, against the spec name or the SQL name, ignoring a BOM', () => {
    expect(checkHeader(spec, ['\uFEFF  district id ', 'TOTAL_NO_OF_PLAYS(APP AND PORTAL)'])).toEqual({
      ok: true,
      mapping: { fieldCount: 2, sourceIndex: [0, 1, -1] },
    });
    expect(checkHeader(spec, ['Note', 'total_no_of_plays_app_and_portal', 'DISTRICT_ID'])).toEqual({
      ok: true,
      mapping: { fieldCount: 3, sourceIndex: [2, 1, 0] },
    });
  });

  it('lists every header problem at once', () => {
    const checked = checkHeader(spec, ['district_id', 'extra', '', 'District ID', 'note']);
    expect(checked).toEqual({
      ok: false,
      problemCount: 4,
      problems: [
        { code: 'UNKNOWN_COLUMN', column: 'extra', message: 'header cell 2 "extra" is not a column of spec "spec"' },
        { code: 'EMPTY_HEADER', column: '', message: 'header cell 3 is empty; every column needs a name' },
        {
          code: 'DUPLICATE_COLUMN',
          column: 'District ID',
          message: 'header cell 4 "District ID" names the column "District ID" again (first at header cell 1)',
        },
        {
          code: 'MISSING_REQUIRED_COLUMN',
          column: 'total_no_of_plays(App and Portal)',
          message: 'required column "total_no_of_plays(App and Portal)" is not in the header',
        },
      ],
    });
  });

  it('requires shouldNotNull columns in the header even when `required` omits them', () => {
    const strict = specWith({ id: { type: 'integer' }, name: { type: 'string', shouldNotNull: true } }, ['id']);
    expect(checkHeader(strict, ['id'])).toEqual({
      ok: false,
      problemCount: 1,
      problems: [
        {
          code: 'MISSING_REQUIRED_COLUMN',
          column: 'name',
          message: 'required column "name" is not in the header, and shouldNotNull needs a value in every row',
        },
      ],
    });
  });

  it('ignores unknown columns when asked, keeping them in the output files', async () => {
    const { copy, valid } = await runEveryWay('extra,District ID,total_no_of_plays(App and Portal)\nq,d1,5\n', spec, { unknownColumns: 'ignore' });
    expect(copy.lines).toEqual(['f1\t2\td1\t5\t\\N']);
    expect(valid.text).toBe('extra,District ID,total_no_of_plays(App and Portal)\nq,d1,5\n');
  });

  it('rejects a bad header with a HeaderError before writing any row', async () => {
    const copy = new Collect();
    const error = await runCsvPipeline(Readable.from([Buffer.from('note,,note\n1,2,3\n')]), spec, { copy }, { fileId: 'f' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HeaderError);
    expect((error as HeaderError).code).toBe('INVALID_HEADER');
    expect((error as HeaderError).problems.map((p) => p.code)).toEqual([
      'EMPTY_HEADER',
      'DUPLICATE_COLUMN',
      'MISSING_REQUIRED_COLUMN',
      'MISSING_REQUIRED_COLUMN',
    ]);
    expect(copy.text).toBe('');
  });

  it('reads a header after leading blank lines and counts them', async () => {
    const { copy } = await runEveryWay('\n\nDistrict ID,total_no_of_plays(App and Portal)\nd,1\n', spec);
    expect(copy.lines).toEqual(['f1\t4\td\t1\t\\N']);
  });
});

describe('abort and sink failures', () => {
  const spec = specWith({ id: { type: 'integer' } });

  /** An endless source: one record per read, so only an abort can end it. */
  function endless(): Readable {
    let i = 0;
    return new Readable({
      read() {
        this.push(i === 0 ? 'id\n' : `${i}\n`);
        i++;
      },
    });
  }

  it('stops at the next chunk, destroys the input and rejects with an AbortError', async () => {
    const controller = new AbortController();
    const input = endless();
    const copy = new Collect();
    const promise = runCsvPipeline(
      input,
      spec,
      { copy },
      {
        fileId: 'f',
        signal: controller.signal,
        progressEveryRows: 1000,
        onProgress: (c) => {
          if (c.total >= 5000) controller.abort(new Error('user cancelled'));
        },
      },
    );
    const error = await promise.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AbortError);
    expect(error).toMatchObject({ name: 'AbortError', code: 'ABORT_ERR' });
    expect(((error as Error).cause as Error).message).toBe('user cancelled');
    expect(input.destroyed).toBe(true);
    expect(copy.lines.length).toBeGreaterThanOrEqual(5000);
    expect(copy.lines.length).toBeLessThan(5100);
  });

  it('aborts while waiting for a stalled input', async () => {
    const controller = new AbortController();
    const stalled = new Readable({ read() {} });
    stalled.push('id\n1\n');
    const promise = runCsvPipeline(stalled, spec, { copy: new Collect() }, { fileId: 'f', signal: controller.signal });
    setTimeout(() => controller.abort(), 20);
    await expect(promise).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('rejects at once when the signal is already aborted', async () => {
    const input = Readable.from([Buffer.from('id\n1\n')]);
    await expect(runCsvPipeline(input, spec, { copy: new Collect() }, { fileId: 'f', signal: AbortSignal.abort() })).rejects.toBeInstanceOf(AbortError);
    expect(input.destroyed).toBe(true);
  });

  it('rejects with the error of a failing sink', async () => {
    const failing = new Writable({
      highWaterMark: 16,
      write(_chunk, _enc, done) {
        setImmediate(() => done(new Error('COPY failed: disk full')));
      },
    });
    const rows = ['id', ...Array.from({ length: 5000 }, (_, i) => String(i))].join('\n');
    await expect(runCsvPipeline(chunked(Buffer.from(rows), 256), spec, { copy: failing }, { fileId: 'f' })).rejects.toThrow('COPY failed: disk full');
  });

  it('awaits an async onInvalid before going on', async () => {
    const order: string[] = [];
    const copy = new Collect();
    await runCsvPipeline(
      Readable.from([Buffer.from('id\nx\n1\ny\n')]),
      spec,
      {
        copy,
        onInvalid: async (row) => {
          await new Promise((r) => setTimeout(r, 5));
          order.push(`invalid ${row.line}`);
        },
      },
      { fileId: 'f' },
    );
    expect(order).toEqual(['invalid 2', 'invalid 4']);
    expect(copy.lines).toEqual(['f\t3\t1']);
  });
});

describe('escape helpers', () => {
  it('csvEscape quotes only when needed', () => {
    expect(csvEscape('plain')).toBe('plain');
    expect(csvEscape('a,b')).toBe('"a,b"');
    expect(csvEscape('say "hi"')).toBe('"say ""hi"""');
    expect(csvEscape('two\nlines')).toBe('"two\nlines"');
    expect(csvEscape('cr\r')).toBe('"cr\r"');
    expect(csvLine(['a', 'b,c', ''])).toBe('a,"b,c",\n');
  });

  it('neutraliseFormula prefixes formula starters except plain numbers', () => {
    for (const cell of ['=1', '+1+1', '-1-1', '@x', '\tx', '\rx', '-', '+']) expect(neutraliseFormula(cell)).toBe(`'${cell}`);
    for (const cell of ['-1', '+1', '-1.5', '-.5', 'x=1', '', "'=1"]) expect(neutraliseFormula(cell)).toBe(cell);
  });

  it('copyEscape escapes backslash, tab, LF and CR', () => {
    expect(copyEscape('a\\b\tc\nd\re')).toBe('a\\\\b\\tc\\nd\\re');
    expect(copyEscape('plain')).toBe('plain');
    expect(COPY_NULL).toBe('\\N');
  });
});

describe('the byte-level fast path', () => {
  // mulberry32: a seeded generator, so a failing case can be replayed.
  const rng = mulberry32;
  const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;

  const properties = {
    id: { type: 'string', shouldNotNull: true, unique: true },
    name: { type: 'string' },
    n: { type: 'integer', minimum: 0, maximum: 1000 },
    x: { type: 'number', enum: [1, 2, 3.5, 40] },
    d: { type: 'date' },
    dm: { type: 'date', dateFormat: 'DD/MM/YY' },
    flag: { type: 'boolean' },
    code: { type: 'string', enum: ['A', 'B'], shouldNotNull: true },
    y: { type: 'number', minimum: 0, maximum: 100 },
    dl: { type: 'date', dateFormat: 'DD/MM/YYYY', unique: true },
  };
  const spec = specWith(properties, ['id', 'code']);
  /** The same columns without the unique key. */
  const unkeyed = specWith(Object.fromEntries(Object.entries(properties).map(([k, v]) => [k, { ...v, unique: undefined }])), ['id', 'code']);
  const cells: Record<string, readonly string[]> = {
    id: ['k1', 'k2', 'k3', 'k4', 'k5', 'k6', 'k7', 'k8', '', ' k9', 'k\\1', 'k\t2', 'é1'],
    name: [
      'plain',
      '',
      ' padded ',
      'trailing ',
      'tab\there',
      'back\\slash',
      'नाम',
      '"quoted, comma"',
      '"two\nlines"',
      'nul\u0000x',
      '=cmd',
      '  ',
      'stray"quote',
      '"esc""aped"',
      'semi;colon',
      'pi|pe',
      'comma,cell',
    ],
    n: ['0', '7', '1000', '1001', '-1', '+5', '007', ' 12 ', '1.5', 'x', '', '123456789012345678'],
    x: ['1', '2', '3.5', '40', '3.50', '04', '5', 'NaN', '', ' 2'],
    d: [
      '2024-02-29',
      '2023-02-29',
      '2024-13-01',
      '2024-1-01',
      ' 2024-01-01',
      '',
      '0000-01-01',
      '2024-04-31',
      '9999-12-31',
      '2024/02/29',
      '2024.02-29',
      '2024-02.29',
      '2o24-02-29',
      '2024-0:-01',
      '2024-01-0:',
    ],
    dm: ['01/02/24', '1/2/24', '31/02/24', '', '01/02/2024'],
    flag: ['true', 'no', 'YES', '0', 'maybe', '', 'TRUE', 'False', '2', 'nO'],
    code: ['A', 'B', 'C', '', ' A', 'a', 'AB'],
    y: ['12.5', '0.25', '100.0', '7', '99.99', '100.01', '00.5', '.5', '5.', '1e5', '-3', '1234567890.12345', '0.1234567890123456', ''],
    dl: ['01/03/2023', '1/3/2023', '29/02/2024', '29/02/2023', '31/12/0001', '01/03/23', '', '1/13/2023'],
  };
  const header = Object.keys(cells);

  /** How a random file is written: its delimiter and encoding (UTF-16 and Windows-1252 get transcoded). */
  interface Dialect {
    delimiter: ',' | ';' | '\t' | '|';
    encoding: 'UTF_8' | 'UTF_16LE' | 'UTF_16BE' | 'WINDOWS_1252';
  }
  const dialects: Dialect[] = [
    { delimiter: ',', encoding: 'UTF_8' },
    { delimiter: ';', encoding: 'UTF_8' },
    { delimiter: '\t', encoding: 'UTF_8' },
    { delimiter: '|', encoding: 'UTF_8' },
    { delimiter: ';', encoding: 'UTF_16LE' },
    { delimiter: ',', encoding: 'UTF_16BE' },
    { delimiter: '\t', encoding: 'WINDOWS_1252' },
  ];

  /** Windows-1252 has no BOM; UTF-16 is always written with one. */
  const hasBom = (seed: number, dialect: Dialect) => dialect.encoding.startsWith('UTF_16') || (seed % 5 === 0 && dialect.encoding === 'UTF_8');

  /** Cells of columns no spec declares (onUnknownColumns IGNORE): every kind of text the paths treat apart. */
  const extraCells = ['7', '', 'x y', '"q,uoted"', '"multi\nline"', 'nul\u0000', 'back\\slash', 'tab\tx', 'ünï', '  ', '=1+1'];
  /** Where extra columns go: first, in the middle and last. */
  const extraAt = [0, 5, header.length + 2];

  /**
   * A random file of the spec's columns. `extras`: unknown columns inserted at `extraAt`;
   * `rename`: header cells written differently (a columnMap or aliases then maps them back);
   * `dialect`: its delimiter and encoding. A Dialect alone may be passed as the options.
   */
  function randomCsv(
    seed: number,
    eol: '\n' | '\r\n',
    options: { extras?: boolean; rename?: Record<string, string>; dialect?: Dialect } | Dialect = {},
  ): Buffer {
    const opts = 'delimiter' in options ? { dialect: options } : options;
    const dialect = opts.dialect ?? dialects[0]!;
    const r = rng(seed);
    const d = dialect.delimiter;
    const withExtras = (row: string[], names?: boolean): string[] => {
      if (!opts.extras) return row;
      const out = [...row];
      extraAt.forEach((at, k) => {
        out.splice(
          Math.min(at, out.length),
          0,
          names ? `${k === 0 ? 'schoolcategory_id' : k === 1 ? 'Grade State' : 'note'}` : r() < 0.8 ? extraCells[Math.floor(r() * 3)]! : pick(r, extraCells),
        );
      });
      return out;
    };
    const named = header.map((h) => opts.rename?.[h] ?? h);
    const lines: string[] = [withExtras(r() < 0.5 ? named : named.map((h) => h.toUpperCase()), true).join(d)];
    for (let i = 0; i < 400; i++) {
      const roll = r();
      if (roll < 0.03) lines.push('');
      else if (roll < 0.05) lines.push('   ');
      else if (roll < 0.08) lines.push(withExtras(header.slice(0, 3).map((h) => pick(r, cells[h]!))).join(d));
      else if (roll < 0.1) lines.push(withExtras([...header.map((h) => pick(r, cells[h]!)), 'extra']).join(d));
      else {
        // Mostly clean rows, so long fast runs alternate with rows the fast path hands over.
        const clean = r() < 0.7;
        lines.push(withExtras(header.map((h) => (clean ? cells[h]![Math.floor(r() * 3)]! : pick(r, cells[h]!)))).join(d));
      }
    }
    let text = lines.join(eol) + (r() < 0.5 ? eol : '');
    if (hasBom(seed, dialect)) text = `\uFEFF${text}`;
    if (dialect.encoding !== 'UTF_8') {
      const bytes = iconv.encode(text, dialect.encoding.toLowerCase().replace('_', '-').replace('_', ''));
      if (seed % 7 === 0) bytes[Math.floor(bytes.length / 2)] = 0x81; // undefined in Windows-1252
      return bytes;
    }
    const bytes = Buffer.from(text, 'utf8');
    // Now and then an invalid UTF-8 byte, which both paths must report as INVALID_UTF8 the same way.
    if (seed % 7 === 0) bytes[Math.floor(bytes.length / 2)] = 0xff;
    return bytes;
  }

  it('gives exactly what the papaparse path gives, on random files in every chunking', async () => {
    for (let seed = 1; seed <= 24; seed++) {
      for (const eol of ['\n', '\r\n'] as const) {
        const csv = randomCsv(seed, eol);
        for (const size of seed % 4 === 0 ? [0, 1, 13, 4096] : [0, 13, 4096]) {
          const fast = await run(csv, spec, { fastPath: true }, size);
          const slow = await run(csv, spec, { fastPath: false }, size);
          const view = (x: Run) => ({ result: x.result, copy: x.copy.text, valid: x.valid.text, errors: x.errors.text, invalid: x.invalid });
          expect({ seed, eol, size, ...view(fast) }).toEqual({ seed, eol, size, ...view(slow) });
          if (seed % 7 === 0) expect(fast.invalid.some((r) => r.errors.some((e) => e.code === 'INVALID_UTF8'))).toBe(true);
          expect(fast.copy.text).not.toMatch(/\ufffd|\udfff/);
        }
      }
    }
  });

  it('gives exactly what the papaparse path gives with unknown columns dropped and headers mapped', async () => {
    const rename = { name: 'Full Name', flag: 'is_flagged' };
    const columnMap = new Map([['full name', spec.columns.findIndex((c) => c.column === 'name')]]);
    const aliased = specWith({ ...properties, flag: { type: 'boolean', aliases: ['IS_FLAGGED'] } }, ['id', 'code']);
    for (let seed = 1; seed <= 10; seed++) {
      for (const eol of ['\n', '\r\n'] as const) {
        const csv = randomCsv(seed, eol, { extras: true, rename });
        for (const size of seed % 4 === 0 ? [0, 1, 13, 4096] : [0, 13, 4096]) {
          const opts = { unknownColumns: 'ignore', columnMap } as const;
          const fast = await run(csv, aliased, { ...opts, fastPath: true }, size);
          const slow = await run(csv, aliased, { ...opts, fastPath: false }, size);
          const view = (x: Run) => ({ result: x.result, copy: x.copy.text, valid: x.valid.text, errors: x.errors.text, invalid: x.invalid });
          expect({ seed, eol, size, ...view(fast) }).toEqual({ seed, eol, size, ...view(slow) });
          expect(fast.result.ignored).toEqual({
            count: 3,
            columns: [
              { name: expect.stringMatching(/^schoolcategory_id$/i), position: 1, suggestion: null },
              { name: expect.stringMatching(/^grade state$/i), position: 6, suggestion: null },
              { name: expect.stringMatching(/^note$/i), position: header.length + 3, suggestion: null },
            ],
          });
          expect(fast.result.valid).toBeGreaterThan(0);
        }
      }
    }
  });

  it('gives exactly what the papaparse path gives for every delimiter and encoding, detected or named', async () => {
    const view = (x: Run) => ({ result: x.result, copy: x.copy.text, valid: x.valid.text, errors: x.errors.text, invalid: x.invalid });
    for (const dialect of dialects) {
      for (let seed = 1; seed <= 6; seed++) {
        const eol = seed % 2 === 0 ? '\n' : '\r\n';
        const csv = randomCsv(seed, eol, dialect);
        // UTF-16 is found by its BOM; Windows-1252 must be named. The delimiter is detected, or named on odd seeds.
        const named = {
          encoding: dialect.encoding === 'WINDOWS_1252' ? dialect.encoding : undefined,
          delimiter: seed % 2 === 1 ? dialect.delimiter : undefined,
        };
        for (const size of [0, 13, 4096]) {
          const fast = await run(csv, spec, { fastPath: true, dialect: named }, size);
          const slow = await run(csv, spec, { fastPath: false, dialect: named }, size);
          expect({ dialect, seed, size, ...view(fast) }).toEqual({ dialect, seed, size, ...view(slow) });
          expect(fast.result.dialect).toEqual({
            delimiter: dialect.delimiter,
            encoding: dialect.encoding,
            bom: hasBom(seed, dialect),
            lineEnding: eol === '\n' ? 'LF' : 'CRLF',
          });
          expect(fast.result.header).toHaveLength(header.length);
          expect(fast.result.valid).toBeGreaterThan(0);
          expect(fast.copy.text).not.toMatch(/\ufffd|\udfff/);
        }
      }
    }
  });

  /** Reads PostgreSQL binary COPY back into COPY text lines, so both formats can be compared. */
  /** The binary COPY as text COPY lines; `withFileId: false` for tuples that start at `_line` (copyFileId: false). */
  function binaryToText(bytes: Buffer, types: string[], withFileId = true): string {
    const lead = withFileId ? ['uuid', 'int4'] : ['int4'];
    expect(bytes.subarray(0, 11).toString('latin1')).toBe('PGCOPY\n\xff\r\n\0');
    let o = 19;
    let text = '';
    for (;;) {
      const count = bytes.readInt16BE(o);
      o += 2;
      if (count === -1) break;
      expect(count).toBe(types.length + lead.length);
      const fields: string[] = [];
      for (let c = 0; c < count; c++) {
        const length = bytes.readInt32BE(o);
        o += 4;
        if (length === -1) {
          fields.push(COPY_NULL);
          continue;
        }
        const v = bytes.subarray(o, o + length);
        o += length;
        const type = c < lead.length ? lead[c] : types[c - lead.length];
        if (type === 'uuid') fields.push(v.toString('hex').replace(/^(.{8})(.{4})(.{4})(.{4})/, '$1-$2-$3-$4-'));
        else if (type === 'int4') fields.push(String(v.readInt32BE(0)));
        else if (type === 'string') fields.push(copyEscape(v.toString('utf8')));
        else if (type === 'integer') fields.push(String(v.readBigInt64BE(0)));
        else if (type === 'number') fields.push(String(v.readDoubleBE(0)));
        else if (type === 'boolean') fields.push(v[0] === 1 ? 't' : 'f');
        else fields.push(new Date(Date.UTC(2000, 0, 1) + v.readInt32BE(0) * 86_400_000).toISOString().slice(0, 10));
      }
      text += `${fields.join('\t')}\n`;
    }
    expect(o).toBe(bytes.length);
    return text;
  }

  /** The ways each binary case runs: [fastPath, chunk size] (0: whole). */
  const BINARY_WAYS = [
    [true, 0],
    [true, 13],
    [false, 0],
  ] as const;

  it('writes binary COPY that says exactly what the text format says, fast path or not', async () => {
    const fileId = '5f0c6f9e-3b7a-4c1e-9d2a-0123456789ab';
    const types = spec.columns.map((c) => c.type);
    for (let seed = 1; seed <= 20; seed++) {
      const csv = randomCsv(seed, seed % 2 === 0 ? '\n' : '\r\n');
      const reference = await run(csv, spec, { fastPath: false, fileId }, 0);
      for (const [fastPath, size] of BINARY_WAYS) {
        const copy = new BinaryCollect();
        await runCsvPipeline(chunked(csv, size), spec, { copy }, { fileId, fastPath, copyFormat: 'binary' });
        expect({ seed, fastPath, size, text: binaryToText(copy.bytes(), types) }).toEqual({ seed, fastPath, size, text: reference.copy.text });
      }
    }
  });

  it('leaves the file id out of every tuple with copyFileId false, fast path or not, binary or text', async () => {
    const fileId = '5f0c6f9e-3b7a-4c1e-9d2a-0123456789ab';
    const types = spec.columns.map((c) => c.type);
    for (let seed = 1; seed <= 10; seed++) {
      const csv = randomCsv(seed, seed % 2 === 0 ? '\n' : '\r\n');
      const reference = await run(csv, spec, { fastPath: false, fileId }, 0);
      const withoutId = reference.copy.lines.map((l) => `${l.slice(fileId.length + 1)}\n`).join('');
      expect(reference.copy.lines.every((l) => l.startsWith(`${fileId}\t`))).toBe(true);
      for (const [fastPath, size] of BINARY_WAYS) {
        const copy = new BinaryCollect();
        const result = await runCsvPipeline(chunked(csv, size), spec, { copy }, { fileId, fastPath, copyFormat: 'binary', copyFileId: false });
        expect(result.valid).toBe(reference.result.valid);
        expect({ seed, fastPath, size, text: binaryToText(copy.bytes(), types, false) }).toEqual({ seed, fastPath, size, text: withoutId });
        const text = await run(csv, spec, { fastPath, fileId, copyFileId: false }, size);
        expect({ seed, fastPath, size, text: text.copy.text }).toEqual({ seed, fastPath, size, text: withoutId });
      }
    }
  });

  it('gives exactly the binary COPY of the papaparse path with the fused encoder, keyed or not, in every delimiter', async () => {
    const fileId = '5f0c6f9e-3b7a-4c1e-9d2a-0123456789ab';
    for (const [name, s] of [
      ['keyed', spec],
      ['unkeyed', unkeyed],
    ] as const) {
      // The specs these cases run take the fused encoder (binary COPY, the file's fields in order).
      const header0 = checkHeader(s, header);
      if (!header0.ok) expect.fail('the header does not match');
      expect(fusedPlan(planFastColumns(s, header0.mapping, compileCellChecks(s)), header.length, true)).toBe(true);
      for (const dialect of dialects.filter((d) => d.encoding === 'UTF_8')) {
        for (let seed = 1; seed <= 8; seed++) {
          for (const eol of ['\n', '\r\n'] as const) {
            const csv = randomCsv(seed, eol, dialect);
            const outcomes = [];
            for (const [fastPath, size] of [
              [false, 0],
              [true, 0],
              [true, 13],
              [true, 4096],
            ] as const) {
              const copy = new BinaryCollect();
              const valid = new Collect();
              const errors = new Collect();
              const invalid: InvalidRow[] = [];
              const result = await runCsvPipeline(
                chunked(csv, size),
                s,
                { copy, validCsv: valid, errorCsv: errors, onInvalid: (row) => void invalid.push(row) },
                { fileId, fastPath, copyFormat: 'binary', copyFileId: seed % 2 === 0 },
              );
              outcomes.push({ result, copy: copy.bytes().toString('hex'), valid: valid.text, errors: errors.text, invalid });
            }
            for (const [k, outcome] of outcomes.entries())
              expect({ name, dialect, seed, eol, k, ...outcome }).toEqual({ name, dialect, seed, eol, k, ...outcomes[0] });
            expect(outcomes[0]!.result.valid).toBeGreaterThan(0);
          }
        }
      }
    }
  });

  /** What `csv` loads into in binary COPY (without the file id), each way: [fastPath, chunk size]. */
  async function binaryOutcomes(csv: Buffer, s: CompiledSpec, ways: ReadonlyArray<readonly [boolean, number]>) {
    const outcomes = [];
    for (const [fastPath, size] of ways) {
      const copy = new BinaryCollect();
      const invalid: InvalidRow[] = [];
      const result = await runCsvPipeline(
        chunked(csv, size),
        s,
        { copy, onInvalid: (r) => void invalid.push(r) },
        { fileId: '5f0c6f9e-3b7a-4c1e-9d2a-0123456789ab', fastPath, copyFormat: 'binary', copyFileId: false },
      );
      outcomes.push({ result, copy: copy.bytes().toString('hex'), invalid });
    }
    return outcomes;
  }

  /**
   * Rows of `hdr` in which every value of every column stands alone among clean cells (each
   * column's first value), each such row twice; `idColumn` gets a value of its own in every row.
   */
  function oneOddCell(hdr: readonly string[], values: Record<string, readonly string[]>, idColumn: string | null): string[] {
    const lines: string[] = [];
    for (const column of hdr)
      for (const value of values[column]!)
        for (let twice = 0; twice < 2; twice++) {
          const row = hdr.map((h) => (h === idColumn ? `r${lines.length}` : values[h]![0]!));
          row[hdr.indexOf(column)] = value;
          lines.push(row.join(','));
        }
    return lines;
  }

  it('gives the binary COPY of the papaparse path with the fused encoder for every cell value in an otherwise clean row', async () => {
    // Random rows rarely hold one odd cell among clean ones, the only rows where a check the
    // fused encoder skips would show: here every value of every column stands alone in a row
    // whose other cells are clean, each row twice (with the key's line apart), in both line endings.
    const fileId = '5f0c6f9e-3b7a-4c1e-9d2a-0123456789ab';
    const lines = oneOddCell(header, cells, 'id');
    for (const [name, s] of [
      ['keyed', spec],
      ['unkeyed', unkeyed],
    ] as const)
      for (const eol of ['\n', '\r\n'] as const) {
        const csv = Buffer.from(`${header.join(',')}${eol}${lines.join(eol)}${eol}`);
        const outcomes = await binaryOutcomes(csv, s, [
          [false, 0],
          [true, 13],
          [true, 512],
          [true, 4096],
        ]);
        expect(outcomes[0]!.result.valid).toBeGreaterThan(lines.length / 4);
        for (const [k, outcome] of outcomes.entries()) expect({ name, eol, k, ...outcome }).toEqual({ name, eol, k, ...outcomes[0] });
      }
    // Integer ranges and an integer enum (the spec above has neither), one odd cell per row.
    const ranged = specWith({ a: { type: 'integer', enum: [1, 5, 10] }, b: { type: 'integer', minimum: 5, maximum: 50 }, t: { type: 'string' } }, []);
    const values: Record<string, string[]> = { a: ['5', '1', '10', '2', '0', '11', ''], b: ['5', '4', '50', '51', '0', '', '05'] };
    // Past the first KiB (sniffed, and read the papaparse way) and in 512-byte chunks, so most
    // lines reach the fast path whole.
    const rangedLines = ['a,b,t'];
    const pad = 'p'.repeat(40);
    for (let round = 0; round < 6; round++)
      for (const column of ['a', 'b']) for (const value of values[column]!) rangedLines.push(column === 'a' ? `${value},5,${pad}` : `5,${value},${pad}`);
    const rangedCsv = Buffer.from(`${rangedLines.join('\n')}\n`);
    const rangedOutcomes = [];
    for (const fastPath of [false, true]) {
      const copy = new BinaryCollect();
      const result = await runCsvPipeline(
        chunked(rangedCsv, fastPath ? 512 : 0),
        ranged,
        { copy },
        { fileId, fastPath, copyFormat: 'binary', copyFileId: false },
      );
      rangedOutcomes.push({ result, copy: copy.bytes().toString('hex') });
    }
    expect(rangedOutcomes[0]!.result.valid).toBe(6 * 8);
    expect(rangedOutcomes[1]).toEqual(rangedOutcomes[0]);
  });

  it('gives the binary COPY of the papaparse path with the loop encoder of a spec wider than the generated one takes', async () => {
    // 50 columns: the test spec's ten five times over (no key), past FUSED_MAX_COLUMNS, so the
    // fused encoder is the loop over the columns' plans; each row holds one odd cell, the others clean.
    const copies = 5;
    const wideProps: Record<string, unknown> = {};
    const wideCells: Record<string, readonly string[]> = {};
    for (let r = 0; r < copies; r++)
      for (const [k, v] of Object.entries(properties)) {
        wideProps[`${k}_${r}`] = { ...v, unique: undefined };
        wideCells[`${k}_${r}`] = cells[k]!;
      }
    const wide = specWith(
      wideProps,
      Object.keys(wideProps).filter((k) => k.startsWith('id_') || k.startsWith('code_')),
    );
    const wideHeader = Object.keys(wideProps);
    const head = checkHeader(wide, wideHeader);
    if (!head.ok) expect.fail('the header does not match');
    expect(fusedPlan(planFastColumns(wide, head.mapping, compileCellChecks(wide)), wideHeader.length, true)).toBe(true);
    const lines = oneOddCell(wideHeader, wideCells, null);
    for (const eol of ['\n', '\r\n'] as const) {
      const csv = Buffer.from(`${wideHeader.join(',')}${eol}${lines.join(eol)}${eol}`);
      const outcomes = await binaryOutcomes(csv, wide, [
        [false, 0],
        [true, 4096],
      ]);
      expect(outcomes[0]!.result.valid).toBeGreaterThan(lines.length / 4);
      expect({ eol, ...outcomes[1] }).toEqual({ eol, ...outcomes[0] });
    }
  });

  it('gives the binary COPY of the papaparse path for lines too long for the fused encoder, after rows that grew the COPY most', async () => {
    const wide = specWith({ s: { type: 'string' }, x: { type: 'number' } }, []);
    const fileId = '5f0c6f9e-3b7a-4c1e-9d2a-0123456789ab';
    // Short rows (a 4-byte line is a 27-byte tuple) use up the COPY room a region starts with
    // (twice its bytes); then a line far longer than what the fused encoder takes, ending in a
    // float cell, where the room left is less than the line. The first 2 KiB come alone, so the
    // header is read before the region of the rest (the fast path's) starts.
    for (const shortRows of [18_000, 20_000, 22_000]) {
      const rows = ['s,x'];
      for (let i = 0; i < shortRows; i++) rows.push(`a,${i % 10}`);
      rows.push(`${'t'.repeat(70_000)},1.5`);
      for (let i = 0; i < 100; i++) rows.push(`b,${i}.25`);
      const csv = Buffer.from(`${rows.join('\n')}\n`);
      const outcomes = [];
      for (const fastPath of [false, true]) {
        const copy = new BinaryCollect();
        const input = Readable.from([csv.subarray(0, 2048), csv.subarray(2048)]);
        const result = await runCsvPipeline(input, wide, { copy }, { fileId, fastPath, copyFormat: 'binary', copyFileId: false });
        outcomes.push({ shortRows, result, copy: copy.bytes().toString('hex') });
      }
      expect(outcomes[0]!.result.valid).toBe(shortRows + 101);
      expect(outcomes[1]).toEqual(outcomes[0]);
    }
  });

  it('quotes a cell holding a comma in the valid-rows file of a file with another delimiter, on the fast path', async () => {
    const semi = specWith({ name: { type: 'string' }, n: { type: 'integer' } }, []);
    const fileId = '5f0c6f9e-3b7a-4c1e-9d2a-0123456789ab';
    // The header and its region come first (the fast path starts after it), then the rows it takes.
    const head = Buffer.from(`name;n\n${Array.from({ length: 200 }, (_, i) => `plain;${i}`).join('\n')}\n`);
    const rest = Buffer.from('co,mma;1\nx,y,z;2\nplain;3\n');
    for (const copyFormat of ['binary', 'text'] as const) {
      const outcomes = [];
      for (const fastPath of [false, true]) {
        const valid = new Collect();
        const copy = new BinaryCollect();
        const result = await runCsvPipeline(Readable.from([head, rest]), semi, { copy, validCsv: valid }, { fileId, fastPath, copyFormat });
        outcomes.push({ result, valid: valid.text, copy: copy.bytes().toString('hex') });
      }
      expect(outcomes[1]).toEqual(outcomes[0]);
      expect(outcomes[1]!.valid.split('\n').slice(-4)).toEqual(['"co,mma",1', '"x,y,z",2', 'plain,3', '']);
    }
  });

  it('binary COPY keeps big integers, old dates and escaped text exact', async () => {
    const fileId = '5f0c6f9e-3b7a-4c1e-9d2a-0123456789ab';
    const wide = specWith({ i: { type: 'integer' }, x: { type: 'number' }, d: { type: 'date' }, s: { type: 'string' }, b: { type: 'boolean' } }, []);
    const csv =
      'i,x,d,s,b\n-9223372036854775808,-0.5,0001-01-01,a\\b\tc,no\n9223372036854775807,1e3,9999-12-31,x,yes\n123456789012345,12345.678,2000-01-01,"multi\nline",1\n';
    const text = await run(csv, wide, { fileId, fastPath: false }, 0);
    const copy = new BinaryCollect();
    await runCsvPipeline(chunked(Buffer.from(csv), 0), wide, { copy }, { fileId, copyFormat: 'binary' });
    expect(
      binaryToText(
        copy.bytes(),
        wide.columns.map((c) => c.type),
      ),
    ).toBe(text.copy.text);
    expect(text.copy.lines[0]).toBe(`${fileId}\t2\t-9223372036854775808\t-0.5\t0001-01-01\ta\\\\b\\tc\tf`);
  });

  it('keeps valid rows byte for byte in the valid-rows file and writes COPY text straight from the bytes', async () => {
    const csv = 'id,name,n,x,d,dm,flag,code\nk1,नाम,7,40,2024-02-29,1/2/24,yes,A\nk2,,0,,,,,B\n';
    const { copy, valid, result } = await runEveryWay(csv, spec);
    expect(result.valid).toBe(2);
    expect(valid.text).toBe(csv);
    // y and dl are not in this file: NULL.
    expect(copy.lines).toEqual(['f1\t2\tk1\tनाम\t7\t40\t2024-02-29\t2024-02-01\tt\tA\t\\N\t\\N', 'f1\t3\tk2\t\\N\t0\t\\N\t\\N\t\\N\t\\N\tB\t\\N\t\\N']);
  });
});

describe('bad bytes', () => {
  const spec = specWith({ id: { type: 'integer' }, name: { type: 'string' } }, ['id']);

  /** Runs both paths in every chunking, requires they agree, and returns the whole run (or the error). */
  async function both(csv: Buffer): Promise<Run | Error> {
    const outcomes: unknown[] = [];
    for (const fastPath of [true, false]) {
      for (const size of [0, 1, 7, 300]) {
        const r = await run(csv, spec, { fastPath }, size).catch((e: unknown) => e as Error);
        outcomes.push(
          r instanceof Error ? { error: r.name, message: r.message } : { result: r.result, copy: r.copy.text, errors: r.errors.text, invalid: r.invalid },
        );
      }
    }
    for (const o of outcomes) expect(o).toEqual(outcomes[0]);
    return run(csv, spec, {}, 0).catch((e: unknown) => e as Error);
  }

  it.each([
    ['0x93 (Windows-1252 quote)', Buffer.from([0x93])],
    ['C3 28 (a lead byte without its continuation)', Buffer.from([0xc3, 0x28])],
    ['C0 AF (overlong /)', Buffer.from([0xc0, 0xaf])],
    ['ED A0 80 (a surrogate)', Buffer.from([0xed, 0xa0, 0x80])],
    ['F4 90 80 80 (beyond U+10FFFF)', Buffer.from([0xf4, 0x90, 0x80, 0x80])],
  ])('reports invalid UTF-8 %s as INVALID_UTF8 with line and column, never stored', async (_label, bad) => {
    const pad = 'x'.repeat(2000); // past the sniffed head, so the row checks see it
    for (const quoted of [false, true]) {
      const q = quoted ? '"' : '';
      const csv = Buffer.concat([Buffer.from(`id,name\n1,${pad}\n2,${q}ab`), bad, Buffer.from(`cd${q}\n3,ok\n`)]);
      const r = (await both(csv)) as Run;
      expect(r.result).toMatchObject({ total: 3, valid: 2, invalid: 1 });
      expect(r.copy.lines.map((l) => l.split('\t')[1])).toEqual(['2', '4']);
      expect(r.invalid).toHaveLength(1);
      expect(r.invalid[0]).toMatchObject({
        line: 3,
        errors: [
          { column: 'name', code: 'INVALID_UTF8', message: 'name: cell 2 holds bytes that are not valid UTF-8 (shown as U+FFFD); save the file as UTF-8' },
        ],
      });
      expect(r.invalid[0]!.cells[1]).toMatch(/^ab\ufffd+(\(|\/)?cd$/);
      expect(r.copy.text).not.toMatch(/\ufffd|\udfff/);
    }
  });

  it('keeps a real U+FFFD in the file as text', async () => {
    const r = (await both(Buffer.from('id,name\n1,a\ufffdb\n'))) as Run;
    expect(r.copy.lines).toEqual(['f1\t2\t1\ta\ufffdb']);
  });

  it('refuses a header with invalid UTF-8 or a NUL, naming the cell, with the text made printable', async () => {
    const bad = (await both(Buffer.concat([Buffer.from('id,na'), Buffer.from([0x93]), Buffer.from('me\n1,a\n')]))) as HeaderError;
    expect(bad).toBeInstanceOf(HeaderError);
    expect(bad.problems).toEqual([
      {
        code: 'INVALID_UTF8',
        column: 'na\ufffdme',
        message: 'header cell 2 "na\ufffdme" holds bytes that are not valid UTF-8 (shown as U+FFFD); save the file as UTF-8',
      },
    ]);
    const nul = (await both(Buffer.from('id,na\u0000me\n1,a\n'))) as HeaderError;
    expect(nul.problems).toEqual([{ code: 'INVALID_CHARACTER', column: 'na\ufffdme', message: 'header cell 2 "na\ufffdme" contains a NUL character' }]);
    expect(JSON.stringify(nul.problems) + nul.message).not.toMatch(/\u0000|\\u0000/);
  });

  it('caps the header problem list and the message, and counts every problem', async () => {
    const header = Array.from({ length: 120_000 }, (_, i) => `column_${i}_${'y'.repeat(20)}`).join(',');
    const error = (await run(`${header}\n1\n`, spec).catch((e: unknown) => e)) as HeaderError;
    expect(error).toBeInstanceOf(HeaderError);
    expect(error.problemCount).toBe(120_001); // every cell is unknown, and id is missing
    expect(error.problems).toHaveLength(MAX_PROBLEMS_LISTED);
    expect(error.message.length).toBeLessThanOrEqual(MAX_MESSAGE_LENGTH);
    expect(error.message).toContain('(120001 problems; the first 20 are listed)');
  });

  it.each([
    ['a ZIP (xlsx)', Buffer.from('504b0304140000000800', 'hex'), NotCsvError, 'The file is not a CSV: it looks like a ZIP archive (an .xlsx or .zip file)'],
    ['gzip', Buffer.from('1f8b0800000000000003', 'hex'), NotCsvError, 'The file is not a CSV: it looks like a gzip file'],
    ['ELF', Buffer.concat([Buffer.from('7f454c46020101', 'hex'), Buffer.alloc(60)]), NotCsvError, 'The file is not a CSV: it looks like an ELF executable'],
    [
      'random binary',
      Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919 + 13) % 256)),
      NotCsvError,
      /binary data \(\d+ control bytes in the first 1024\)/,
    ],
    ['UTF-16LE without BOM', Buffer.from('id,name\n1,a\n', 'utf16le'), UnsupportedEncodingError, /UTF-16LE \(no BOM\)/],
    ['UTF-32LE', Buffer.from('fffe0000690000006400', 'hex'), UnsupportedEncodingError, /UTF-32LE/],
  ])('refuses %s before reading any row', async (_label, bytes, type, message) => {
    const error = await both(bytes);
    expect(error).toBeInstanceOf(type);
    if (typeof message === 'string') expect((error as Error).message).toBe(message);
    else expect((error as Error).message).toMatch(message);
  });

  it('leaves a single NUL in a data cell to the row checks', async () => {
    const r = (await both(Buffer.from('id,name\n1,a\u0000b\n2,c\n'))) as Run;
    expect(r.invalid.map((x) => [x.line, x.errors[0]!.code])).toEqual([[2, 'INVALID_CHARACTER']]);
  });
});

describe('mixed line endings', () => {
  const spec = specWith({ id: { type: 'integer' }, name: { type: 'string' } }, ['id']);

  it.each([
    ['LF, then CR-only', 'id,name\n1,a\n2,b\r3,c\r4,d\n', 3, 'LF'],
    ['CRLF, then CR-only', 'id,name\r\n1,a\r\n2,b\r3,c\r\n', 3, 'CRLF'],
    ['CR-only, then LF', 'id,name\r1,a\r2,b\n3,c\n', 3, 'CR'],
  ])('refuses %s with MIXED_LINE_ENDINGS in both paths', async (_label, csv, line, kind) => {
    for (const fastPath of [true, false]) {
      for (const size of [0, 1, 5]) {
        const error = await run(csv, spec, { fastPath }, size).catch((e: unknown) => e);
        expect(error, `fastPath ${fastPath}, chunks of ${size}`).toBeInstanceOf(MixedLineEndingsError);
        expect(error).toMatchObject({ code: 'MIXED_LINE_ENDINGS', line, detected: kind });
      }
    }
  });

  it('still reads line breaks of another kind inside quotes, LF inside CRLF files and a CRLF line in an LF file', async () => {
    const { copy } = await runEveryWay('id,name\n1,"a\rb"\n2,c\r\n3,d\n', spec);
    expect(copy.lines).toEqual(['f1\t2\t1\ta\\rb', 'f1\t3\t2\tc\\r', 'f1\t4\t3\td']);
    const cr = await runEveryWay('id,name\r1,"a\nb"\r2,c', spec);
    expect(cr.copy.lines).toEqual(['f1\t2\t1\ta\\nb', 'f1\t3\t2\tc']);
  });
});

describe('header policy and header mapping', () => {
  const district = districtSpec();
  const plainCsv = fixture('data/district-dimension.data.csv');
  const extraCsv = fixture('data/district-dimension.extra-columns.csv');

  it('drops undeclared columns under ignore, loading exactly what the file without them loads, in both paths', async () => {
    const plain = await runEveryWay(plainCsv, district);
    for (const fastPath of [true, false]) {
      const { result, copy, invalid } = await runEveryWay(extraCsv, district, { unknownColumns: 'ignore', fastPath });
      expect(invalid).toEqual([]);
      expect(copy.text).toBe(plain.copy.text);
      expect(result.ignored).toEqual({
        count: 3,
        columns: [
          { name: 'Sl No', position: 1, suggestion: null },
          { name: 'district_lgd_code', position: 4, suggestion: null },
          { name: 'grade_state', position: 9, suggestion: null },
        ],
      });
    }
    const rejected = await run(extraCsv, district).catch((e: unknown) => e);
    expect((rejected as HeaderError).problems.map((p) => p.code)).toEqual(['UNKNOWN_COLUMN', 'UNKNOWN_COLUMN', 'UNKNOWN_COLUMN']);
  });

  it('still requires the required columns when ignoring the others', () => {
    const check = checkHeader(district, ['district_id', 'district_name', 'state_id', 'state_name', 'latitude', 'extra'], { unknownColumns: 'ignore' });
    expect(check).toMatchObject({ ok: false, problems: [{ code: 'MISSING_REQUIRED_COLUMN', column: 'longitude' }] });
  });

  it('suggests the closest spec column for an unknown header, and the closest header for a missing column', () => {
    const check = checkHeader(district, ['district_id', 'distrct_name', 'State-ID', 'state_name', 'latitude', 'longitude', 'zzz']);
    expect(check.ok).toBe(false);
    if (check.ok) return;
    expect(check.problems.map((p) => [p.code, p.column, p.suggestion])).toEqual([
      ['UNKNOWN_COLUMN', 'distrct_name', 'district_name'],
      ['UNKNOWN_COLUMN', 'State-ID', 'state_id'],
      ['UNKNOWN_COLUMN', 'zzz', undefined],
      ['MISSING_REQUIRED_COLUMN', 'district_name', 'distrct_name'],
      ['MISSING_REQUIRED_COLUMN', 'state_id', 'State-ID'],
    ]);
    expect(check.problems[0]!.message).toBe('header cell 2 "distrct_name" is not a column of spec "district"; did you mean "district_name"?');
    expect(check.problems[3]!.message).toContain('did you mean the header cell "distrct_name"?');
    // Under ignore the dropped columns carry the suggestion too.
    const ignored = checkHeader(district, ['district_id', 'district_name', 'state_id', 'state_name', 'latitude', 'Longitud'], { unknownColumns: 'ignore' });
    expect(ignored).toMatchObject({ ok: false, problems: [{ code: 'MISSING_REQUIRED_COLUMN', column: 'longitude', suggestion: 'Longitud' }] });
    const dropped = checkHeader(district, ['district_id', 'district_name', 'state_id', 'state_name', 'latitude', 'longitude', 'latitude2'], {
      unknownColumns: 'ignore',
    });
    expect(dropped).toMatchObject({ ok: true, ignored: { count: 1, columns: [{ name: 'latitude2', position: 7, suggestion: null }] } });
  });

  it('never suggests for short or far names, and bounds the work on huge headers', () => {
    const spec = specWith({ id: { type: 'string' }, ab: { type: 'string' } }, []);
    const check = checkHeader(spec, ['id', 'xy', 'abcd']);
    expect(check.ok).toBe(false);
    if (!check.ok) expect(check.problems.every((p) => p.suggestion === undefined)).toBe(true);
    const huge = Array.from({ length: 100_000 }, (_, i) => `column_number_${i}`);
    const started = performance.now();
    const big = checkHeader(district, [...plainCsv.toString().split('\n')[0]!.split(','), ...huge], { unknownColumns: 'ignore' });
    expect(big.ok && big.ignored).toMatchObject({ count: 100_000 });
    if (big.ok) expect(big.ignored!.columns).toHaveLength(100);
    expect(performance.now() - started).toBeLessThan(5000);
  });

  it('maps headers through a columnMap and through spec aliases, in any letter case', async () => {
    const aliased = compile({
      program: 'district',
      input: {
        type: 'object',
        properties: { district_id: { type: 'string', shouldNotNull: true, aliases: ['District Code', 'dist_id'] }, district_name: { type: 'string' } },
        required: ['district_id'],
      },
    });
    expect(aliased.columns[0]!.aliases).toEqual(['District Code', 'dist_id']);
    expect(aliased.columns[1]!.aliases).toBeUndefined();
    const byAlias = await runEveryWay(' DISTRICT CODE ,Name of District\n7,Seven\n', aliased, { columnMap: new Map([['name of district', 1]]) });
    expect(byAlias.copy.lines).toEqual(['f1\t2\t7\tSeven']);
    // The map wins over names: "district_name" mapped onto district_id.
    const swapped = checkHeader(aliased, ['district_name', 'x'], {
      columnMap: new Map([
        ['district_name', 0],
        ['x', 1],
      ]),
    });
    expect(swapped).toMatchObject({ ok: true, mapping: { sourceIndex: [0, 1] } });
  });

  it('validates a columnMap: shape, unknown target (with a suggestion), two headers for one column', () => {
    expect(parseColumnMap({ 'School Id': 'school_id' })).toEqual({ ok: true, entries: [{ header: 'School Id', column: 'school_id' }] });
    expect(parseColumnMap([{ header: 'a', column: 'b' }])).toEqual({ ok: true, entries: [{ header: 'a', column: 'b' }] });
    expect(parseColumnMap('nope')).toMatchObject({ ok: false });
    expect(parseColumnMap([{ header: 'a', column: 1 }])).toMatchObject({ ok: false, problems: ['entry 1: column must be a string'] });
    expect(parseColumnMap([{ header: 'a', column: 'x', other: 1 }])).toMatchObject({ ok: false });
    expect(parseColumnMap({ A: 'x', a: 'y' })).toMatchObject({ ok: false, problems: [expect.stringContaining('mapped twice')] });
    expect(parseColumnMap(Object.fromEntries(Array.from({ length: 501 }, (_, i) => [`h${i}`, 'x'])))).toMatchObject({ ok: false });

    expect(resolveColumnMap(district, [{ header: 'Dist', column: 'District_Name' }])).toEqual({ ok: true, map: new Map([['dist', 1]]) });
    expect(resolveColumnMap(district, [{ header: 'h', column: 'distrct_id' }])).toEqual({
      ok: false,
      problems: ['columnMap maps "h" to "distrct_id", which is not a column of spec "district"; did you mean "district_id"?'],
    });
    expect(
      resolveColumnMap(district, [
        { header: 'a', column: 'state_id' },
        { header: 'b', column: 'STATE_ID' },
      ]),
    ).toMatchObject({ ok: false, problems: [expect.stringContaining('maps both "a" and "b"')] });
    expect(resolveColumnMap(district, [{ header: 'h', column: 'nothing' }], { skipUnknownTargets: true })).toEqual({ ok: true, map: new Map() });
  });

  it('bounded Levenshtein agrees with the plain one within its bound', () => {
    const plain = (a: string, b: string): number => {
      const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
      for (let j = 1; j <= b.length; j++) d[0]![j] = j;
      for (let i = 1; i <= a.length; i++)
        for (let j = 1; j <= b.length; j++) d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      return d[a.length]![b.length]!;
    };
    const words = ['', 'a', 'ab', 'ba', 'abc', 'school', 'scohol', 'schol', 'schools', 'chool', 'xschoolx', 'district', 'distrct', 'dsitrict'];
    for (const a of words)
      for (const b of words) for (const k of [0, 1, 2, 3]) expect([a, b, k, boundedDistance(a, b, k)]).toEqual([a, b, k, Math.min(plain(a, b), k + 1)]);
  });
});

describe('dialects: encodings, delimiters, the quote rule', () => {
  const spec = specWith({ id: { type: 'integer' }, name: { type: 'string' } }, ['id']);
  const utf16 = (text: string, be = false) => {
    const b = Buffer.from(`\uFEFF${text}`, 'utf16le');
    return be ? b.swap16() : b;
  };

  it('reads UTF-16 LE and BE with a BOM, transcoded in every chunking (odd chunks split code units)', async () => {
    for (const be of [false, true]) {
      const { result, copy, valid } = await runEveryWay(utf16('id,name\r\n1,नाम😀\r\n2,é\r\n', be), spec);
      expect(result.dialect).toEqual({ delimiter: ',', encoding: be ? 'UTF_16BE' : 'UTF_16LE', bom: true, lineEnding: 'CRLF' });
      expect(copy.lines).toEqual(['f1\t2\t1\tनाम😀', 'f1\t3\t2\té']);
      // The valid-rows file is UTF-8.
      expect(valid.text).toBe('id,name\n1,नाम😀\n2,é\n');
    }
  });

  it('still refuses UTF-16 without a BOM unless the encoding is named', async () => {
    const bytes = Buffer.from('id,name\n1,a\n', 'utf16le');
    await expect(run(bytes, spec)).rejects.toBeInstanceOf(UnsupportedEncodingError);
    const { copy, result } = await runEveryWay(bytes, spec, { dialect: { encoding: 'UTF_16LE' } });
    expect(copy.lines).toEqual(['f1\t2\t1\ta']);
    expect(result.dialect).toMatchObject({ encoding: 'UTF_16LE', bom: false });
  });

  it('reads Windows-1252 and ISO-8859-1 when named; without it the same bytes are INVALID_UTF8 rows', async () => {
    const bytes = Buffer.concat([Buffer.from('id,name\n1,caf'), Buffer.from([0xe9]), Buffer.from('\n2,'), Buffer.from([0x80, 0x93]), Buffer.from('x\n')]);
    const cp = await runEveryWay(bytes, spec, { dialect: { encoding: 'WINDOWS_1252' } });
    expect(cp.copy.lines).toEqual(['f1\t2\t1\tcafé', 'f1\t3\t2\t€“x']);
    const latin = await runEveryWay(bytes, spec, { dialect: { encoding: 'ISO_8859_1' } });
    expect(latin.copy.lines[0]).toBe('f1\t2\t1\tcafé');
    const plain = await runEveryWay(bytes, spec);
    expect(plain.invalid.map((r) => [r.line, r.errors.map((e) => e.code)])).toEqual([
      [2, ['INVALID_UTF8']],
      [3, ['INVALID_UTF8']],
    ]);
  });

  it('makes a byte the named code page leaves undefined an INVALID_UTF8 row, never U+FFFD in a value', async () => {
    const bytes = Buffer.concat([Buffer.from('id,name\n1,a'), Buffer.from([0x81]), Buffer.from('b\n2,ok\n')]);
    const { copy, invalid } = await runEveryWay(bytes, spec, { dialect: { encoding: 'WINDOWS_1252' } });
    expect(copy.lines).toEqual(['f1\t3\t2\tok']);
    expect(invalid[0]!.errors).toEqual([
      {
        column: 'name',
        code: 'INVALID_UTF8',
        message: 'name: cell 2 holds bytes that are not valid WINDOWS_1252 (shown as U+FFFD); check the encoding argument',
      },
    ]);
  });

  it('refuses a binary file even when an encoding is named', async () => {
    await expect(run(Buffer.from('504b0304140000000800', 'hex'), spec, { dialect: { encoding: 'WINDOWS_1252' } })).rejects.toBeInstanceOf(NotCsvError);
  });

  it.each([
    ['semicolon', 'id;name\n1;a,b\n', ';'],
    ['tab', 'id\tname\n1\ta,b\n', '\t'],
    ['pipe', 'id|name\n1|a,b\n', '|'],
    ['comma', 'id,name\n1,"a,b"\n', ','],
    ['semicolon after blank lines, quoted commas not counted', '\n\n"i,d";name\n1;a,b\n', ';'],
  ])('detects the %s delimiter from the header line', async (_label, csv, delimiter) => {
    const s = csv.includes('i,d') ? specWith({ 'i,d': { type: 'integer' }, name: { type: 'string' } }, []) : spec;
    const { copy, valid, result } = await runEveryWay(csv, s);
    expect(result.dialect.delimiter).toBe(delimiter);
    expect(copy.lines).toEqual([`f1\t${csv.startsWith('\n') ? 4 : 2}\t1\ta,b`]);
    // The valid-rows file is written with commas whatever the source delimiter.
    expect(valid.text.split('\n')[1]).toBe('1,"a,b"');
  });

  it('counts a tie as comma, and takes a named delimiter over detection', async () => {
    const tie = await run('id;name,x\n1;a,b\n', specWith({ 'id;name': { type: 'string' }, x: { type: 'string' } }, []));
    expect(tie.result.dialect.delimiter).toBe(',');
    const piped = specWith({ 'x|y|z': { type: 'string' }, name: { type: 'string' } }, []);
    const named = await runEveryWay('x|y|z;name\n1|2|3;a\n', piped, { dialect: { delimiter: ';' } });
    expect(named.result.dialect.delimiter).toBe(';');
    expect(named.copy.lines).toEqual(['f1\t2\t1|2|3\ta']);
  });

  it('makes a quote inside an unquoted cell a MALFORMED_QUOTES row, in both paths; escaped quotes stay text', async () => {
    for (const fastPath of [true, false]) {
      const { copy, invalid } = await runEveryWay('id,name\n1,ab"c\n2,"x""y"\n3,ok\n4,a"b,c"d\n', spec, { fastPath });
      expect(copy.lines).toEqual(['f1\t3\t2\tx"y', 'f1\t4\t3\tok']);
      expect(invalid.map((r) => [r.line, r.errors.map((e) => e.code)])).toEqual([
        [2, ['MALFORMED_QUOTES']],
        [5, ['MALFORMED_QUOTES']],
      ]);
      expect(invalid[0]!.errors[0]!.message).toMatch(/does not start with a quote/);
    }
  });
});
