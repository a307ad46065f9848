import type { Readable, Writable } from 'node:stream';
import Papa from 'papaparse';
import { MiB } from '../env';
import type { CompiledSpec } from './contract';
import { COPY_NULL, copyEscape, csvEscape, csvLine, safeCsvLine } from './csv-escape';
import { isUtf8 } from 'node:buffer';
import {
  checkHeader,
  compileCellChecks,
  INVALID_UTF8_MARK,
  printable,
  compileRowValidator,
  type CellCheck,
  type HeaderMapping,
  type HeaderOptions,
  type HeaderProblem,
  type IgnoredColumn,
  type RowError,
  type RowResult,
  type RowValidator,
} from './row-validator';
import { KeyIndex } from './key-index';
import {
  bomEncoding,
  detectDelimiter,
  strayQuoteRows,
  STRAY_QUOTE_MESSAGE,
  Transcoder,
  UnsupportedEncodingError,
  type CsvDelimiter,
  type CsvDialect,
  type CsvDialectOptions,
  type CsvEncoding,
} from './csv-dialect';
import {
  binaryTypeOf,
  ByteSink,
  FastKind,
  booleanBytes,
  canonicalText,
  dayFirstDays,
  enumIndex,
  isoDateDays,
  isoOfDays,
  NOT_A_DATE,
  plainDecimal,
  PGCOPY_HEADER,
  PGCOPY_TRAILER,
  planFastColumns,
  plainDigits,
  uuidField,
  writeBinaryField,
  writeBinaryRow,
  writeInt32,
  writeUint53,
  type FastColumn,
} from './fast-path';

/**
 * Streaming CSV -> validated COPY text.
 *
 * Parser choice, measured by bench/csv-pipeline.bench.ts (1M rows x 8 columns, 45 MiB, Node 20):
 * papaparse's core `Parser` driven chunk by chunk parses ~2.4M rows/s; fast-csv ~0.25M rows/s
 * (one 'data' event and object per row). The whole pipeline here (parse + validation + 3-column
 * unique key + COPY text) runs at ~430-460k rows/s, about 1.8x fast-csv's parse alone.
 * The core `Parser` takes a whole chunk per call (a `String.split` fast path when the chunk has
 * no quote) and returns an array of rows. papaparse's own Node streamer is not used: it decodes
 * each Buffer separately (breaking UTF-8 characters split across chunks) and counts no bytes.
 */

export interface CsvPipelineSinks {
  /** Receives COPY text-format lines: `fileId \t line \t col1 \t ... \n`. Not ended by the pipeline. */
  copy: Writable;
  /** Valid rows as CSV, original header and cell text (the `process_input/...` file). Not ended. */
  validCsv?: Writable;
  /** Invalid rows as CSV plus `error_description`, formula-neutralised (the `ingestion_error/...` file). Not ended. */
  errorCsv?: Writable;
  /**
   * Called for each invalid row, in file order, with the header's mapping (where each spec
   * column's cell is in `row.cells`); a returned promise is awaited before going on.
   */
  onInvalid?: (row: InvalidRow, mapping: HeaderMapping) => void | Promise<void>;
}

export interface InvalidRow {
  /** Physical line where the record starts; the header is line 1. */
  line: number;
  errors: RowError[];
  /** The record's cells as parsed. */
  cells: string[];
  /** The record re-serialised as one CSV line (equivalent to the source text, not byte-identical). */
  raw: string;
}

export interface CsvPipelineOptions {
  /** Written as the first COPY column of every row (`_file_id`). */
  fileId: string;
  /** Aborting stops reading at the next chunk, destroys `input` and rejects with an AbortError. */
  signal?: AbortSignal;
  /** Called with running counts at most once per `progressEveryRows` records. */
  onProgress?: (counts: CsvPipelineCounts) => void;
  /** Records between progress calls. Default 10,000 rows. */
  progressEveryRows?: number;
  /** What to do with header cells that name no spec column. Default `reject`. */
  unknownColumns?: HeaderOptions['unknownColumns'];
  /** Header cell (trimmed, lower-cased) -> spec column index (see resolveColumnMap). */
  columnMap?: HeaderOptions['columnMap'];
  /**
   * Longest record, in UTF-16 characters. An unterminated quote makes the rest of the file one
   * record, which is re-parsed with every chunk until it ends; this bound keeps that from growing
   * memory and time without limit. Default 1 Mi characters.
   */
  maxRecordLength?: number;
  /** A validator already compiled for `spec` (compile once per spec, reuse across files). */
  validator?: RowValidator;
  /**
   * `text` (default): `sinks.copy` receives COPY text format (`fileId \t line \t ... \n`).
   * `binary`: PostgreSQL's binary COPY format, header and trailer included, for
   * `COPY ... FROM STDIN (FORMAT binary)`; `fileId` must then be a UUID. PostgreSQL parses no
   * text at all (no date or number input functions), which makes its side of the load cheaper.
   */
  copyFormat?: 'text' | 'binary';
  /**
   * Use the byte-level fast path for plain regions (default true). `false` sends every record
   * through papaparse and the string validator: the reference the fast path is tested against.
   */
  fastPath?: boolean;
  /**
   * Lead every error-file record with a `_line` column (the record's line number), as the
   * corrections round-trip needs to put fixed rows back where they were. Default false.
   */
  errorLineColumn?: boolean;
  /** Encoding and delimiter of the file; what is absent is detected (see csv-dialect.ts). */
  dialect?: CsvDialectOptions;
}

export interface CsvPipelineCounts {
  /** Data records seen (blank lines and the header excluded). */
  total: number;
  valid: number;
  invalid: number;
  /** Input bytes read. */
  bytes: number;
}

export interface CsvPipelineResult extends CsvPipelineCounts {
  /** True when the file has no data record (0 bytes, blank, or a header only). */
  empty: boolean;
  /** The header cells as read (BOM removed); empty when the file is empty. */
  header: string[];
  /**
   * Header cells dropped under `unknownColumns: 'ignore'` (the first MAX_IGNORED_LISTED) and how
   * many in all; absent when none was.
   */
  ignored?: { columns: IgnoredColumn[]; count: number };
  /** How the file was read (detected or as asked). */
  dialect: CsvDialect;
}

export const DEFAULT_PROGRESS_EVERY_ROWS = 10_000;
export const DEFAULT_MAX_RECORD_LENGTH = 1 * MiB;

/** Longest message built from a list of problems, in characters. */
export const MAX_MESSAGE_LENGTH = 2000;

/** `prefix` and the problems' messages joined, saying how many there are in all; at most MAX_MESSAGE_LENGTH. */
export function problemsMessage(prefix: string, messages: readonly string[], count = messages.length): string {
  const more = count > messages.length ? ` (${count} problems; the first ${messages.length} are listed)` : '';
  const text = `${prefix}${more}: ${messages.join('; ')}`;
  return text.length > MAX_MESSAGE_LENGTH ? `${text.slice(0, MAX_MESSAGE_LENGTH - 3)}...` : text;
}

/**
 * The header does not fit the spec; nothing was written to the COPY sink. `problems` lists at most
 * MAX_PROBLEMS_LISTED of them; `problemCount` counts them all.
 */
export class HeaderError extends Error {
  readonly code = 'INVALID_HEADER';
  readonly problemCount: number;
  constructor(
    readonly problems: HeaderProblem[],
    problemCount = problems.length,
  ) {
    super(problemsMessage('The CSV header does not match the spec', problems.map((p) => p.message), problemCount));
    this.name = 'HeaderError';
    this.problemCount = problemCount;
  }
}

/** The input is not text at all (an archive, an executable, an image): refused before any row. */
export class NotCsvError extends Error {
  readonly code = 'NOT_A_CSV';
  constructor(readonly looksLike: string) {
    super(`The file is not a CSV: it looks like ${looksLike}`);
    this.name = 'NotCsvError';
  }
}

export { UnsupportedEncodingError };

/**
 * The file mixes CR-only line ends with LF or CRLF ones, so its records cannot be told apart the
 * same way everywhere (a CR-only file read as LF merges its records into one cell). Refused.
 */
export class MixedLineEndingsError extends Error {
  readonly code = 'MIXED_LINE_ENDINGS';
  constructor(
    readonly line: number,
    readonly detected: string,
  ) {
    super(`Line ${line} ends with a different line break than the file's first line (${detected}); use one kind of line ending throughout`);
    this.name = 'MixedLineEndingsError';
  }
}

/** One record exceeds `maxRecordLength` (usually an unterminated quote). */
export class RecordTooLargeError extends Error {
  readonly code = 'RECORD_TOO_LARGE';
  constructor(
    readonly line: number,
    readonly limit: number,
  ) {
    super(`The record starting at line ${line} exceeds ${limit} characters; check for an unterminated quote`);
    this.name = 'RecordTooLargeError';
  }
}

export class AbortError extends Error {
  readonly code = 'ABORT_ERR';
  constructor(cause?: unknown) {
    super('The CSV pipeline was aborted', { cause });
    this.name = 'AbortError';
  }
}

export type Newline = '\n' | '\r\n' | '\r';

/** Bytes looked at before the first record is read, to refuse binary files and UTF-16/32. */
export const SNIFF_BYTES = 1024;

/** Magic numbers of files people upload as CSV by mistake; each holds bytes no CSV starts with. */
const MAGIC: Array<[string, number[]]> = [
  ['a ZIP archive (an .xlsx or .zip file)', [0x50, 0x4b, 0x03, 0x04]],
  ['an empty ZIP archive', [0x50, 0x4b, 0x05, 0x06]],
  ['a spanned ZIP archive', [0x50, 0x4b, 0x07, 0x08]],
  ['a gzip file', [0x1f, 0x8b]],
  ['an ELF executable', [0x7f, 0x45, 0x4c, 0x46]],
  ['a PDF document', [0x25, 0x50, 0x44, 0x46, 0x2d]],
  ['a PNG image', [0x89, 0x50, 0x4e, 0x47]],
  ['a JPEG image', [0xff, 0xd8, 0xff]],
  ['a legacy Office document (an .xls file)', [0xd0, 0xcf, 0x11, 0xe0]],
  ['an xz archive', [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
  ['a 7-Zip archive', [0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c]],
  ['a zstd archive', [0x28, 0xb5, 0x2f, 0xfd]],
  ['a bzip2 archive', [0x42, 0x5a, 0x68]],
  ['a Mach-O executable', [0xcf, 0xfa, 0xed, 0xfe]],
  ['a WebAssembly module', [0x00, 0x61, 0x73, 0x6d]],
  ['an SQLite database', [0x53, 0x51, 0x4c, 0x69, 0x74, 0x65, 0x20, 0x66, 0x6f, 0x72, 0x6d, 0x61, 0x74]],
];

const startsWith = (b: Buffer, magic: readonly number[]) => b.length >= magic.length && magic.every((m, i) => b[i] === m);

/** What `head` is by its magic number (a known binary format), or null. */
export function binaryMagic(head: Buffer): string | null {
  for (const [what, magic] of MAGIC) {
    // bzip2 is "BZh" and a block size digit: "BZh" alone could start a header cell.
    if (startsWith(head, magic) && (magic[0] !== 0x42 || (head[3]! >= 0x31 && head[3]! <= 0x39 && head[4] === 0x31))) return what;
  }
  return null;
}

/**
 * Refuses, from the first bytes of a file, what is not UTF-8 text: UTF-16/UTF-32 (by BOM, or by
 * NULs in every other byte), known binary formats (magic numbers), and anything else with many
 * control bytes. A single NUL is left to the row checks (INVALID_CHARACTER).
 */
export function sniff(head: Buffer): void {
  if (startsWith(head, [0xff, 0xfe, 0x00, 0x00])) throw new UnsupportedEncodingError('UTF-32LE');
  if (startsWith(head, [0x00, 0x00, 0xfe, 0xff])) throw new UnsupportedEncodingError('UTF-32BE');
  if (startsWith(head, [0xff, 0xfe])) throw new UnsupportedEncodingError('UTF-16LE');
  if (startsWith(head, [0xfe, 0xff])) throw new UnsupportedEncodingError('UTF-16BE');
  const what = binaryMagic(head);
  if (what !== null) throw new NotCsvError(what);
  let evenNul = 0;
  let oddNul = 0;
  let control = 0;
  for (let i = 0; i < head.length; i++) {
    const b = head[i]!;
    if (b === 0) {
      if (i % 2 === 0) evenNul++;
      else oddNul++;
    }
    if (b < 9 || (b > 13 && b < 32 && b !== 27)) control++;
  }
  const pairs = head.length >> 1;
  if (pairs >= 2) {
    // ASCII text in UTF-16 has a NUL in every other byte: odd offsets for LE, even for BE.
    if (oddNul * 2 >= pairs && evenNul * 10 < pairs) throw new UnsupportedEncodingError('UTF-16LE (no BOM)');
    if (evenNul * 2 >= pairs && oddNul * 10 < pairs) throw new UnsupportedEncodingError('UTF-16BE (no BOM)');
  }
  if (control >= 2 && control * 16 >= head.length) throw new NotCsvError(`binary data (${control} control bytes in the first ${head.length})`);
}

/**
 * `buf[start, end)` as text; bytes that are not valid UTF-8 become INVALID_UTF8_MARK (one per bad
 * sequence) instead of U+FFFD, so a record holding them is refused, not stored. Valid input (the
 * usual case) is decoded by Node in one call; only an invalid region is walked here.
 */
export function decodeMarked(buf: Buffer, start = 0, end = buf.length): string {
  const part = buf.subarray(start, end);
  if (isUtf8(part)) return part.toString('utf8');
  let out = '';
  let from = 0;
  let i = 0;
  const n = part.length;
  while (i < n) {
    const b = part[i]!;
    if (b < 0x80) {
      i++;
      continue;
    }
    const len = utf8SequenceLength(part, i);
    if (len > 0) {
      i += len;
      continue;
    }
    out += part.toString('utf8', from, i) + INVALID_UTF8_MARK;
    i++;
    // Continuation bytes of the broken sequence are part of the same mark.
    while (i < n && (part[i]! & 0xc0) === 0x80) i++;
    from = i;
  }
  return out + part.toString('utf8', from, n);
}

/** Length of the well-formed UTF-8 sequence at `i` (RFC 3629: no overlongs, no surrogates), or 0. */
function utf8SequenceLength(b: Buffer, i: number): number {
  const c = b[i]!;
  const cont = (k: number, lo = 0x80, hi = 0xbf) => i + k < b.length && b[i + k]! >= lo && b[i + k]! <= hi;
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c === 0xe0) return cont(1, 0xa0) && cont(2) ? 3 : 0;
  if ((c >= 0xe1 && c <= 0xec) || c === 0xee || c === 0xef) return cont(1) && cont(2) ? 3 : 0;
  if (c === 0xed) return cont(1, 0x80, 0x9f) && cont(2) ? 3 : 0;
  if (c === 0xf0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (c >= 0xf1 && c <= 0xf3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (c === 0xf4) return cont(1, 0x80, 0x8f) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}

/** Text with INVALID_UTF8_MARKs back to bytes; each mark becomes 0xFF, which is never valid UTF-8. */
export function encodeMarked(text: string): Buffer {
  if (text.indexOf(INVALID_UTF8_MARK) === -1) return Buffer.from(text, 'utf8');
  const parts = text.split(INVALID_UTF8_MARK);
  const bytes: Buffer[] = [];
  parts.forEach((p, k) => {
    if (k > 0) bytes.push(INVALID_BYTE);
    bytes.push(Buffer.from(p, 'utf8'));
  });
  return Buffer.concat(bytes);
}
const INVALID_BYTE = Buffer.from([0xff]);

const EMPTY = Buffer.alloc(0);
export const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

export function startsWithBom(buf: Buffer): boolean {
  return buf.length >= BOM.length && buf[0] === BOM[0] && buf[1] === BOM[1] && buf[2] === BOM[2];
}

/** A blank (or whitespace-only) line: skipped wherever it is, as spreadsheets leave them. */
export function isBlank(cells: readonly string[]): boolean {
  return cells.length === 1 && cells[0]!.trim() === '';
}
/** Fast-path cell flags: a byte below 32 or a backslash; a byte of a multi-byte character. */
const SPECIAL_BYTES = 1;
const HIGH_BYTES = 2;

/** Writes `v` (a non-negative integer) in decimal at `o`; returns the offset after it. */
function writeUint(out: Buffer, o: number, v: number): number {
  let digits = 1;
  for (let t = v; t >= 10; t = Math.floor(t / 10)) digits++;
  let at = o + digits;
  for (let t = v; at > o; t = Math.floor(t / 10)) out[--at] = 48 + (t % 10);
  return o + digits;
}

/**
 * Reads a CSV from `input` (bytes, UTF-8, optional BOM, LF/CRLF/CR, RFC 4180 quoting), validates
 * every record against `spec`, writes valid rows to `sinks.copy` (and `sinks.validCsv`) and reports
 * invalid ones. Memory stays flat in the file size except for the unique-key set (see below).
 * Bytes that are not valid UTF-8 make their record an INVALID_UTF8 row error (never U+FFFD in a
 * stored value). Rejects with NotCsvError or UnsupportedEncodingError (from the first SNIFF_BYTES),
 * MixedLineEndingsError, HeaderError, RecordTooLargeError, AbortError, or a sink's error.
 */
export async function runCsvPipeline(
  input: Readable,
  spec: CompiledSpec,
  sinks: CsvPipelineSinks,
  opts: CsvPipelineOptions,
): Promise<CsvPipelineResult> {
  const run = new PipelineRun(spec, sinks, opts);
  const { signal } = opts;
  if (signal?.aborted) {
    input.destroy();
    throw new AbortError(signal.reason);
  }
  // Why destroy: a stalled upload would otherwise keep `for await` waiting after the abort.
  const onAbort = () => input.destroy(new AbortError(signal?.reason));
  signal?.addEventListener('abort', onAbort, { once: true });
  const detachSinks = run.watchSinks();
  try {
    for await (const chunk of input as AsyncIterable<Buffer | string>) {
      if (signal?.aborted) throw new AbortError(signal.reason);
      if (typeof chunk === 'string') {
        // A stream with setEncoding() delivers text: count its UTF-8 bytes and go the string way.
        run.counts.bytes += Buffer.byteLength(chunk);
        await run.feedText(chunk);
      } else {
        run.counts.bytes += chunk.byteLength;
        await run.feedRaw(chunk);
      }
    }
    await run.finish();
    return run.result();
  } finally {
    signal?.removeEventListener('abort', onAbort);
    detachSinks();
  }
}

/** The state of one pipeline run; split from the function so the hot loop reads as one method. */
class PipelineRun {
  readonly counts: CsvPipelineCounts = { total: 0, valid: 0, invalid: 0, bytes: 0 };
  private readonly validate: RowValidator;
  /** Value indexes (spec order) of the unique key columns. */
  private readonly keyIndexes: number[];
  /** 0..n-1 over the key: the fast path gathers key values in key order. */
  private readonly keyOrder: number[];
  /** Composite keys of this file's valid rows; memory grows with distinct keys (see KeyIndex). */
  private readonly seenKeys: KeyIndex | null;
  private readonly keyLabel: string;
  private readonly filePrefix: string;
  private readonly progressEvery: number;
  private readonly maxRecordLength: number;
  private sinkError: Error | null = null;

  private newline: Newline | null = null;
  private parser: Papa.Parser | null = null;
  /** Text after the last complete record of the previous chunk. */
  private pending = '';
  /** Physical line where the next record starts. */
  private nextLine = 1;
  private header: string[] | null = null;
  private mapping: HeaderMapping | null = null;
  private ignored: CsvPipelineResult['ignored'];
  private lastProgressAt = 0;
  /** Bytes that are not valid UTF-8 were seen (and marked): records are searched for the mark. */
  private marked = false;

  // Dialect (see csv-dialect.ts): decided from the first bytes and the header line.
  /** Raw bytes gathered until the encoding is decided; null once it is. */
  private rawHead: Buffer | null = EMPTY;
  /** Set when the file is not UTF-8: every raw chunk is transcoded to UTF-8 first. */
  private transcoder: Transcoder | null = null;
  private encoding: CsvEncoding = 'UTF_8';
  private bom = false;
  private delimiter: CsvDelimiter = ',';
  /** `delimiter` as a byte, for the fast path. */
  private delimiterByte = 44;

  // Byte mode (Buffer input): see feedBytes.
  private readonly checks: CellCheck[];
  private readonly useFast: boolean;
  /** Input bytes after the last complete line, not parsed yet. */
  private pendingBytes: Buffer = EMPTY;
  /** False until the leading BOM (if any) has been dropped. */
  private started = false;
  private fastColumns: FastColumn[] | null = null;
  private cellStarts = new Int32Array(0);
  private cellEnds = new Int32Array(0);
  private cellFlags = new Int32Array(0);
  private readonly prefixBytes: Buffer;
  /** COPY binary format (see CsvPipelineOptions.copyFormat). */
  private readonly binary: boolean;
  private readonly binaryTypes: ReturnType<typeof binaryTypeOf>[];
  private readonly fileIdField: Buffer;
  private readonly copyBytes = new ByteSink(128 * 1024);
  private readonly validBytes = new ByteSink(64 * 1024);

  constructor(
    private readonly spec: CompiledSpec,
    private readonly sinks: CsvPipelineSinks,
    private readonly opts: CsvPipelineOptions,
  ) {
    this.validate = opts.validator ?? compileRowValidator(spec);
    this.keyIndexes = spec.uniqueKey.map((k) => spec.columns.findIndex((c) => c.column === k));
    this.keyOrder = this.keyIndexes.map((_, k) => k);
    this.seenKeys = this.keyIndexes.length > 0 ? new KeyIndex() : null;
    this.keyLabel = spec.uniqueKey.join(',');
    this.filePrefix = `${copyEscape(opts.fileId)}\t`;
    this.progressEvery = Math.max(1, opts.progressEveryRows ?? DEFAULT_PROGRESS_EVERY_ROWS);
    this.maxRecordLength = opts.maxRecordLength ?? DEFAULT_MAX_RECORD_LENGTH;
    this.checks = compileCellChecks(spec);
    this.useFast = opts.fastPath !== false;
    this.prefixBytes = Buffer.from(this.filePrefix, 'utf8');
    this.binary = opts.copyFormat === 'binary';
    this.binaryTypes = spec.columns.map((c) => binaryTypeOf(c.type));
    this.fileIdField = this.binary ? uuidField(opts.fileId) : EMPTY;
    if (this.binary) {
      this.copyBytes.ensure(PGCOPY_HEADER.length);
      this.copyBytes.at += PGCOPY_HEADER.copy(this.copyBytes.buf, 0);
    }
  }

  /**
   * Sink 'error' events are captured and rethrown at the next write, so a failing COPY stops the
   * run instead of crashing the process on an unhandled 'error'.
   */
  watchSinks(): () => void {
    const onError = (err: Error) => {
      this.sinkError ??= err;
    };
    const streams = [this.sinks.copy, this.sinks.validCsv, this.sinks.errorCsv].filter((s): s is Writable => s !== undefined);
    for (const s of streams) s.on('error', onError);
    return () => {
      for (const s of streams) s.off('error', onError);
    };
  }

  /**
   * A raw chunk of the input. The first SNIFF_BYTES decide the encoding (a BOM, else the
   * `dialect.encoding` option, else UTF-8); a UTF-8 file is then read as it is (no extra pass),
   * any other is transcoded to UTF-8 chunk by chunk.
   */
  async feedRaw(chunk: Buffer): Promise<void> {
    if (this.rawHead === null) {
      await this.feedBytes(this.transcoder === null ? chunk : this.transcoder.write(chunk));
      return;
    }
    const head = this.rawHead.length === 0 ? chunk : Buffer.concat([this.rawHead, chunk]);
    if (head.length < SNIFF_BYTES) {
      this.rawHead = head;
      return;
    }
    this.rawHead = null;
    this.decideEncoding(head);
    await this.feedBytes(this.transcoder === null ? head : this.transcoder.write(head));
  }

  private decideEncoding(head: Buffer): void {
    const marked = bomEncoding(head);
    this.encoding = marked ?? this.opts.dialect?.encoding ?? 'UTF_8';
    this.bom = marked !== null;
    if (this.encoding === 'UTF_8') return;
    // Checked on the raw bytes: transcoded, a binary file's magic number would be lost.
    const what = binaryMagic(head.subarray(0, SNIFF_BYTES));
    if (what !== null) throw new NotCsvError(what);
    this.transcoder = new Transcoder(this.encoding);
  }

  /** A text chunk (a stream with an encoding set): the papaparse path. */
  async feedText(chunk: string): Promise<void> {
    // Text is decoded already: no encoding to decide (raw bytes gathered before it are read as UTF-8).
    if (this.rawHead !== null) {
      const head = this.rawHead;
      this.rawHead = null;
      if (head.length > 0) await this.feedBytes(head);
    }
    let text = chunk;
    if (this.pendingBytes.length > 0) {
      text = this.decode(this.pendingBytes) + text;
      this.pendingBytes = EMPTY;
    }
    if (!this.started) {
      this.bom = text.startsWith('\uFEFF');
      text = text.replace(/^\uFEFF/, '');
      this.started = true;
    }
    await this.feed(text, false);
  }

  /**
   * A byte chunk. The complete lines it ends (up to its last line break) form a region: a region
   * of plain lines (no quote, no stray CR, valid UTF-8) goes through the byte-level fast path,
   * anything else from the first line the fast path cannot take goes through papaparse, whose
   * unfinished record (an open quote) is kept as pending bytes for the next chunk.
   */
  async feedBytes(chunk: Buffer): Promise<void> {
    if (this.pending.length > 0) {
      // Text chunks came first (mixed input): continue in bytes.
      this.pendingBytes = encodeMarked(this.pending);
      this.pending = '';
    }
    let buf = chunk;
    if (this.pendingBytes.length > 0) {
      // Only the pending partial line is joined with the chunk's first line; the rest of the chunk
      // is not copied (a 1 GiB file is not copied once more). A record still open after that line
      // (an open quote) falls back to joining the whole chunk.
      const firstBreak = this.started && this.newline !== null ? chunk.indexOf(this.newline === '\r' ? 13 : 10) : -1;
      if (firstBreak === -1) {
        buf = Buffer.concat([this.pendingBytes, chunk]);
      } else {
        const head = Buffer.concat([this.pendingBytes, chunk.subarray(0, firstBreak + 1)]);
        this.pendingBytes = EMPTY;
        const open = await this.region(head, head.length);
        buf = open.length > 0 ? Buffer.concat([open, chunk.subarray(firstBreak + 1)]) : chunk.subarray(firstBreak + 1);
      }
    }
    if (!this.started) {
      // The first SNIFF_BYTES (or the whole file, if shorter: see finish) are judged first.
      if (buf.length < SNIFF_BYTES) {
        this.pendingBytes = buf;
        return;
      }
      this.start(buf);
      if (startsWithBom(buf)) {
        buf = buf.subarray(BOM.length);
        this.bom = true;
      }
    }
    let end = buf.lastIndexOf(this.newline === '\r' ? 13 : 10) + 1;
    if (end === 0 && this.newline === null) end = buf.lastIndexOf(13) + 1;
    if (end === 0) {
      this.pendingBytes = buf;
      if (buf.length > this.maxRecordLength) this.keepPending(buf.toString('utf8'));
      return;
    }
    const open = await this.region(buf, end);
    const rest = buf.subarray(end);
    this.pendingBytes = open.length > 0 ? Buffer.concat([open, rest]) : rest;
  }

  /**
   * Handles the complete lines `buf[0, end)`: the fast path as far as it goes, papaparse for the
   * rest. Returns the bytes of a record papaparse could not finish (an open quote), to be read
   * again with what follows.
   */
  private async region(buf: Buffer, end: number): Promise<Buffer> {
    let at = 0;
    if (this.fastColumns !== null && this.pending === '' && (this.newline === '\n' || this.newline === '\r\n') && isUtf8(buf.subarray(0, end))) {
      at = await this.fastRegion(buf, end);
    }
    if (at === end) {
      this.reportProgress();
      return EMPTY;
    }
    await this.feed(this.decode(buf, at, end), false);
    if (this.pending.length === 0) return EMPTY;
    const open = encodeMarked(this.pending);
    this.pending = '';
    return open;
  }

  /** The first bytes of the input: refused when they are not UTF-8 text (see sniff). */
  private start(head: Buffer): void {
    sniff(head.subarray(0, SNIFF_BYTES));
    this.started = true;
  }

  /** Bytes as text, invalid UTF-8 marked (and remembered: records are then searched for marks). */
  private decode(buf: Buffer, start = 0, end = buf.length): string {
    const text = decodeMarked(buf, start, end);
    if (!this.marked && text.indexOf(INVALID_UTF8_MARK) !== -1) this.marked = true;
    return text;
  }

  /** The end of the input: the last line (without a line break) and whatever papaparse holds. */
  async finish(): Promise<void> {
    if (this.rawHead !== null) {
      const head = this.rawHead;
      this.rawHead = null;
      this.decideEncoding(head);
      await this.feedBytes(this.transcoder === null ? head : this.transcoder.write(head));
    }
    if (this.transcoder !== null) {
      const rest = this.transcoder.end();
      if (rest.length > 0) await this.feedBytes(rest);
    }
    let buf = this.pendingBytes;
    this.pendingBytes = EMPTY;
    if (!this.started) {
      this.start(buf);
      if (startsWithBom(buf)) {
        buf = buf.subarray(BOM.length);
        this.bom = true;
      }
    }
    await this.feed(this.decode(buf), true);
    if (this.binary) {
      this.copyBytes.ensure(PGCOPY_TRAILER.length);
      this.copyBytes.at += PGCOPY_TRAILER.copy(this.copyBytes.buf, this.copyBytes.at);
    }
    await this.write(this.sinks.copy, this.copyBytes.take());
  }

  /**
   * The fast path over `buf[0, end)` (complete lines, valid UTF-8). Cells are found and checked on
   * the bytes and COPY text is written as bytes; a cell the byte checks cannot vouch for is decoded
   * and given to its CellCheck; a row any check refuses is re-read as text and handled like a
   * papaparse record (error report, onInvalid). Returns where it stopped: `end`, or the start of a
   * line with a quote or a stray line break, from which papaparse takes over.
   */
  private async fastRegion(buf: Buffer, end: number): Promise<number> {
    const invalid: InvalidRow[] = [];
    const stop = this.scanRegion(buf, end, invalid);
    await this.flushRows(invalid);
    return stop;
  }

  /**
   * The synchronous part of fastRegion: rows into the byte sinks, refused rows into `invalid`.
   * Kept free of `await` so V8 optimises it as one plain loop.
   */
  private scanRegion(buf: Buffer, end: number, invalid: InvalidRow[]): number {
    const cols = this.fastColumns!;
    const count = cols.length;
    const fieldCount = this.mapping!.fieldCount;
    const crlf = this.newline === '\r\n';
    const delim = this.delimiterByte;
    // Valid rows of a file not separated by commas are written to the valid-rows file as commas.
    const asIs = delim === 44;
    const cs = this.cellStarts;
    const ce = this.cellEnds;
    const cf = this.cellFlags;
    const copy = this.copyBytes;
    const valid = this.sinks.validCsv ? this.validBytes : null;
    const prefix = this.prefixBytes;
    const keys = this.seenKeys;
    const keyValues: string[] = new Array<string>(this.keyIndexes.length);
    const bin = this.binary;
    const idField = this.fileIdField;
    // Consecutive valid rows of an LF file are copied to the valid-rows file as one run of bytes.
    let runStart = -1;
    let runEnd = -1;
    const keyOrder = this.keyOrder;
    let pos = 0;
    let stop = end;
    // Binary COPY is at most about twice the CSV (8-byte numbers, 4-byte lengths): grow once per region.
    copy.ensure(2 * end + 1024);
    if (valid) valid.ensure(end + 1024);

    lines: while (pos < end) {
      const lineStart = pos;
      let cellStart = pos;
      let flags = 0;
      let n = 0;
      let i = pos;
      let contentEnd = 0;
      for (;;) {
        const b = buf[i]!;
        if (b === delim) {
          if (n < fieldCount) {
            cs[n] = cellStart;
            ce[n] = i;
            cf[n] = flags;
          }
          n++;
          cellStart = i + 1;
          flags = 0;
        } else if (b < 32 || b === 92 || b === 34 || b >= 128) {
          if (b === 10) {
            if (crlf) {
              stop = lineStart; // a bare LF in a CRLF file is cell text to papaparse
              break lines;
            }
            contentEnd = i;
            break;
          }
          if (b === 13) {
            if (crlf && buf[i + 1] === 10) {
              contentEnd = i;
              i++;
              break;
            }
            stop = lineStart;
            break lines;
          }
          if (b === 34) {
            stop = lineStart;
            break lines;
          }
          flags |= b >= 128 ? HIGH_BYTES : SPECIAL_BYTES;
        }
        i++;
      }
      if (n < fieldCount) {
        cs[n] = cellStart;
        ce[n] = contentEnd;
        cf[n] = flags;
      }
      n++;
      pos = i + 1;
      const line = this.nextLine++;
      if (contentEnd === lineStart) continue; // blank line
      // A wrong cell count, or a lone padded cell (maybe a whitespace-only line): the string way.
      if (n !== fieldCount || (n === 1 && (buf[lineStart]! <= 32 || buf[contentEnd - 1]! <= 32))) {
        if (runStart >= 0) {
          this.appendValidRun(buf, runStart, runEnd);
          runStart = -1;
        }
        const cells = buf.toString('utf8', lineStart, contentEnd).split(this.delimiter);
        if (!isBlank(cells)) this.takeRecord(cells, line, invalid, false);
        continue;
      }

      const rowStart = copy.at;
      const budget = 48 + prefix.length + 3 * (contentEnd - lineStart) + 12 * count;
      copy.ensure(budget);
      let out = copy.buf;
      let o = rowStart;
      if (bin) {
        out[o++] = (count + 2) >>> 8;
        out[o++] = count + 2;
        for (let k = 0; k < idField.length; k++) out[o++] = idField[k]!;
        o = writeInt32(out, o, 4);
        o = writeInt32(out, o, line);
      } else {
        for (let k = 0; k < prefix.length; k++) out[o++] = prefix[k]!;
        o = writeUint(out, o, line);
      }
      let ok = true;
      for (let c = 0; c < count; c++) {
        if (!bin) out[o++] = 9;
        const col = cols[c]!;
        const src = col.source;
        if (src < 0 || cs[src] === ce[src]) {
          if (!col.nullable) {
            ok = false;
            break;
          }
          if (bin) o = writeInt32(out, o, -1);
          else {
            out[o++] = 92;
            out[o++] = 78;
          }
          if (col.keyAt >= 0) keyValues[col.keyAt] = COPY_NULL;
          continue;
        }
        const s = cs[src]!;
        const e = ce[src]!;
        const f = cf[src]!;
        let vouched = false;
        let v = 0;
        if (buf[s]! > 32 && buf[e - 1]! > 32) {
          switch (col.kind) {
            case FastKind.Text:
              vouched = (f & SPECIAL_BYTES) === 0;
              break;
            case FastKind.Digits:
              v = plainDigits(buf, s, e);
              // A decimal is its own double in binary COPY (text COPY wants the canonical String(n)).
              if (v < 0 && bin && col.float) v = plainDecimal(buf, s, e);
              if (v >= 0) {
                if ((col.minimum !== null && v < col.minimum) || (col.maximum !== null && v > col.maximum) || (col.allowed !== null && !col.allowed.has(v))) ok = false;
                vouched = true;
              }
              break;
            case FastKind.IsoDate:
              if (e - s === 10) {
                v = isoDateDays(buf, s);
                vouched = v !== NOT_A_DATE;
              }
              break;
            case FastKind.DayFirstDate:
              v = dayFirstDays(buf, s, e, col.yearDigits);
              vouched = v !== NOT_A_DATE;
              break;
            case FastKind.Enum:
              vouched = enumIndex(buf, s, e, col.enumBytes!) >= 0;
              break;
            case FastKind.Boolean:
              v = booleanBytes(buf, s, e);
              vouched = v >= 0;
              break;
            default:
              break;
          }
          if (!ok) break;
        }
        if (vouched) {
          const kind = col.kind;
          if (bin) {
            if (kind === FastKind.Digits) {
              o = writeInt32(out, o, 8);
              if (col.float) o = out.writeDoubleBE(v, o);
              else o = writeUint53(out, o, v);
            } else if (kind === FastKind.IsoDate || kind === FastKind.DayFirstDate) {
              o = writeInt32(out, o, 4);
              o = writeInt32(out, o, v);
            } else if (kind === FastKind.Boolean) {
              o = writeInt32(out, o, 1);
              out[o++] = v;
            } else {
              o = writeInt32(out, o, e - s);
              for (let k = s; k < e; k++) out[o++] = buf[k]!;
            }
          } else if (kind === FastKind.DayFirstDate) {
            const iso = isoOfDays(v);
            for (let k = 0; k < 10; k++) out[o++] = iso.charCodeAt(k);
          } else if (kind === FastKind.Boolean) {
            out[o++] = v === 1 ? 116 : 102;
          } else {
            for (let k = s; k < e; k++) out[o++] = buf[k]!;
          }
          if (col.keyAt >= 0) keyValues[col.keyAt] = canonicalText(kind, buf, s, e, v);
          continue;
        }
        const checked = col.check(buf.toString((f & HIGH_BYTES) !== 0 ? 'utf8' : 'latin1', s, e));
        if (typeof checked !== 'string') {
          ok = false;
          break;
        }
        copy.at = o;
        if (bin) writeBinaryField(copy, col.binary, checked);
        else copy.writeString(checked);
        copy.ensure(budget);
        out = copy.buf;
        o = copy.at;
        if (col.keyAt >= 0) keyValues[col.keyAt] = checked;
      }
      if (ok && keys && keys.firstLineOf(keyValues, keyOrder, line) !== -1) ok = false;
      if (!ok) {
        // Re-read as text: the string path finds every error of the row (or the duplicate key).
        copy.at = rowStart;
        if (runStart >= 0) {
          this.appendValidRun(buf, runStart, runEnd);
          runStart = -1;
        }
        this.takeRecord(buf.toString('utf8', lineStart, contentEnd).split(this.delimiter), line, invalid, false);
        continue;
      }
      if (!bin) out[o++] = 10;
      copy.at = o;
      this.counts.total++;
      this.counts.valid++;
      if (valid) {
        if (!asIs) {
          this.appendCells(buf, fieldCount);
        } else if (!crlf) {
          if (runStart < 0) runStart = lineStart;
          else if (runEnd !== lineStart) {
            this.appendValidRun(buf, runStart, runEnd);
            runStart = lineStart;
          }
          runEnd = pos;
        } else {
          valid.ensure(contentEnd - lineStart + 1);
          const vb = valid.buf;
          let at = valid.at;
          for (let k = lineStart; k < contentEnd; k++) vb[at++] = buf[k]!;
          vb[at++] = 10;
          valid.at = at;
        }
      }
    }
    if (runStart >= 0) this.appendValidRun(buf, runStart, runEnd);
    return stop;
  }

  /**
   * The fast path's current row (cells `cellStarts`/`cellEnds`) into the valid-rows file as a
   * comma-separated line, as csvLine writes it: a cell is quoted when it holds a comma (it holds
   * no quote, CR or LF, or the fast path would not have taken its line).
   */
  private appendCells(buf: Buffer, count: number): void {
    const valid = this.validBytes;
    const cs = this.cellStarts;
    const ce = this.cellEnds;
    valid.ensure(2 * count + ce[count - 1]! - cs[0]! + 1);
    const vb = valid.buf;
    let at = valid.at;
    for (let c = 0; c < count; c++) {
      if (c > 0) vb[at++] = 44;
      const s = cs[c]!;
      const e = ce[c]!;
      let quote = false;
      for (let k = s; k < e && !quote; k++) quote = buf[k] === 44;
      if (quote) vb[at++] = 34;
      at += buf.copy(vb, at, s, e);
      if (quote) vb[at++] = 34;
    }
    vb[at++] = 10;
    valid.at = at;
  }

  /** Source bytes `buf[start, end)` (whole valid lines) into the valid-rows file. */
  private appendValidRun(buf: Buffer, start: number, end: number): void {
    const valid = this.validBytes;
    valid.ensure(end - start);
    valid.at += buf.copy(valid.buf, valid.at, start, end);
  }

  /**
   * One data record (not blank), from papaparse or from a line the fast path handed over: the
   * string validator and the key check; a valid row goes into the byte sinks, an invalid one into
   * `invalid` for flushRows.
   */
  private takeRecord(cells: string[], line: number, invalid: InvalidRow[], malformed: string | false): void {
    this.counts.total++;
    const badBytes = this.marked ? invalidUtf8Result(cells, this.mapping!, this.spec, this.encoding) : null;
    if (badBytes) {
      // Shown as U+FFFD in the error file and the report; never validated, never stored.
      for (let i = 0; i < cells.length; i++) cells[i] = printable(cells[i]!, Infinity);
    }
    let result: RowResult = badBytes ?? (malformed !== false ? malformedResult(malformed) : this.validate(cells, this.mapping!));
    if (result.ok && this.seenKeys !== null) result = this.checkKey(result, line);
    if (result.ok) {
      this.counts.valid++;
      this.emitRow(line, result.values);
      if (this.sinks.validCsv) this.validBytes.writeString(csvLine(cells));
      return;
    }
    this.counts.invalid++;
    invalid.push({ line, errors: result.errors, cells, raw: cells.map(csvEscape).join(',') });
  }

  /** A valid row's COPY text values into the COPY bytes, in the run's COPY format. */
  private emitRow(line: number, values: string[]): void {
    if (this.binary) writeBinaryRow(this.copyBytes, this.fileIdField, line, this.binaryTypes, values);
    else this.copyBytes.writeString(`${this.filePrefix}${line}\t${values.join('\t')}\n`);
  }

  /**
   * Writes what a batch of records produced: the COPY rows, the valid-rows CSV, then the error
   * file (its header first, when this batch held the header) and the onInvalid calls, in file order.
   */
  private async flushRows(invalid: InvalidRow[], errorHeader = ''): Promise<void> {
    await this.write(this.sinks.copy, this.copyBytes.take());
    if (this.sinks.validCsv) await this.write(this.sinks.validCsv, this.validBytes.take());
    const { errorCsv, onInvalid } = this.sinks;
    if (errorCsv) {
      let errorOut = errorHeader;
      const lineColumn = this.opts.errorLineColumn === true;
      for (const row of invalid) errorOut += safeCsvLine(lineColumn ? [String(row.line), ...errorRecord(row.cells, this.mapping!.fieldCount, row.errors)] : errorRecord(row.cells, this.mapping!.fieldCount, row.errors));
      await this.write(errorCsv, errorOut);
    }
    if (onInvalid) {
      for (const row of invalid) {
        const pendingCall = onInvalid(row, this.mapping!);
        if (pendingCall) await pendingCall;
      }
    }
  }

  /** Parses `text` (appended to the pending partial record) and handles every complete record. */
  async feed(text: string, final: boolean): Promise<void> {
    const aggregate = this.pending + text;
    if (this.parser === null) {
      const newline = detectNewline(aggregate, final);
      const delimiter = newline === null ? null : (this.opts.dialect?.delimiter ?? detectDelimiter(aggregate, newline, final));
      if (newline === null || delimiter === null) {
        this.keepPending(aggregate);
        return;
      }
      this.newline = newline;
      this.delimiter = delimiter;
      this.delimiterByte = delimiter.charCodeAt(0);
      this.parser = new Papa.Parser({ delimiter, newline, quoteChar: '"', escapeChar: '"' });
    }
    checkLineEndings(aggregate, this.newline!, this.nextLine);
    const parsed = this.parser.parse(aggregate, 0, !final) as Papa.ParseResult<string[]>;
    this.keepPending(final ? '' : aggregate.slice(parsed.meta.cursor));
    await this.handleRecords(parsed, aggregate);
    this.reportProgress();
  }

  private keepPending(rest: string): void {
    if (rest.length > this.maxRecordLength) throw new RecordTooLargeError(this.nextLine, this.maxRecordLength);
    this.pending = rest;
  }

  private async handleRecords(parsed: Papa.ParseResult<string[]>, text: string): Promise<void> {
    const rows = parsed.data;
    const quoted = text.indexOf('"') !== -1;
    const malformed = quoteProblems(parsed, text, quoted, this.delimiter, this.newline!);
    // A record spans several lines only through newlines inside quoted cells, or through a bare
    // LF inside a CRLF file; otherwise counting is skipped (it is most of the per-row cost).
    const lineBreak = this.newline === '\r' ? '\r' : '\n';
    const countSpans = quoted || this.newline === '\r\n';
    const invalid: InvalidRow[] = [];
    let errorHeader = '';

    for (let r = 0; r < rows.length; r++) {
      const cells = rows[r]!;
      const line = this.nextLine;
      this.nextLine += countSpans ? physicalLines(cells, lineBreak) : 1;
      if (isBlank(cells)) continue;
      if (this.mapping === null) {
        this.acceptHeader(cells);
        if (this.sinks.validCsv) this.validBytes.writeString(csvLine(cells));
        errorHeader = safeCsvLine([...(this.opts.errorLineColumn ? ['_line'] : []), ...cells, 'error_description']);
        continue;
      }
      this.takeRecord(cells, line, invalid, malformed?.get(r) ?? false);
    }
    await this.flushRows(invalid, errorHeader);
  }

  private acceptHeader(cells: string[]): void {
    const checked = checkHeader(this.spec, cells, { unknownColumns: this.opts.unknownColumns, columnMap: this.opts.columnMap });
    if (!checked.ok) throw new HeaderError(checked.problems, checked.problemCount);
    this.header = cells;
    this.ignored = checked.ignored;
    this.mapping = checked.mapping;
    const columns = planFastColumns(this.spec, checked.mapping, this.checks);
    // An absent column that needs a value fails every row: not a case worth a fast path.
    if (this.useFast && columns.every((c) => c.source >= 0 || c.nullable)) {
      this.fastColumns = columns;
      const n = checked.mapping.fieldCount;
      this.cellStarts = new Int32Array(n);
      this.cellEnds = new Int32Array(n);
      this.cellFlags = new Int32Array(n);
    }
  }

  /** Marks the row invalid when its key repeats an earlier valid row's key. */
  private checkKey(result: RowResult & { ok: true }, line: number): RowResult {
    // NULL parts compare equal, as in a `UNIQUE NULLS NOT DISTINCT` index.
    const first = this.seenKeys!.firstLineOf(result.values, this.keyIndexes, line);
    if (first === -1) return result;
    return {
      ok: false,
      errors: [{ column: this.keyLabel, code: 'DUPLICATE_KEY', message: `${this.keyLabel}: the same key as line ${first}` }],
    };
  }

  private async write(stream: Writable, text: string | Buffer): Promise<void> {
    if (this.sinkError) throw this.sinkError;
    if (text.length === 0) return;
    if (stream.destroyed || stream.writableEnded) throw stream.errored ?? new Error('A CSV pipeline sink was closed before the input ended');
    if (!stream.write(text)) await drained(stream, this.opts.signal);
    if (this.sinkError) throw this.sinkError;
  }

  private reportProgress(): void {
    const { onProgress } = this.opts;
    if (!onProgress || this.counts.total - this.lastProgressAt < this.progressEvery) return;
    this.lastProgressAt = this.counts.total;
    onProgress({ ...this.counts });
  }

  result(): CsvPipelineResult {
    const lineEnding = this.newline === '\r\n' ? 'CRLF' : this.newline === '\r' ? 'CR' : 'LF';
    return {
      ...this.counts,
      empty: this.counts.total === 0,
      header: this.header ?? [],
      ...(this.ignored ? { ignored: this.ignored } : {}),
      dialect: { delimiter: this.delimiter, encoding: this.encoding, bom: this.bom, lineEnding },
    };
  }
}

/**
 * Decides the line terminator from the first chunk, ignoring quoted text (a quoted cell may hold
 * a different break). Null when more input is needed to decide.
 */
export function detectNewline(text: string, final: boolean): Newline | null {
  // `("|$)` also drops a quoted cell still open at the end of the text: its breaks are data.
  const unquoted = text.replace(/"[^"]*("|$)/g, '');
  const at = unquoted.search(/[\r\n]/);
  if (at === -1) return final ? '\n' : null;
  if (unquoted[at] === '\n') return '\n';
  if (at + 1 < unquoted.length) return unquoted[at + 1] === '\n' ? '\r\n' : '\r';
  return final ? '\r' : null;
}

/**
 * Refuses a file whose unquoted line breaks are not all of the kind its first line set: a bare
 * CR in an LF or CRLF file, an LF in a CR-only file (LF inside a CRLF file stays cell text, as
 * spreadsheets write it). `text` starts at a record boundary (physical line `nextLine`), so quote
 * parity tells quoted from unquoted. A CR at the very end of the text may be half of a CRLF split
 * across chunks.
 */
export function checkLineEndings(text: string, newline: Newline, nextLine: number): void {
  const foreign = newline === '\r' ? '\n' : '\r';
  let at = text.indexOf(foreign);
  if (at === -1) return;
  let quotes = 0;
  let counted = 0;
  for (; at !== -1; at = text.indexOf(foreign, at + 1)) {
    if (foreign === '\r' && (text.charCodeAt(at + 1) === 10 || at === text.length - 1)) continue;
    for (let q = text.indexOf('"', counted); q !== -1 && q < at; q = text.indexOf('"', q + 1)) quotes++;
    counted = at;
    if (quotes % 2 === 0) {
      const line = nextLine + countOf(text, newline === '\r' ? '\r' : '\n', at);
      throw new MixedLineEndingsError(line, newline === '\r' ? 'CR' : newline === '\n' ? 'LF' : 'CRLF');
    }
  }
}

/** Occurrences of `ch` in `text[0, end)`. */
function countOf(text: string, ch: string, end: number): number {
  let n = 0;
  for (let at = text.indexOf(ch); at !== -1 && at < end; at = text.indexOf(ch, at + 1)) n++;
  return n;
}

/**
 * INVALID_UTF8 errors, one per cell holding bytes that were not valid UTF-8, or null when the
 * record has none. Named by the spec column the cell feeds, or by its position.
 */
function invalidUtf8Result(cells: readonly string[], mapping: HeaderMapping, spec: CompiledSpec, encoding: CsvEncoding): RowResult | null {
  const why = encoding === 'UTF_8' ? 'bytes that are not valid UTF-8 (shown as U+FFFD); save the file as UTF-8' : `bytes that are not valid ${encoding} (shown as U+FFFD); check the encoding argument`;
  let errors: RowError[] | null = null;
  for (let i = 0; i < cells.length; i++) {
    if (cells[i]!.indexOf(INVALID_UTF8_MARK) === -1) continue;
    const c = mapping.sourceIndex.indexOf(i);
    const column = c >= 0 ? spec.columns[c]!.column : '';
    const label = c >= 0 ? spec.columns[c]!.sourceName : `cell ${i + 1}`;
    (errors ??= []).push({ column, code: 'INVALID_UTF8', message: `${label}: cell ${i + 1} holds ${why}` });
  }
  return errors && { ok: false, errors };
}

export function physicalLines(cells: string[], lineBreak: string): number {
  let lines = 1;
  for (let i = 0; i < cells.length; i++) {
    const cell = cells[i]!;
    for (let at = cell.indexOf(lineBreak); at !== -1; at = cell.indexOf(lineBreak, at + 1)) lines++;
  }
  return lines;
}

/**
 * Rows (by index in this parse) with quote errors. Errors pointing past the last returned row
 * belong to the held-back partial record, which is parsed again with the next chunk.
 */
export function malformedRows(errors: Papa.ParseError[], rowCount: number): Map<number, string> | null {
  let rows: Map<number, string> | null = null;
  for (const e of errors) {
    if (e.type === 'Quotes' && e.row !== undefined && e.row < rowCount) (rows ??= new Map()).set(e.row, UNCLOSED_QUOTE_MESSAGE);
  }
  return rows;
}

export const UNCLOSED_QUOTE_MESSAGE = 'a quoted cell is not closed, or its closing quote is followed by other text';

/**
 * Records of one parse that break the quote rules, with why: papaparse's quote errors (an
 * unclosed quote, text after a closing quote) and quotes inside unquoted cells (strayQuoteRows).
 */
export function quoteProblems(parsed: Papa.ParseResult<string[]>, text: string, quoted: boolean, delimiter: string, newline: string): Map<number, string> | null {
  const rows = parsed.data;
  let problems = malformedRows(parsed.errors, rows.length);
  if (!quoted) return problems;
  const stray = strayQuoteRows(text, rows, delimiter, newline);
  if (stray) for (const r of stray) if (!problems?.has(r)) (problems ??= new Map()).set(r, STRAY_QUOTE_MESSAGE);
  return problems;
}

function malformedResult(message: string): RowResult {
  return { ok: false, errors: [{ column: '', code: 'MALFORMED_QUOTES', message }] };
}

/**
 * The error-file record: the original cells, then `error_description`. A short record is padded
 * so the description stays in its column; a long one keeps its extra cells after the description.
 */
function errorRecord(cells: string[], fieldCount: number, errors: RowError[]): string[] {
  const description = errors.map((e) => e.message).join('; ');
  const record = cells.slice(0, fieldCount);
  while (record.length < fieldCount) record.push('');
  record.push(description);
  for (let i = fieldCount; i < cells.length; i++) record.push(cells[i]!);
  return record;
}

/** Resolves on 'drain'; rejects if the stream errors or closes first, or the signal aborts. */
function drained(stream: Writable, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const settle = (err?: Error) => {
      stream.off('drain', onDrain);
      stream.off('error', onError);
      stream.off('close', onClose);
      signal?.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve();
    };
    const onDrain = () => settle();
    const onError = (err: Error) => settle(err);
    const onClose = () => settle(stream.errored ?? new Error('A CSV pipeline sink closed while the pipeline waited for it to drain'));
    const onAbort = () => settle(new AbortError(signal?.reason));
    stream.on('drain', onDrain);
    stream.on('error', onError);
    stream.on('close', onClose);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
