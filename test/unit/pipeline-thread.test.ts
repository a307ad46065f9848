import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import iconv from 'iconv-lite';
import { afterAll, describe, expect, it } from 'vitest';
import {
  AbortError,
  HeaderError,
  MixedLineEndingsError,
  NotCsvError,
  RecordTooLargeError,
  runCsvPipeline,
  UnsupportedEncodingError,
  type CsvPipelineCounts,
  type CsvPipelineOptions,
  type InvalidRow,
} from '../../src/ingest/csv-pipeline';
import { closePipelineThreads, runCsvPipelineOffThread } from '../../src/ingest/pipeline-thread';
import type { CompiledSpec } from '../../src/modules/specs/spec.compile';
import { StorageError } from '../../src/storage/storage';
import { StoredFileStream } from '../../src/storage/verify';
import { chunked, Collect, compile, specWith } from '../helpers/pipeline';

// runCsvPipelineOffThread must be runCsvPipeline moved to a thread, nothing else: the same COPY
// bytes, valid-rows and error files, invalid rows (in order), result and error classes, for every
// kind of input the in-thread tests cover (test/unit/csv-pipeline.test.ts), in every chunking.

afterAll(() => closePipelineThreads());

const cqube = new URL('../fixtures/cqube/', import.meta.url);
const fixture = (path: string) => readFileSync(new URL(path, cqube));

type Runner = typeof runCsvPipeline;

/** `input`: read instead of `csv` in `size`-byte chunks (a stored file). */
async function outcome(
  runner: Runner,
  csv: Buffer,
  spec: CompiledSpec,
  opts: Partial<CsvPipelineOptions>,
  size: number,
  input?: Readable,
  sinks: { validCsvMayBeInput?: boolean } = {},
) {
  const copy = new Collect();
  const valid = new Collect();
  const errors = new Collect(true);
  const invalid: InvalidRow[] = [];
  const progress: CsvPipelineCounts[] = [];
  try {
    const result = await runner(
      input ?? chunked(csv, size),
      spec,
      {
        ...sinks,
        copy,
        validCsv: valid,
        errorCsv: errors,
        onInvalid: async (row) => {
          // Asynchronous, as the job's row-error batches are: the order must still hold.
          if (invalid.length % 7 === 0) await new Promise((r) => setImmediate(r));
          invalid.push(row);
        },
      },
      { fileId: '6f1c3a52-8d0e-4b8a-9c61-0a4f3e2b1d77', copyFormat: 'binary', progressEveryRows: 50, onProgress: (c) => progress.push(c), ...opts },
    );
    // Ended and flushed before reading: a slow sink may still hold writes when the run resolves.
    await Promise.all([copy, valid, errors].map((sink) => new Promise<void>((done) => sink.end(done))));
    return { result, copy: copy.bytes.toString('hex'), valid: valid.bytes.toString(), errors: errors.bytes.toString(), invalid, last: progress.at(-1) };
  } catch (err) {
    return { error: (err as Error).constructor.name, code: (err as { code?: string }).code, message: (err as Error).message };
  }
}

/** Both runners, whole and in 7- and 300-byte chunks: each off-thread outcome must be the in-thread one. */
async function same(csv: Buffer | string, spec: CompiledSpec, opts: Partial<CsvPipelineOptions> = {}) {
  const bytes = typeof csv === 'string' ? Buffer.from(csv) : csv;
  for (const size of [7, 300]) {
    const reference = await outcome(runCsvPipeline, bytes, spec, opts, size);
    expect({ size, ...(await outcome(runCsvPipelineOffThread, bytes, spec, opts, size)) }).toEqual({ size, ...reference });
  }
  const reference = await outcome(runCsvPipeline, bytes, spec, opts, 0);
  expect(await outcome(runCsvPipelineOffThread, bytes, spec, opts, 0)).toEqual(reference);
  return reference;
}

describe('runCsvPipelineOffThread gives what runCsvPipeline gives', () => {
  const spec = specWith({ id: { type: 'integer' }, name: { type: 'string', maxLength: 5 }, day: { type: 'string', format: 'date' } }, ['id']);

  it('on the cQube fixtures', async () => {
    const district = compile(JSON.parse(fixture('specs/dimension.district.json').toString()), 'district');
    const r = await same(fixture('data/district-dimension.data.csv'), district);
    expect(r).toHaveProperty('result.valid');
    const extra = await same(fixture('data/district-dimension.extra-columns.csv'), district, { unknownColumns: 'ignore' });
    expect(extra).toHaveProperty('result.ignored');
  });

  it('on valid, invalid, quoted, duplicate and blank rows', async () => {
    const keyed = specWith({ id: { type: 'integer', unique: true }, name: { type: 'string' } }, ['id']);
    let csv = 'id,name\n';
    for (let i = 0; i < 3000; i++) {
      if (i % 11 === 0) csv += `x${i},bad\n`;
      else if (i % 13 === 0)
        csv += `${i},"quoted, with a
line break"\n`;
      else if (i % 17 === 0) csv += `${i - 1},dup\n`;
      else if (i % 19 === 0) csv += '\n';
      else csv += `${i},n${i}\n`;
    }
    const r = await same(csv, keyed);
    expect(r).toMatchObject({ result: { total: expect.any(Number) } });
    expect((r as { invalid: unknown[] }).invalid.length).toBeGreaterThan(300);
    const text = await same(csv, keyed, { copyFormat: 'text' });
    expect(text).toHaveProperty('result.valid', (r as { result: { valid: number } }).result.valid);
  });

  it('on bad bytes, encodings, delimiters and CRLF', async () => {
    await same(Buffer.concat([Buffer.from('id,name\n1,ok\n2,'), Buffer.from([0xff, 0xfe]), Buffer.from('\n3,fine\n')]), spec);
    await same(Buffer.from('\uFEFFid,name\r\n1,नाम\r\n2,é\r\n', 'utf16le'), spec);
    await same(iconv.encode('id;name\r\n1;café\r\n2;naïve\r\n', 'win1252'), spec, { dialect: { encoding: 'WINDOWS_1252' } });
    await same('id\tname\n1\ta\n2\tb\n', spec);
  });

  it('on files refused as a whole, with the same error classes', async () => {
    const refused = [
      await same('nope,name\n1,a\n', spec),
      await same(Buffer.from([0x50, 0x4b, 0x03, 0x04, 0, 0, 0, 0, 0, 0, 0, 0]), spec),
      await same(Buffer.from('id,name\n1,a\n', 'utf16le'), spec),
      await same('id,name\n1,a\r2,b\n', spec),
      await same(`id,name\n1,"${'x'.repeat(5000)}\n2,b\n3,c\n`, spec, { maxRecordLength: 1000 }),
    ];
    expect(refused.map((r) => (r as { error: string }).error)).toEqual([
      HeaderError.name,
      NotCsvError.name,
      UnsupportedEncodingError.name,
      MixedLineEndingsError.name,
      RecordTooLargeError.name,
    ]);
  });

  it('rebuilds the error classes, so instanceof and their fields hold', async () => {
    const err = await runCsvPipelineOffThread(Readable.from([Buffer.from('nope\n1\n')]), spec, { copy: new Collect() }, { fileId: 'f' }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(HeaderError);
    expect((err as HeaderError).problemCount).toBe((err as HeaderError).problems.length);
    expect((err as HeaderError).problems.map((p) => p.code).sort()).toEqual(['MISSING_REQUIRED_COLUMN', 'UNKNOWN_COLUMN']);
  });
});

describe('runCsvPipelineOffThread: aborts, failures, backpressure', () => {
  const spec = specWith({ id: { type: 'integer' } });

  function endless(): Readable {
    let i = 0;
    return new Readable({
      read() {
        this.push(i === 0 ? 'id\n' : `${i}\n`.repeat(100));
        i++;
      },
    });
  }

  it('aborts: rejects with an AbortError (its cause kept) and destroys the input', async () => {
    const controller = new AbortController();
    const input = endless();
    const error = await runCsvPipelineOffThread(
      input,
      spec,
      { copy: new Collect() },
      {
        fileId: 'f',
        signal: controller.signal,
        progressEveryRows: 1000,
        onProgress: (c) => {
          if (c.total >= 5000) controller.abort(new Error('user cancelled'));
        },
      },
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AbortError);
    expect(((error as Error).cause as Error).message).toBe('user cancelled');
    expect(input.destroyed).toBe(true);
  });

  it('rejects with the error of a failing sink', async () => {
    const failing = new Writable({
      write(_chunk, _enc, done) {
        setImmediate(() => done(new Error('COPY failed: disk full')));
      },
    });
    const rows = ['id', ...Array.from({ length: 200_000 }, (_, i) => String(i))].join('\n');
    await expect(runCsvPipelineOffThread(chunked(Buffer.from(rows), 4096), spec, { copy: failing }, { fileId: 'f' })).rejects.toThrow('COPY failed: disk full');
  });

  it('reads no further ahead of a stalled sink than its bounded credit', async () => {
    // A sink that accepts the first write and then never calls back: the pipeline must stop
    // reading (the input is endless), not buffer the file in either thread.
    let written = 0;
    const stuck = new Writable({
      highWaterMark: 1024,
      write(chunk: Buffer, _enc, _done) {
        written += chunk.length;
      },
    });
    let read = 0;
    let i = 0;
    const input = new Readable({
      read() {
        const chunk = i++ === 0 ? 'id\n' : `${i}\n`.repeat(5000);
        read += chunk.length;
        this.push(chunk);
      },
    });
    const controller = new AbortController();
    const running = runCsvPipelineOffThread(input, spec, { copy: stuck }, { fileId: 'f', signal: controller.signal });
    // Reading must come to a stop (the thread's start-up time varies with the machine's load):
    // without the credit it would go on until the file, here endless, is all in memory.
    let last = -1;
    for (const deadline = Date.now() + 30_000; Date.now() < deadline && (read !== last || written === 0); ) {
      last = read;
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(read).toBe(last);
    expect(read).toBeLessThan(32 * 1024 * 1024);
    expect(written).toBeGreaterThan(0);
    controller.abort();
    await expect(running).rejects.toBeInstanceOf(AbortError);
  });

  it('hands over every byte of every sink before the result, while the sinks on the API thread are far behind', async () => {
    // The COPY sink here is slow, so the thread's credit runs out and its other sinks' small
    // writes wait behind it; the last of them must still arrive before the run resolves.
    const wide = specWith({ id: { type: 'integer' }, name: { type: 'string', maxLength: 8 } }, []);
    let csv = 'id,name\n';
    for (let i = 0; i < 300_000; i++) csv += i % 997 === 0 ? `${i},too-long-${i}\n` : `${i},n${i % 1000}\n`;
    const bytes = Buffer.from(csv);
    const reference = await outcome(runCsvPipeline, bytes, wide, {}, 256 * 1024);
    for (let round = 0; round < 3; round++) {
      const copy = new Collect();
      const slowCopy = new Writable({
        highWaterMark: 16 * 1024,
        write: (chunk: Buffer, _enc, done) => {
          copy.parts.push(Buffer.from(chunk));
          setTimeout(done, 2);
        },
      });
      const valid = new Collect();
      const errors = new Collect();
      const result = await runCsvPipelineOffThread(
        chunked(bytes, 256 * 1024),
        wide,
        { copy: slowCopy, validCsv: valid, errorCsv: errors },
        { fileId: '6f1c3a52-8d0e-4b8a-9c61-0a4f3e2b1d77', copyFormat: 'binary' },
      );
      // Read at once: whatever the thread posts after its result would be missing here.
      const got = { valid: valid.bytes.toString(), errors: errors.bytes.toString(), copy: copy.bytes.toString('hex') };
      expect(result.invalid).toBe(reference.result!.invalid);
      expect(got.errors === reference.errors, `round ${round}: error file`).toBe(true);
      expect(got.valid === reference.valid, `round ${round}: valid-rows file`).toBe(true);
      expect(got.copy === reference.copy, `round ${round}: COPY bytes`).toBe(true);
    }
  });

  it('fills a COPY chunk again once the sink has released it (copyReleasesChunks), and every byte stays exact', async () => {
    const wide = specWith({ id: { type: 'integer' }, name: { type: 'string' }, day: { type: 'string', format: 'date' } }, []);
    let csv = 'id,name,day\n';
    for (let i = 0; i < 60_000; i++) csv += `${i},name-${i % 1000},2024-0${1 + (i % 9)}-1${i % 10}\n`;
    const bytes = Buffer.from(csv);
    const reference = await outcome(runCsvPipeline, bytes, wide, {}, 256 * 1024);
    // Copies what it is given, as postgres.js's COPY stream does, and keeps the chunks to see them reused.
    class Releasing extends Writable {
      parts: Buffer[] = [];
      given: Buffer[] = [];
      constructor() {
        super({
          highWaterMark: 16 * 1024,
          write: (chunk: Buffer, _enc, done) => {
            this.given.push(chunk);
            this.parts.push(Buffer.from(chunk));
            setImmediate(done);
          },
        });
      }
    }
    for (let round = 0; round < 3; round++) {
      const copy = new Releasing();
      const result = await runCsvPipelineOffThread(
        chunked(bytes, 256 * 1024),
        wide,
        { copy, copyReleasesChunks: true },
        { fileId: '6f1c3a52-8d0e-4b8a-9c61-0a4f3e2b1d77', copyFormat: 'binary' },
      );
      expect(result.valid).toBe(60_000);
      expect({ round, copy: Buffer.concat(copy.parts).toString('hex') }).toEqual({ round, copy: reference.copy });
      // A released chunk's memory went back to the thread (moved, so this side's view of it is empty).
      expect(copy.given.filter((c) => c.buffer.byteLength === 0).length).toBeGreaterThan(0);
    }
  });

  it('reads a stored local file on the thread itself, verified there: same outcome, nothing read here, the file closed after', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'sluice-thread-file-'));
    try {
      const wide = specWith({ id: { type: 'integer' }, name: { type: 'string', maxLength: 6 } }, []);
      let csv = 'id,name\n';
      for (let i = 0; i < 40_000; i++) csv += i % 101 === 0 ? `x${i},bad\n` : `${i},n${i % 5000}\n`;
      const bytes = Buffer.from(csv);
      const file = path.join(dir, 'in.csv');
      await writeFile(file, bytes);
      const sha256 = createHash('sha256').update(bytes).digest('hex');
      const reference = await outcome(runCsvPipeline, bytes, wide, {}, 256 * 1024);
      const stored = async (expected: { size: number | null; sha256: string | null }) => new StoredFileStream(await open(file, 'r'), 'in.csv', expected);

      const input = await stored({ size: bytes.length, sha256 });
      const offThread = await outcome(runCsvPipelineOffThread, bytes, wide, {}, 0, input);
      expect(offThread).toEqual(reference);
      expect(input.readableDidRead).toBe(false);
      expect(input.verified).toBe(true);
      await once(input, 'close');

      // Bytes that are not the recorded ones: the thread's own check fails the run, as a StorageError.
      for (const [expected, code] of [
        [{ size: bytes.length, sha256: '0'.repeat(64) }, 'CHECKSUM_MISMATCH'],
        [{ size: bytes.length - 1, sha256: null }, 'SIZE_MISMATCH'],
        [{ size: bytes.length + 1, sha256: null }, 'SIZE_MISMATCH'],
      ] as const) {
        const bad = await stored(expected);
        const err = await runCsvPipelineOffThread(bad, wide, { copy: new Collect() }, { fileId: 'f' }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(StorageError);
        expect({ code: (err as StorageError).code, key: (err as StorageError).key }).toEqual({ code, key: 'in.csv' });
        expect(bad.verified).toBe(false);
      }
      // The same stream read here (no thread) verifies too.
      const here = await stored({ size: bytes.length, sha256 });
      expect(await outcome(runCsvPipeline, bytes, wide, {}, 0, here)).toEqual(reference);
      expect(here.verified).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('says the valid rows are the stored file itself when they are byte for byte (validCsvMayBeInput), and writes them whenever they are not', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'sluice-thread-mirror-'));
    try {
      const wide = specWith({ id: { type: 'integer' }, name: { type: 'string', maxLength: 6 } }, []);
      const rows = (n: number, line: (i: number) => string) => Array.from({ length: n }, (_, i) => line(i));
      const clean = `id,name\n${rows(30_000, (i) => `${i},n${i % 5000}\n`).join('')}`;
      let k = 0;
      const stored = async (bytes: Buffer, expected?: { size: number | null; sha256: string | null }) => {
        const file = path.join(dir, `in${k++}.csv`);
        await writeFile(file, bytes);
        return new StoredFileStream(
          await open(file, 'r'),
          'in.csv',
          expected ?? { size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') },
        );
      };
      const mirrored = async (text: string, expected?: { size: number | null; sha256: string | null }, sinks = { validCsvMayBeInput: true }) => {
        const bytes = Buffer.from(text);
        return outcome(runCsvPipelineOffThread, bytes, wide, {}, 0, await stored(bytes, expected), sinks);
      };

      // A clean file: nothing written, the result says so; everything else as without the flag.
      const reference = await outcome(runCsvPipeline, Buffer.from(clean), wide, {}, 256 * 1024);
      expect(reference.valid).toBe(clean);
      const same = await mirrored(clean);
      expect(same).toEqual({ ...reference, result: { ...reference.result, validCsvIsInput: true }, valid: '' });

      // Files whose valid rows are not the file: the same bytes as without the flag, and no claim.
      const lines = clean.split('\n');
      const variants: Record<string, string> = {
        'an invalid row in the middle': [...lines.slice(0, 15_000), 'x,bad', ...lines.slice(15_000)].join('\n'),
        'an invalid last row': `${clean}x,bad\n`,
        'an invalid first row': [lines[0], 'x,bad', ...lines.slice(1)].join('\n'),
        'a blank line': [...lines.slice(0, 20_000), '', ...lines.slice(20_000)].join('\n'),
        'no line break at the end': clean.slice(0, -1),
        CRLF: clean.replace(/\n/g, '\r\n'),
        'a BOM': `\uFEFF${clean}`,
        'a quoted header cell': `"id",name\n${lines.slice(1).join('\n')}`,
        semicolons: clean.replace(/,/g, ';'),
      };
      for (const [what, text] of Object.entries(variants)) {
        const expected = await outcome(runCsvPipeline, Buffer.from(text), wide, {}, 256 * 1024);
        expect({ what, ...(await mirrored(text)) }).toEqual({ what, ...expected });
      }
      // No claim without a complete record to have verified the file against, or without the flag.
      expect(await mirrored(clean, { size: clean.length, sha256: null })).toEqual(reference);
      expect(await mirrored(clean, undefined, { validCsvMayBeInput: false })).toEqual(reference);
      // On the API thread (no pipeline thread), the flag changes nothing.
      expect(await outcome(runCsvPipeline, Buffer.from(clean), wide, {}, 0, await stored(Buffer.from(clean)), { validCsvMayBeInput: true })).toEqual(reference);
      // A file that is not its record still fails as a whole, mirror or not.
      const err = await mirrored(clean, { size: clean.length, sha256: '0'.repeat(64) });
      expect(err).toMatchObject({ error: 'StorageError', code: 'CHECKSUM_MISMATCH' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('keeps working after a refused file and after an abort (a pooled thread is clean or replaced)', async () => {
    const ok = () => runCsvPipelineOffThread(Readable.from([Buffer.from('id\n1\n2\n')]), spec, { copy: new Collect() }, { fileId: 'f' });
    await expect(runCsvPipelineOffThread(Readable.from([Buffer.from('x\n1\n')]), spec, { copy: new Collect() }, { fileId: 'f' })).rejects.toBeInstanceOf(
      HeaderError,
    );
    expect(await ok()).toMatchObject({ total: 2, valid: 2 });
    await expect(runCsvPipelineOffThread(endless(), spec, { copy: new Collect() }, { fileId: 'f', signal: AbortSignal.timeout(200) })).rejects.toBeInstanceOf(
      AbortError,
    );
    expect(await ok()).toMatchObject({ total: 2, valid: 2 });
    const runs = await Promise.all([ok(), ok(), ok()]);
    expect(runs.map((r) => r.valid)).toEqual([2, 2, 2]);
  });
});
