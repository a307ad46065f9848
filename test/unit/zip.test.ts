import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import yazl from 'yazl';
import { KiB, MiB } from '../../src/shared/units';
import { defaultZipLimits, readZipSafely, ZipError, type ZipCsvEntry, type ZipErrorCode, type ZipLimits } from '../../src/ingest/zip';

let dir: string;
let fileCounter = 0;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'sluice-zip-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------
// Building archives

interface Spec {
  name: string;
  data?: string | Buffer;
  /** yazl options: `compress: false` stores, `mode` sets Unix mode bits. */
  options?: { compress?: boolean; mode?: number };
  directory?: boolean;
}

async function buildZip(specs: Spec[]): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  for (const spec of specs) {
    if (spec.directory) zip.addEmptyDirectory(spec.name);
    else zip.addBuffer(Buffer.isBuffer(spec.data) ? spec.data : Buffer.from(spec.data ?? ''), spec.name, spec.options ?? {});
  }
  zip.end();
  return buffer(zip.outputStream as Readable);
}

async function save(bytes: Buffer): Promise<string> {
  const file = path.join(dir, `archive-${++fileCounter}.zip`);
  await writeFile(file, bytes);
  return file;
}

/** Offsets of each entry's central directory header and local file header. */
interface Headers {
  central: number;
  local: number;
  /** Where the entry's (compressed) data starts. */
  data: number;
  name: string;
}

function headers(zip: Buffer): Headers[] {
  const eocd = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  const count = zip.readUInt16LE(eocd + 10);
  let at = zip.readUInt32LE(eocd + 16);
  const out: Headers[] = [];
  for (let i = 0; i < count; i++) {
    const nameLength = zip.readUInt16LE(at + 28);
    const local = zip.readUInt32LE(at + 42);
    out.push({
      central: at,
      local,
      data: local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28),
      name: zip.toString('utf8', at + 46, at + 46 + nameLength),
    });
    at += 46 + nameLength + zip.readUInt16LE(at + 30) + zip.readUInt16LE(at + 32);
  }
  return out;
}

function entryHeaders(zip: Buffer, name: string): Headers {
  const found = headers(zip).find((h) => h.name === name);
  if (!found) throw new Error(`test archive has no entry ${name}`);
  return found;
}

/** yazl refuses unsafe names, so entries are built with a same-length placeholder and renamed here. */
function rename(zip: Buffer, from: string, to: string, encoding: BufferEncoding = 'latin1'): Buffer {
  const out = Buffer.from(zip);
  const h = entryHeaders(zip, from);
  const raw = Buffer.from(to, encoding);
  expect(raw.length).toBe(Buffer.byteLength(from));
  raw.copy(out, h.central + 46);
  raw.copy(out, h.local + 30);
  return out;
}

function setFlags(zip: Buffer, name: string, flags: number): Buffer {
  const out = Buffer.from(zip);
  const h = entryHeaders(zip, name);
  out.writeUInt16LE(out.readUInt16LE(h.central + 8) | flags, h.central + 8);
  out.writeUInt16LE(out.readUInt16LE(h.local + 6) | flags, h.local + 6);
  return out;
}

function setUncompressedSize(zip: Buffer, name: string, size: number): Buffer {
  const out = Buffer.from(zip);
  const h = entryHeaders(zip, name);
  out.writeUInt32LE(size, h.central + 24);
  out.writeUInt32LE(size, h.local + 22);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Reading

interface Outcome {
  result?: Awaited<ReturnType<typeof readZipSafely>>;
  error?: unknown;
  /** Entries `onEntry` was called with, and the bytes it received from each. */
  seen: Array<{ name: string; size: number; bytes: Buffer }>;
}

async function read(
  file: string,
  limits: Partial<ZipLimits> = {},
  consume: (entry: ZipCsvEntry) => Promise<Buffer> = async (e) => {
    const chunks: Buffer[] = [];
    for await (const chunk of e.stream) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  },
): Promise<Outcome> {
  const seen: Outcome['seen'] = [];
  try {
    const result = await readZipSafely(file, limits, async (entry) => {
      const record: Outcome['seen'][number] = { name: entry.name, size: entry.size, bytes: Buffer.alloc(0) };
      seen.push(record);
      record.bytes = await consume(entry);
    });
    return { result, seen };
  } catch (error) {
    return { error, seen };
  }
}

function expectRefused(outcome: Outcome, code: ZipErrorCode): ZipError {
  expect(outcome.error, `expected ${code}, got ${JSON.stringify(outcome.result)}`).toBeInstanceOf(ZipError);
  const err = outcome.error as ZipError;
  expect({ code: err.code, message: err.message }).toMatchObject({ code });
  return err;
}

const csvA = 'id,name\n1,Ana\n2,Ben\n';
const csvB = 'code,value\nX,10\nY,20\n';
/** Placed before every attack: a bad archive must fail before any entry is handed out. */
const good: Spec = { name: 'good.csv', data: csvA };

// ---------------------------------------------------------------------------------------------

describe('readZipSafely: valid archives', () => {
  it('yields every CSV and reports what it skipped', async () => {
    const file = await save(
      await buildZip([
        { name: 'data/', directory: true },
        { name: 'data/a.csv', data: csvA },
        { name: 'B.CSV', data: csvB, options: { compress: false } },
        { name: 'readme.txt', data: 'hello' },
        { name: '__MACOSX/data/._a.csv', data: 'resource fork' },
        { name: '.DS_Store', data: 'junk' },
        { name: 'data/._b.csv', data: 'junk' },
      ]),
    );
    const outcome = await read(file);
    expect(outcome.error).toBeUndefined();
    expect(outcome.seen.map((e) => [e.name, e.size, e.bytes.toString()])).toEqual([
      ['data/a.csv', csvA.length, csvA],
      ['B.CSV', csvB.length, csvB],
    ]);
    expect(outcome.result).toEqual({
      entries: [
        { name: 'data/a.csv', size: csvA.length },
        { name: 'B.CSV', size: csvB.length },
      ],
      skipped: [
        { name: 'readme.txt', reason: 'NOT_CSV' },
        { name: '__MACOSX/data/._a.csv', reason: 'SYSTEM_FILE' },
        { name: '.DS_Store', reason: 'SYSTEM_FILE' },
        { name: 'data/._b.csv', reason: 'SYSTEM_FILE' },
      ],
    });
  });

  it('reads an empty archive', async () => {
    const outcome = await read(await save(await buildZip([])));
    expect(outcome.result).toEqual({ entries: [], skipped: [] });
  });

  it('accepts a small, highly compressible CSV below the ratio exemption', async () => {
    const rows = 'x,1\n'.repeat((512 * KiB) / 4);
    const outcome = await read(await save(await buildZip([{ name: 'rep.csv', data: rows }])));
    expect(outcome.error).toBeUndefined();
    expect(outcome.seen[0]?.bytes.length).toBe(rows.length);
  });

  it('streams a multi-megabyte CSV in full', async () => {
    const rows = Array.from({ length: 200_000 }, (_, i) => `${i},${(i * 7919) % 10007},name-${i}\n`).join('');
    const outcome = await read(await save(await buildZip([{ name: 'big.csv', data: rows }])));
    expect(outcome.error).toBeUndefined();
    expect(outcome.seen[0]?.bytes.toString()).toBe(rows);
  });

  it('lets the caller stop reading an entry early and still reads the next', async () => {
    const file = await save(
      await buildZip([
        { name: 'a.csv', data: csvA },
        { name: 'b.csv', data: csvB },
      ]),
    );
    const outcome = await read(file, {}, async (e) => (e.name === 'a.csv' ? Buffer.alloc(0) : buffer(e.stream)));
    expect(outcome.error).toBeUndefined();
    expect(outcome.seen.map((e) => e.bytes.toString())).toEqual(['', csvB]);
    expect(outcome.result?.entries.map((e) => e.name)).toEqual(['a.csv', 'b.csv']);
  });

  it('lets the caller leave a for-await loop early (an AbortError on the stream) and still reads the next', async () => {
    const file = await save(
      await buildZip([
        { name: 'a.csv', data: csvA.repeat(50_000) },
        { name: 'b.csv', data: csvB },
      ]),
    );
    const outcome = await read(file, {}, async (e) => {
      for await (const chunk of e.stream) return chunk as Buffer;
      return Buffer.alloc(0);
    });
    expect(outcome.error).toBeUndefined();
    expect(outcome.seen.map((e) => e.name)).toEqual(['a.csv', 'b.csv']);
    expect(outcome.seen[1]!.bytes.toString()).toBe(csvB.slice(0, outcome.seen[1]!.bytes.length));
  });

  it('exports documented defaults', () => {
    expect(defaultZipLimits).toEqual({
      maxEntries: 1000,
      maxTotalBytes: 2 * 1024 * MiB,
      maxCompressionRatio: 100,
      ratioExemptBytes: 1 * MiB,
    });
    expect(Object.isFrozen(defaultZipLimits)).toBe(true);
  });
});

describe('readZipSafely: entry rules are checked for every entry before any is handed out', () => {
  const unsafeNames: Array<[label: string, placeholder: string, name: string]> = [
    ['".." segment', 'xx/evil.csv', '../evil.csv'],
    ['".." deeper in the path', 'a/xx/xx/e.csv', 'a/../../e.csv'],
    ['absolute path', 'xetc/evil.csv', '/etc/evil.csv'],
    ['drive letter', 'Cx/evil.csv', 'C:/evil.csv'],
    ['backslash', 'a/evil.csv', 'a\\evil.csv'],
    ['backslash traversal', 'xx/evil.csv', '..\\evil.csv'],
    ['NUL', 'evilx.csv', 'evil\0.csv'],
    ['empty segment', 'ax/evil.csv', 'a//evil.csv'],
    ['"." segment', 'x/evil.csv', './evil.csv'],
    ['unsafe name on a non-CSV entry', 'xx/evil.txt', '../evil.txt'],
  ];

  it.each(unsafeNames)('refuses %s', async (_label, placeholder, name) => {
    const zip = rename(await buildZip([good, { name: placeholder, data: 'a,b\n' }]), placeholder, name);
    const outcome = await read(await save(zip));
    const err = expectRefused(outcome, 'ZIP_UNSAFE_PATH');
    expect(err.entry).toBe(name);
    expect(err.message).toContain(JSON.stringify(name));
    expect(outcome.seen).toEqual([]);
  });

  it('refuses a duplicate entry name', async () => {
    const outcome = await read(await save(await buildZip([good, { name: 'good.csv', data: csvB }])));
    expectRefused(outcome, 'ZIP_UNSAFE_PATH');
    expect(outcome.seen).toEqual([]);
  });

  it.each([
    ['a.csv', 'A.CSV'],
    ['dir/x.csv', 'DIR/x.csv'],
    ['notes.txt', 'Notes.TXT'],
    ['caf\u00e9.csv', 'CAFE\u0301.csv'],
  ])('refuses names that differ only by case: %s and %s', async (first, second) => {
    const outcome = await read(await save(await buildZip([good, { name: first, data: csvA }, { name: second, data: csvB }])));
    const err = expectRefused(outcome, 'ZIP_UNSAFE_PATH');
    expect(err.entry).toBe(second);
    expect(err.message).toContain(`differs from entry ${JSON.stringify(first)} only by letter case`);
    expect(outcome.seen).toEqual([]);
  });

  it.each([
    ['ESC', 'evil\u001b[31m.csv'],
    ['DEL', 'evil\u007f.csv'],
    ['C1 NEL', 'evil\u0085.csv'],
    ['C1 CSI', 'evil\u009b.csv'],
    ['newline', 'evil\n.csv'],
  ])('refuses a name with a control character (%s)', async (_label, name) => {
    const placeholder = 'x'.repeat(Buffer.byteLength(name, 'utf8') - 4) + '.csv';
    const zip = rename(await buildZip([good, { name: placeholder, data: csvA }]), placeholder, name, 'utf8');
    const outcome = await read(await save(zip));
    const err = expectRefused(outcome, 'ZIP_UNSAFE_PATH');
    expect(err.entry).toBe(name);
    expect(err.message).toContain('control character');
    expect(outcome.seen).toEqual([]);
  });

  const attacks: Array<[label: string, build: () => Promise<Buffer>, code: ZipErrorCode, named: string]> = [
    [
      'a symbolic link (Unix mode 0120777)',
      () => buildZip([good, { name: 'link.csv', data: '/etc/passwd', options: { mode: 0o120777 } }]),
      'ZIP_SYMLINK',
      '"link.csv"',
    ],
    [
      'an encrypted entry (general purpose bit 0)',
      async () => setFlags(await buildZip([good, { name: 'secret.csv', data: csvB }]), 'secret.csv', 0x0001),
      'ZIP_ENCRYPTED',
      '"secret.csv"',
    ],
    [
      'strong encryption (bit 6), which yauzl rejects itself',
      async () => setFlags(await buildZip([good, { name: 'secret.csv', data: csvB }]), 'secret.csv', 0x0041),
      'ZIP_ENCRYPTED',
      'strong encryption',
    ],
  ];

  it.each(attacks)('refuses %s', async (_label, build, code, named) => {
    const outcome = await read(await save(await build()));
    expect(expectRefused(outcome, code).message).toContain(named);
    expect(outcome.seen).toEqual([]);
  });

  it.each(['inner.zip', 'data.csv.gz', 'dump.tar', 'x.7z', 'y.RAR', 'z.tgz'])('refuses a nested archive by name: %s', async (name) => {
    const outcome = await read(await save(await buildZip([good, { name, data: 'whatever' }])));
    const err = expectRefused(outcome, 'ZIP_NESTED_ARCHIVE');
    expect(err.entry).toBe(name);
    expect(outcome.seen).toEqual([]);
  });

  it('refuses more entries than the default limit of 1,000', async () => {
    const specs = Array.from({ length: 1001 }, (_, i) => ({ name: `f${i}.csv`, data: 'a\n' }));
    const outcome = await read(await save(await buildZip(specs)));
    const err = expectRefused(outcome, 'ZIP_TOO_MANY_ENTRIES');
    expect(err.message).toContain('1001 entries');
    expect(err.message).toContain('limit is 1000');
    expect(outcome.seen).toEqual([]);
  });

  it('counts folders and skipped files against maxEntries', async () => {
    const zip = await buildZip([good, { name: 'd/', directory: true }, { name: 'x.txt' }, { name: '.hidden' }]);
    expectRefused(await read(await save(zip), { maxEntries: 3 }), 'ZIP_TOO_MANY_ENTRIES');
    expect((await read(await save(zip), { maxEntries: 4 })).error).toBeUndefined();
  });
});

describe('readZipSafely: size limits', () => {
  let bomb: Buffer;
  const bombBytes = 50 * MiB;

  beforeAll(async () => {
    bomb = await buildZip([good, { name: 'bomb.csv', data: Buffer.alloc(bombBytes) }]);
  });

  it('refuses a zip bomb (50 MiB of zeros) by its compression ratio', async () => {
    const outcome = await read(await save(bomb));
    const err = expectRefused(outcome, 'ZIP_BOMB');
    expect(err.entry).toBe('bomb.csv');
    expect(err.message).toMatch(/expands \d+:1/);
    expect(err.message).toContain('limit is 100:1');
    expect(outcome.seen).toEqual([]);
  });

  it('accepts the same entry when the ratio limit allows it', async () => {
    const outcome = await read(await save(bomb), { maxCompressionRatio: 5000 }, async (e) => {
      let total = 0;
      for await (const chunk of e.stream) total += (chunk as Buffer).length;
      expect(total).toBeGreaterThan(0);
      return Buffer.alloc(0);
    });
    expect(outcome.error).toBeUndefined();
    expect(outcome.result?.entries).toEqual([
      { name: 'good.csv', size: csvA.length },
      { name: 'bomb.csv', size: bombBytes },
    ]);
  });

  it('refuses CSVs whose total uncompressed size exceeds maxTotalBytes, naming the limit', async () => {
    const noise = (seed: number) => Array.from({ length: 40_000 }, (_, i) => `${(i * 2654435761 + seed) % 4294967296}\n`).join('');
    const zip = await buildZip([
      { name: 'one.csv', data: noise(1) },
      { name: 'notes.txt', data: noise(3) }, // never inflated, so never counted
      { name: 'two.csv', data: noise(2) },
    ]);
    const outcome = await read(await save(zip), { maxTotalBytes: 600 * KiB });
    const err = expectRefused(outcome, 'ZIP_TOO_LARGE');
    expect(err.entry).toBe('two.csv');
    expect(err.message).toContain(`${600 * KiB} bytes (600 KiB)`);
    expect(outcome.seen).toEqual([]);
    expect((await read(await save(zip), { maxTotalBytes: 2 * MiB })).error).toBeUndefined();
  });

  it('enforces limits on the actual bytes when the header under-declares the size, before any entry is handed out', async () => {
    // The header claims 200 KiB (ratio about 4:1, below every limit); the data inflates to 50 MiB.
    const declared = 200 * KiB;
    const outcome = await read(await save(setUncompressedSize(bomb, 'bomb.csv', declared)));
    const err = expectRefused(outcome, 'ZIP_BOMB');
    expect(err.message).toContain(`past the ${declared} bytes`);
    // The first pass inflates every CSV whole, so not even good.csv (before the bomb) is handed out.
    expect(outcome.seen).toEqual([]);
  });

  it('refuses the lie even when the caller swallows the stream error', async () => {
    const lying = setUncompressedSize(bomb, 'bomb.csv', 200 * KiB);
    const outcome = await read(await save(lying), {}, async (e) => {
      await new Promise<void>((resolve) => {
        e.stream.on('error', () => resolve());
        e.stream.on('end', () => resolve());
        e.stream.resume();
      });
      return Buffer.alloc(0);
    });
    expectRefused(outcome, 'ZIP_BOMB');
  });

  it('refuses an entry that ends before its declared size', async () => {
    const zip = setUncompressedSize(await buildZip([{ name: 'short.csv', data: csvA }]), 'short.csv', csvA.length + 10);
    const err = expectRefused(await read(await save(zip)), 'ZIP_INVALID');
    expect(err.message).toContain('ends after');
  });
});

describe('readZipSafely: nested archives by content', () => {
  const tarHeader = (): Buffer => {
    const block = Buffer.alloc(512);
    block.write('data.csv', 0);
    block.write('ustar\u000000', 257, 'latin1');
    return Buffer.concat([block, Buffer.from(csvA)]);
  };

  const disguised: Array<[format: string, make: () => Promise<Buffer> | Buffer]> = [
    ['gzip', () => zlib.gzipSync(csvA)],
    ['ZIP', () => buildZip([{ name: 'inner.csv', data: csvA }])],
    ['tar', tarHeader],
    ['bzip2', () => Buffer.concat([Buffer.from('BZh91AY&SY', 'latin1'), Buffer.alloc(64, 1)])],
    ['7z', () => Buffer.concat([Buffer.from([0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c]), Buffer.alloc(64)])],
  ];

  it.each(disguised)('refuses %s data named .csv before any entry is handed out', async (format, make) => {
    const zip = await buildZip([good, { name: 'data.csv', data: await make() }]);
    const outcome = await read(await save(zip));
    const err = expectRefused(outcome, 'ZIP_NESTED_ARCHIVE');
    expect(err.entry).toBe('data.csv');
    expect(err.message).toContain(`contains ${format} data`);
    expect(outcome.seen).toEqual([]);
  });

  it('refuses disguised data in a stored (uncompressed) entry too', async () => {
    const zip = await buildZip([{ name: 'data.csv', data: zlib.gzipSync(csvA), options: { compress: false } }]);
    expectRefused(await read(await save(zip)), 'ZIP_NESTED_ARCHIVE');
  });
});

describe('readZipSafely: resources', () => {
  const openFds = (): number => readdirSync('/proc/self/fd').length;

  it.runIf(existsSync('/proc/self/fd'))('closes the archive before returning, whatever happened', async () => {
    const two = await save(
      await buildZip([
        { name: 'a.csv', data: csvA.repeat(1000) },
        { name: 'b.csv', data: csvB },
      ]),
    );
    const bad = await save(rename(await buildZip([good, { name: 'xx/e.csv' }]), 'xx/e.csv', '../e.csv'));
    const before = openFds();
    await read(two); // read in full
    await read(two, {}, async () => Buffer.alloc(0)); // caller stops at once
    await read(two, {}, async (e) => (e.stream.destroy(), Buffer.alloc(0))); // caller destroys
    await read(two, {}, async () => {
      throw new Error('caller failed');
    });
    await read(bad); // refused in pass one
    await read(path.join(dir, 'not-there.zip'));
    expect(openFds()).toBe(before);
  });
});

describe('readZipSafely: invalid input', () => {
  it('refuses a file that is not a ZIP', async () => {
    const file = path.join(dir, 'not-a-zip.zip');
    await writeFile(file, csvA);
    expectRefused(await read(file), 'ZIP_INVALID');
  });

  it('refuses a truncated archive', async () => {
    const zip = await buildZip([good, { name: 'b.csv', data: csvB }]);
    expectRefused(await read(await save(zip.subarray(0, zip.length - 30))), 'ZIP_INVALID');
  });

  it('refuses corrupt compressed data before any entry is handed out', async () => {
    const zip = await buildZip([good, { name: 'bad.csv', data: csvA.repeat(50) }]);
    const h = entryHeaders(zip, 'bad.csv');
    // 0xff starts a deflate block of the reserved type 3: zlib fails on the first byte.
    zip.fill(0xff, h.data, h.data + 8);
    const outcome = await read(await save(zip));
    const err = expectRefused(outcome, 'ZIP_INVALID');
    expect(err.entry).toBe('bad.csv');
    expect(outcome.seen).toEqual([]);
  });

  it('refuses a stored entry whose data does not match its CRC-32, before any entry is handed out', async () => {
    const zip = await buildZip([good, { name: 'b.csv', data: csvB, options: { compress: false } }]);
    const h = entryHeaders(zip, 'b.csv');
    // "X,10" becomes "X,19": still a valid CSV, only the checksum can tell.
    const at = zip.indexOf('X,10', h.data);
    zip[at + 3] = '9'.charCodeAt(0);
    const outcome = await read(await save(zip));
    const err = expectRefused(outcome, 'ZIP_CORRUPT');
    expect(err.entry).toBe('b.csv');
    expect(err.message).toMatch(/"b\.csv" is corrupt: its data has CRC-32 [0-9a-f]{8}, its header records [0-9a-f]{8}/);
    expect(outcome.seen).toEqual([]);
  });

  it('refuses a deflated entry whose CRC-32 does not match its data, before any entry is handed out', async () => {
    const zip = await buildZip([good, { name: 'b.csv', data: csvB.repeat(100) }]);
    const h = entryHeaders(zip, 'b.csv');
    expect(zip.readUInt16LE(h.central + 10)).toBe(8);
    zip.writeUInt32LE(zip.readUInt32LE(h.central + 16) ^ 1, h.central + 16);
    zip.writeUInt32LE(zip.readUInt32LE(h.local + 14) ^ 1, h.local + 14);
    const outcome = await read(await save(zip));
    expect(expectRefused(outcome, 'ZIP_CORRUPT').entry).toBe('b.csv');
    expect(outcome.seen).toEqual([]);
  });

  it('checks the CRC-32 of an empty entry and of a valid archive without refusing it', async () => {
    const outcome = await read(
      await save(await buildZip([{ name: 'empty.csv', data: '' }, { name: 's.csv', data: csvA, options: { compress: false } }, good])),
    );
    expect(outcome.error).toBeUndefined();
    expect(outcome.seen.map((e) => [e.name, e.bytes.toString()])).toEqual([
      ['empty.csv', ''],
      ['s.csv', csvA],
      ['good.csv', csvA],
    ]);
  });

  it('stops the verification pass when its signal is aborted', async () => {
    const controller = new AbortController();
    const reason = new Error('cancelled');
    controller.abort(reason);
    await expect(readZipSafely(await save(await buildZip([good])), { signal: controller.signal }, async () => undefined)).rejects.toBe(reason);
  });

  it('refuses an unsupported compression method', async () => {
    const zip = await buildZip([{ name: 'odd.csv', data: csvA }]);
    const h = entryHeaders(zip, 'odd.csv');
    zip.writeUInt16LE(12, h.central + 10); // bzip2 method
    zip.writeUInt16LE(12, h.local + 8);
    expectRefused(await read(await save(zip)), 'ZIP_INVALID');
  });

  it('passes a missing file through as the file system error', async () => {
    const outcome = await read(path.join(dir, 'missing.zip'));
    expect(outcome.error).not.toBeInstanceOf(ZipError);
    expect((outcome.error as NodeJS.ErrnoException).code).toBe('ENOENT');
  });

  it('surfaces the caller’s own error unchanged', async () => {
    const file = await save(await buildZip([good]));
    const boom = new Error('database down');
    await expect(
      readZipSafely(file, {}, async () => {
        throw boom;
      }),
    ).rejects.toBe(boom);
  });
});
