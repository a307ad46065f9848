import { open, type FileHandle } from 'node:fs/promises';
import { PassThrough, Readable, Transform, type TransformCallback } from 'node:stream';
import zlib from 'node:zlib';
import yauzl, { type Entry, type ZipFile } from 'yauzl';
import { GiB, KiB, MiB } from '../shared/units';

/** Every refusal `readZipSafely` makes, each with its description (a file's error code when its ZIP is refused). */
export const ZIP_ERROR_CODES = {
  ZIP_INVALID: 'Not a ZIP, truncated, corrupt data, an unsupported compression method, or sizes that do not add up.',
  ZIP_CORRUPT: "An entry's inflated bytes do not have the CRC-32 its central directory header records.",
  ZIP_UNSAFE_PATH:
    'An entry name that could escape a folder or be confused with another: absolute, drive letter, `..`, `.`, empty segment, backslash, control character, a duplicate, or a name that differs from another only by letter case (one file on case-insensitive file systems).',
  ZIP_SYMLINK: 'An entry whose Unix mode marks it as a symbolic link.',
  ZIP_NESTED_ARCHIVE: 'An entry that is itself an archive or compressed file, by name or by its first bytes.',
  ZIP_ENCRYPTED: 'An encrypted entry (traditional, AES or strong encryption).',
  ZIP_TOO_MANY_ENTRIES: 'More entries than `maxEntries`.',
  ZIP_TOO_LARGE: 'The CSV entries together inflate to more than `maxTotalBytes`.',
  ZIP_BOMB: 'An entry inflates beyond `maxCompressionRatio`, or beyond the size its header declares.',
} as const;
export type ZipErrorCode = keyof typeof ZIP_ERROR_CODES;

/** Every refusal `readZipSafely` makes. Callers branch on `code`; the message names the entry and the limit. */
export class ZipError extends Error {
  constructor(
    readonly code: ZipErrorCode,
    message: string,
    /** The offending entry's name, when one entry is to blame. */
    readonly entry?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ZipError';
  }
}

export interface ZipLimits {
  /** Most entries in the archive, counting folders and skipped files. */
  maxEntries: number;
  /** Most bytes, uncompressed, that all CSV entries together may inflate to. */
  maxTotalBytes: number;
  /** Highest uncompressed:compressed size ratio of one entry (100 means 100:1). */
  maxCompressionRatio: number;
  /**
   * Entries up to this many uncompressed bytes are exempt from the ratio limit: a small file of
   * repeated values legitimately compresses far better than 100:1 and is harmless.
   */
  ratioExemptBytes: number;
}

/** Defaults for `ZipLimits`. */
export const defaultZipLimits: Readonly<ZipLimits> = Object.freeze({
  maxEntries: 1_000,
  maxTotalBytes: 2 * GiB,
  maxCompressionRatio: 100,
  ratioExemptBytes: 1 * MiB,
});

/** How one archive is read: the limits, and a signal that stops the reading. */
export interface ZipReadOptions extends Partial<ZipLimits> {
  /** Aborting stops the verification pass at its next chunk (rejecting with the signal's reason). */
  signal?: AbortSignal;
}

/** A CSV entry handed to the caller. */
export interface ZipCsvEntry {
  /** Path inside the archive, `/`-separated, already checked by the path rules. */
  name: string;
  /**
   * Uncompressed size the header declares, in bytes. Not trusted: `stream` fails with ZIP_BOMB
   * past it and with ZIP_INVALID short of it.
   */
  size: number;
  /** The inflated bytes. Fails with a ZipError as soon as a limit is crossed. */
  stream: Readable;
}

export type ZipSkipReason =
  /** A file whose name does not end in `.csv`. */
  | 'NOT_CSV'
  /** `__MACOSX/` resource forks and dotfiles (`.DS_Store`, `._x.csv`, anything under a `.folder/`). */
  | 'SYSTEM_FILE';

export interface ZipReadResult {
  /** The CSV entries passed to `onEntry`, in archive order, with the bytes actually read. */
  entries: Array<{ name: string; size: number }>;
  /** Files not passed to `onEntry`. Folders are not listed. */
  skipped: Array<{ name: string; reason: ZipSkipReason }>;
}

/**
 * Reads the CSV files of a ZIP archive on disk, one at a time, refusing anything unsafe or corrupt.
 *
 * Two passes. The first checks the whole archive, cheapest rules first, and hands out nothing:
 * from the central directory, for ALL entries, names, symlinks, encryption, entry count, nested
 * archives by name, declared sizes and ratios; then, for each CSV entry, the archive signatures in
 * its first inflated bytes; then each CSV entry is inflated whole, its actual size held to the
 * limits and its CRC-32 compared with the header's. yauzl checks no CRC (its README: "No CRC-32
 * Checking") and raw deflate carries none, so this is the only integrity check an entry gets. So
 * a bad archive fails before `onEntry` sees a single byte, and a corrupt entry never turns into
 * rows. The price: every CSV entry is inflated twice. The second pass inflates each CSV entry and
 * hands it to `onEntry`, which must consume or destroy the stream before its promise settles; the
 * same checks run again on the bytes handed out. Entries are read one after the other, never in
 * parallel.
 *
 * If a limit is crossed while streaming, the ZipError is thrown even when `onEntry` swallowed the
 * stream error or wrapped it in its own.
 */
export async function readZipSafely(file: string, options: ZipReadOptions, onEntry: (entry: ZipCsvEntry) => Promise<void>): Promise<ZipReadResult> {
  const { signal, ...limits } = options;
  const max = resolveLimits(limits);
  const { zip, closed } = await openZip(file);
  try {
    const { csv, skipped } = await inspect(zip, max);
    // The last step of the first pass: every CSV entry inflated whole, its bytes thrown away.
    await eachGuarded(zip, csv, max, async (_entry, _name, stream) => {
      signal?.throwIfAborted();
      for await (const _ of stream) signal?.throwIfAborted();
    });
    const entries = await eachGuarded(zip, csv, max, (entry, name, stream) => onEntry({ name, size: entry.uncompressedSize, stream }));
    return { entries, skipped };
  } finally {
    zip.close();
    // Returning only once the file is closed lets the caller delete it straight away.
    await closed;
  }
}

function resolveLimits(limits: Partial<ZipLimits>): ZipLimits {
  // Spread alone would let an explicit `undefined` erase a default.
  const defined = Object.fromEntries(Object.entries(limits).filter(([, v]) => v !== undefined));
  return { ...defaultZipLimits, ...defined };
}

interface OpenZip {
  zip: ZipFile;
  /** Settles once the file handle is closed, which yauzl does after `zip.close()` and the last stream. */
  closed: Promise<void>;
}

async function openZip(file: string): Promise<OpenZip> {
  // A file that cannot be opened at all (ENOENT, EACCES) is the caller's problem, not the
  // archive's: those errors pass through untouched.
  const handle = await open(file, 'r');
  const reader = new FileReader(handle);
  try {
    const { size } = await handle.stat();
    const zip = await new Promise<ZipFile>((resolve, reject) => {
      yauzl.fromRandomAccessReader(
        reader,
        size,
        {
          lazyEntries: true,
          // Kept open between the two passes; closed in readZipSafely's finally.
          autoClose: false,
          // Names are decoded and checked here, so unsafe names get ZIP_UNSAFE_PATH rather than
          // yauzl's generic error.
          decodeStrings: false,
          validateEntrySizes: true,
        },
        (err, zip) => (err ? reject(asZipError(err)) : resolve(zip)),
      );
    });
    // yauzl reports a failure to close the file here; with no listener it would be thrown.
    zip.on('error', () => undefined);
    return { zip, closed: reader.closed };
  } catch (err) {
    await handle.close();
    throw err;
  }
}

/**
 * Serves yauzl's reads from one FileHandle. yauzl's own fd reader crashes the process
 * ("Cannot read properties of null (reading 'fd')") when an entry stream is destroyed while its
 * read is queued, which happens whenever a caller stops reading an entry early. These streams are
 * safe to destroy at any time, and the handle closes once yauzl releases its last reference
 * (FileHandle.close waits for reads in flight).
 */
class FileReader extends yauzl.RandomAccessReader {
  readonly closed: Promise<void>;
  private markClosed!: () => void;

  constructor(private readonly handle: FileHandle) {
    super();
    this.closed = new Promise((resolve) => {
      this.markClosed = resolve;
    });
  }

  override _readStreamForRange(start: number, end: number): Readable {
    // Not handle.createReadStream(): destroying one of those closes the shared handle.
    const handle = this.handle;
    let position = start;
    return new Readable({
      highWaterMark: readChunkBytes,
      read(size) {
        // yauzl's `end` is exclusive.
        const length = Math.min(size, end - position);
        if (length <= 0) {
          this.push(null);
          return;
        }
        const chunk = Buffer.allocUnsafe(length);
        handle.read(chunk, 0, length, position).then(
          ({ bytesRead }) => {
            position += bytesRead;
            // A short file ends the range early; yauzl's byte counter turns that into an error.
            this.push(bytesRead > 0 ? chunk.subarray(0, bytesRead) : null);
          },
          (err: Error) => this.destroy(err),
        );
      },
    });
  }

  override read(buffer: Buffer, offset: number, length: number, position: number, callback: (err: Error | null) => void): void {
    // yauzl reads a second argument, the byte count, to detect a truncated file; its typings omit it.
    const done = callback as (err: Error | null, bytesRead?: number) => void;
    readFully(this.handle, buffer, offset, length, position).then(
      (bytesRead) => done(null, bytesRead),
      (err: Error) => done(err),
    );
  }

  override close(callback: (err: Error | null) => void): void {
    this.handle
      .close()
      .then(
        () => callback(null),
        (err: Error) => callback(err),
      )
      .finally(() => this.markClosed());
  }
}

async function readFully(handle: FileHandle, buffer: Buffer, offset: number, length: number, position: number): Promise<number> {
  let total = 0;
  while (total < length) {
    const { bytesRead } = await handle.read(buffer, offset + total, length - total, position + total);
    if (bytesRead === 0) break;
    total += bytesRead;
  }
  return total;
}

interface CsvEntry {
  entry: Entry;
  name: string;
}

/**
 * First pass: the central directory, then the first bytes of each CSV entry. Nothing reaches the
 * caller, so any refusal here means nothing was ingested.
 */
async function inspect(zip: ZipFile, max: ZipLimits): Promise<{ csv: CsvEntry[]; skipped: ZipReadResult['skipped'] }> {
  // Cheap to check before reading any entry: the end-of-central-directory record states the count
  // and yauzl reads exactly that many.
  if (zip.entryCount > max.maxEntries) {
    throw new ZipError('ZIP_TOO_MANY_ENTRIES', `Archive has ${zip.entryCount} entries; the limit is ${max.maxEntries} entries`);
  }
  const csv: CsvEntry[] = [];
  const skipped: ZipReadResult['skipped'] = [];
  // By case-folded name: `a.csv` and `A.CSV` are one file wherever the archive may be unpacked.
  const seen = new Map<string, string>();
  let declaredTotalBytes = 0;
  try {
    for await (const entry of zip.eachEntry()) {
      const name = entryName(entry);
      checkEntryRules(entry, name);
      if (name.endsWith('/')) continue;
      const folded = foldName(name);
      const earlier = seen.get(folded);
      if (earlier === name) {
        throw new ZipError('ZIP_UNSAFE_PATH', `Entry ${quote(name)} appears more than once in the archive`, name);
      }
      if (earlier !== undefined) {
        throw new ZipError(
          'ZIP_UNSAFE_PATH',
          `Entry ${quote(name)} differs from entry ${quote(earlier)} only by letter case; names must differ in more than case`,
          name,
        );
      }
      seen.set(folded, name);
      if (isSystemFile(name)) {
        skipped.push({ name, reason: 'SYSTEM_FILE' });
        continue;
      }
      const archiveExtension = nestedArchiveExtension.exec(name)?.[0];
      if (archiveExtension) {
        throw new ZipError('ZIP_NESTED_ARCHIVE', `Entry ${quote(name)} is an archive (${archiveExtension}); nested archives are not accepted`, name);
      }
      if (!/\.csv$/i.test(name)) {
        skipped.push({ name, reason: 'NOT_CSV' });
        continue;
      }
      if (entry.compressionMethod !== storedMethod && entry.compressionMethod !== deflateMethod) {
        throw new ZipError(
          'ZIP_INVALID',
          `Entry ${quote(name)} uses compression method ${entry.compressionMethod}; only stored (0) and deflate (8) are supported`,
          name,
        );
      }
      checkRatio(name, entry.uncompressedSize, entry.compressedSize, max);
      declaredTotalBytes += entry.uncompressedSize;
      checkTotal(name, declaredTotalBytes, max);
      csv.push({ entry, name });
    }
  } catch (err) {
    throw asZipError(err);
  }
  // After the central directory pass, so the cheap rules have covered every entry first.
  for (const { entry, name } of csv) {
    const format = archiveFormatOf(await readHead(zip, entry, name));
    if (format) {
      throw new ZipError('ZIP_NESTED_ARCHIVE', `Entry ${quote(name)} contains ${format} data, not CSV; nested archives are not accepted`, name);
    }
  }
  return { csv, skipped };
}

/** Case-folded name: `A.CSV` = `a.csv` (upper then lower also folds `ß` = `SS`), composed = decomposed accents. */
function foldName(name: string): string {
  return name.normalize('NFC').toUpperCase().toLowerCase();
}

/**
 * Hands each CSV entry's guarded stream (limits on the actual bytes, CRC-32 at its end: see
 * EntryGuard) to `use`, one after the other, and returns the bytes read from each. Each call gets
 * a budget of its own: the second pass counts again from zero. If a limit is crossed while
 * streaming, that ZipError is thrown even when `use` swallowed the stream error or wrapped it.
 */
async function eachGuarded(
  zip: ZipFile,
  csv: CsvEntry[],
  max: ZipLimits,
  use: (entry: Entry, name: string, stream: Readable) => Promise<void>,
): Promise<ZipReadResult['entries']> {
  const budget: InflateBudget = { totalBytes: 0 };
  const entries: ZipReadResult['entries'] = [];
  for (const { entry, name } of csv) {
    const guarded = await openGuarded(zip, entry, name, max, budget);
    try {
      await use(entry, name, guarded.stream);
    } catch (err) {
      throw guarded.failure() ?? err;
    } finally {
      // The caller may stop early; release the file handle and the inflater either way.
      guarded.stream.destroy();
    }
    const failure = guarded.failure();
    if (failure) throw failure;
    entries.push({ name, size: guarded.bytesRead() });
  }
  return entries;
}

/** The first `sniffBytes` inflated bytes of an entry (fewer if it is shorter). */
async function readHead(zip: ZipFile, entry: Entry, name: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  // Breaking out of the loop destroys the stream, which stops the inflater and the file read.
  for await (const chunk of await openEntry(zip, entry, name, new PassThrough())) {
    chunks.push(chunk as Buffer);
    total += (chunk as Buffer).length;
    if (total >= sniffBytes) break;
  }
  return Buffer.concat(chunks).subarray(0, sniffBytes);
}

const storedMethod = 0;
const deflateMethod = 8;
const encryptedFlag = 0x0001;
const fileTypeMask = 0o170000;
const symlinkType = 0o120000;

/** Rules for every entry, CSV or not, folder or file. */
function checkEntryRules(entry: Entry, name: string): void {
  const problem = pathProblem(name);
  if (problem) throw new ZipError('ZIP_UNSAFE_PATH', `Entry ${quote(name)} has an unsafe path: ${problem}`, name);
  // The high 16 bits hold a Unix mode for archives made on Unix or macOS; checked whatever the
  // "made by" host says, since that byte is as easy to forge as the mode.
  if (((entry.externalFileAttributes >>> 16) & fileTypeMask) === symlinkType) {
    throw new ZipError('ZIP_SYMLINK', `Entry ${quote(name)} is a symbolic link; links are not accepted`, name);
  }
  if (entry.generalPurposeBitFlag & encryptedFlag) {
    throw new ZipError('ZIP_ENCRYPTED', `Entry ${quote(name)} is encrypted; encrypted archives are not accepted`, name);
  }
}

/**
 * The name as the archive means it: the Info-ZIP Unicode Path field wins over the raw name when
 * present (as in every extractor), so that is the one checked. Backslashes are kept (strict mode)
 * so they can be refused rather than silently turned into folders.
 */
function entryName(entry: Entry): string {
  return yauzl.getFileNameLowLevel(entry.generalPurposeBitFlag, entry.fileNameRaw, entry.extraFields, true);
}

function pathProblem(name: string): string | undefined {
  if (name === '') return 'empty name';
  // C0, DEL and C1 controls: they rewrite terminals and logs, and no file system needs them.
  if (/[\u0000-\u001f\u007f-\u009f]/.test(name)) return name.includes('\0') ? 'contains NUL' : 'contains a control character';
  if (name.includes('\\')) return 'contains a backslash';
  if (name.startsWith('/')) return 'absolute path';
  if (/^[A-Za-z]:/.test(name)) return 'drive letter';
  // A folder entry ends in "/", leaving one empty last segment; any other empty segment is "//".
  const segments = name.endsWith('/') ? name.slice(0, -1).split('/') : name.split('/');
  for (const segment of segments) {
    if (segment === '..') return '".." segment';
    if (segment === '.') return '"." segment';
    if (segment === '') return 'empty segment';
  }
  return undefined;
}

function isSystemFile(name: string): boolean {
  const segments = name.split('/');
  return segments[0] === '__MACOSX' || segments.some((s) => s.startsWith('.'));
}

/** Archive and compressed-file extensions refused by name (by content: see `archiveSignatures`). */
const nestedArchiveExtension = /\.(zip|gz|tgz|tar|7z|rar|bz2|tbz2?|xz|txz|zst)$/i;

function checkRatio(name: string, uncompressedBytes: number, compressedBytes: number, max: ZipLimits): void {
  if (uncompressedBytes <= max.ratioExemptBytes) return;
  if (uncompressedBytes <= max.maxCompressionRatio * compressedBytes) return;
  const ratio = compressedBytes > 0 ? Math.round(uncompressedBytes / compressedBytes) : Infinity;
  throw new ZipError(
    'ZIP_BOMB',
    `Entry ${quote(name)} expands ${ratio}:1 (${bytes(compressedBytes)} to at least ${bytes(uncompressedBytes)}); ` +
      `the limit is ${max.maxCompressionRatio}:1 for entries over ${bytes(max.ratioExemptBytes)}`,
    name,
  );
}

function checkTotal(name: string, totalBytes: number, max: ZipLimits): void {
  if (totalBytes <= max.maxTotalBytes) return;
  throw new ZipError(
    'ZIP_TOO_LARGE',
    `Entry ${quote(name)} brings the archive's uncompressed CSV size to at least ${bytes(totalBytes)}; ` + `the limit is ${bytes(max.maxTotalBytes)}`,
    name,
  );
}

/** Bytes inflated so far across all entries of one archive. */
interface InflateBudget {
  totalBytes: number;
}

interface GuardedStream {
  stream: Readable;
  /** The first ZipError raised while streaming, whoever raised it. */
  failure(): ZipError | undefined;
  bytesRead(): number;
}

/** Second pass: one entry's bytes, counted by an EntryGuard before the caller sees them. */
async function openGuarded(zip: ZipFile, entry: Entry, name: string, max: ZipLimits, budget: InflateBudget): Promise<GuardedStream> {
  const guard = new EntryGuard(name, entry, max, budget);
  let failure: ZipError | undefined;
  // Also keeps an error the caller never listens for from crashing the process. Only ZipErrors
  // count: the guard's own and the read and inflate failures (openEntry wraps them). Anything else
  // is the caller destroying the stream, such as the AbortError of a `for await` left early (a
  // CSV that fails on its header), which says nothing about the archive.
  guard.on('error', (err: unknown) => {
    if (err instanceof ZipError) failure ??= err;
  });
  await openEntry(zip, entry, name, guard);
  return { stream: guard, failure: () => failure, bytesRead: () => guard.bytesRead };
}

/**
 * Pipes an entry's inflated bytes into `sink`. Inflated here, not by yauzl, so the sink sees every
 * byte before any size assertion. Read and inflate failures reach `sink` as ZipErrors; destroying
 * `sink` (end, failure, or a caller that stops early) releases the file range and zlib's memory.
 */
async function openEntry<T extends Transform>(zip: ZipFile, entry: Entry, name: string, sink: T): Promise<T> {
  let raw: Readable;
  try {
    raw = await zip.openReadStreamPromise(entry, { decodeFileData: false });
  } catch (err) {
    sink.destroy();
    throw asZipError(err, name);
  }
  const inflater = entry.compressionMethod === deflateMethod ? zlib.createInflateRaw() : undefined;
  const upstreamFailed = (err: unknown): void => {
    sink.destroy(asZipError(err, name));
  };
  raw.on('error', upstreamFailed);
  inflater?.on('error', upstreamFailed);
  sink.once('close', () => {
    raw.destroy();
    inflater?.destroy();
  });
  (inflater ? raw.pipe(inflater) : raw).pipe(sink);
  return sink;
}

/** Size of one read from the archive file. */
const readChunkBytes = 64 * KiB;

/**
 * Inflated bytes examined for archive signatures: enough for a whole tar header, whose `ustar`
 * magic sits at offset 257.
 */
const sniffBytes = 512;

/** Counts inflated bytes against the limits and the declared size, and checks their CRC-32. */
class EntryGuard extends Transform {
  bytesRead = 0;
  private crc = 0;

  constructor(
    private readonly entryName: string,
    private readonly entry: Entry,
    private readonly max: ZipLimits,
    private readonly budget: InflateBudget,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.count(chunk.length);
      this.crc = crc32(chunk, this.crc);
      callback(null, chunk);
    } catch (err) {
      callback(err as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    if (this.bytesRead < this.entry.uncompressedSize) {
      callback(
        new ZipError(
          'ZIP_INVALID',
          `Entry ${quote(this.entryName)} ends after ${bytes(this.bytesRead)}; its header declares ${bytes(this.entry.uncompressedSize)}`,
          this.entryName,
        ),
      );
      return;
    }
    // After the size: an entry cut short is reported as that, not as a checksum mismatch.
    if (this.crc !== this.entry.crc32) {
      callback(
        new ZipError(
          'ZIP_CORRUPT',
          `Entry ${quote(this.entryName)} is corrupt: its data has CRC-32 ${hex32(this.crc)}, its header records ${hex32(this.entry.crc32)}`,
          this.entryName,
        ),
      );
      return;
    }
    callback();
  }

  private count(chunkBytes: number): void {
    this.bytesRead += chunkBytes;
    this.budget.totalBytes += chunkBytes;
    const name = this.entryName;
    // Past the declared size the header has lied, and the declared size is what pass one approved.
    if (this.bytesRead > this.entry.uncompressedSize) {
      throw new ZipError('ZIP_BOMB', `Entry ${quote(name)} inflates past the ${bytes(this.entry.uncompressedSize)} its header declares`, name);
    }
    checkRatio(name, this.bytesRead, this.entry.compressedSize, this.max);
    checkTotal(name, this.budget.totalBytes, this.max);
  }
}

function archiveFormatOf(head: Buffer): string | undefined {
  return archiveSignatures.find((s) => s.matches(head))?.format;
}

const startsWith = (head: Buffer, offset: number, bytes: number[] | string): boolean => {
  const expected = typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : Buffer.from(bytes);
  return head.length >= offset + expected.length && head.subarray(offset, offset + expected.length).equals(expected);
};

/** Signatures of archive and compressed formats; long enough that no CSV plausibly starts with one. */
const archiveSignatures: Array<{ format: string; matches: (head: Buffer) => boolean }> = [
  { format: 'ZIP', matches: (h) => ['PK\x03\x04', 'PK\x05\x06', 'PK\x07\x08'].some((m) => startsWith(h, 0, m)) },
  { format: 'gzip', matches: (h) => startsWith(h, 0, [0x1f, 0x8b, 0x08]) },
  { format: '7z', matches: (h) => startsWith(h, 0, [0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c]) },
  { format: 'RAR', matches: (h) => startsWith(h, 0, 'Rar!\x1a\x07') },
  { format: 'xz', matches: (h) => startsWith(h, 0, [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]) },
  { format: 'zstd', matches: (h) => startsWith(h, 0, [0x28, 0xb5, 0x2f, 0xfd]) },
  // "BZh" + block size digit + the magic of a first block or of an empty stream's end.
  { format: 'bzip2', matches: (h) => /^BZh[1-9](1AY&SY|\x17rE8P\x90)/.test(h.subarray(0, 10).toString('latin1')) },
  { format: 'tar', matches: (h) => startsWith(h, 257, 'ustar') },
];

/** Keeps ZipErrors; anything yauzl or zlib raises means the archive is not a readable ZIP. */
function asZipError(err: unknown, name?: string): ZipError {
  if (err instanceof ZipError) return err;
  const message = err instanceof Error ? err.message : String(err);
  // yauzl refuses PKWARE strong encryption before the entry reaches checkEntryRules.
  if (/strong encryption/i.test(message)) {
    return new ZipError('ZIP_ENCRYPTED', `Archive uses strong encryption; encrypted archives are not accepted`, name, { cause: err });
  }
  const where = name ? `entry ${quote(name)}` : 'archive';
  return new ZipError('ZIP_INVALID', `Not a readable ZIP (${where}): ${message}`, name, { cause: err });
}

/**
 * CRC-32 (the ZIP polynomial), continuing from `value`. zlib's own since Node 20.15; the table
 * version only runs on older Node 20 releases.
 */
const crc32: (data: Buffer, value: number) => number =
  typeof (zlib as { crc32?: unknown }).crc32 === 'function' ? (data, value) => zlib.crc32(data, value) : tableCrc32;

let crcTable: Uint32Array | undefined;

function tableCrc32(data: Buffer, value: number): number {
  crcTable ??= Uint32Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  let crc = ~value >>> 0;
  for (const byte of data) crc = crcTable[(crc ^ byte) & 0xff]! ^ (crc >>> 8);
  return ~crc >>> 0;
}

function hex32(n: number): string {
  return n.toString(16).padStart(8, '0');
}

function quote(name: string): string {
  return JSON.stringify(name);
}

function bytes(n: number): string {
  if (n >= GiB) return `${n} bytes (${+(n / GiB).toFixed(2)} GiB)`;
  if (n >= MiB) return `${n} bytes (${+(n / MiB).toFixed(2)} MiB)`;
  if (n >= KiB) return `${n} bytes (${+(n / KiB).toFixed(2)} KiB)`;
  return `${n} bytes`;
}
