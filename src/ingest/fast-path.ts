import type { CompiledSpec } from './contract';
import { isRealDate } from './dates';
import { isUuid } from '../shared/cursor';
import type { CellCheck, HeaderMapping } from './row-validator';

/**
 * The byte-level fast path of the CSV pipeline: what each spec column needs to be checked and
 * COPY-encoded straight from the input bytes, with no string per cell.
 *
 * The rule that keeps it correct: a fast check only ever *accepts* a cell when the string path
 * (`CellCheck`) would accept it and produce the very same COPY bytes. Anything else (a blank or
 * padded cell, a backslash, a sign or leading zero, a decimal, another date format, a constraint
 * the fast check does not know) falls back to the cell's `CellCheck` on the decoded text, and a
 * refused cell sends the whole row down the string path, which writes the row's error report.
 */
export enum FastKind {
  /** A string column with no enum, pattern or length limit: bytes are copied as they are. */
  Text,
  /** An integer or number column: plain digits without a leading zero are their own canonical form. */
  Digits,
  /** A date column in ISO `YYYY-MM-DD`: already in PostgreSQL's input format. */
  IsoDate,
  /** A date column in `DD/MM/YY` or `DD/MM/YYYY` (what cQube data uses). */
  DayFirstDate,
  /** A string column whose only rule is a short enum of plain ASCII values. */
  Enum,
  /** A boolean column: true/false/1/0/yes/no in any case. */
  Boolean,
  /** Everything else: decode the cell and run its `CellCheck`. */
  Checked,
}

export interface FastColumn {
  kind: FastKind;
  /** Index of the column's cell in a record, or -1 when the file lacks the column. */
  source: number;
  nullable: boolean;
  minimum: number | null;
  maximum: number | null;
  allowed: Set<number> | null;
  check: CellCheck;
  /** Position in the unique key, or -1. */
  keyAt: number;
  /** The column's binary COPY type. */
  binary: PgBinaryType;
  /** A number (float8) column; integers are int8. */
  float: boolean;
  /** DayFirstDate: digits of the year (2 or 4). */
  yearDigits: 2 | 4;
  /** Enum: the allowed values' bytes. */
  enumBytes: Buffer[] | null;
}

/** Digits a `Digits` cell may have and still be exact as a double (the string path compares doubles too). */
export const MAX_FAST_DIGITS = 15;

export function planFastColumns(spec: CompiledSpec, mapping: HeaderMapping, checks: readonly CellCheck[]): FastColumn[] {
  return spec.columns.map((col, i) => {
    let kind = FastKind.Checked;
    const plainString = col.type === 'string' && col.pattern === null && col.minLength === null && col.maxLength === null;
    const format = col.dateFormat ?? 'YYYY-MM-DD';
    const enumBytes =
      plainString && col.enum !== null && col.enum.length <= 32 && (col.enum as string[]).every(isPlainAscii)
        ? (col.enum as string[]).map((v) => Buffer.from(v, 'latin1'))
        : null;
    if (plainString && col.enum === null) kind = FastKind.Text;
    else if (enumBytes !== null) kind = FastKind.Enum;
    else if (col.type === 'integer' || col.type === 'number') kind = FastKind.Digits;
    else if (col.type === 'date') kind = format === 'YYYY-MM-DD' ? FastKind.IsoDate : FastKind.DayFirstDate;
    else if (col.type === 'boolean') kind = FastKind.Boolean;
    return {
      kind,
      source: mapping.sourceIndex[i]!,
      nullable: col.nullable,
      minimum: col.minimum,
      maximum: col.maximum,
      allowed: col.enum && (col.type === 'integer' || col.type === 'number') ? new Set(col.enum as number[]) : null,
      check: checks[i]!,
      keyAt: spec.uniqueKey.indexOf(col.column),
      binary: binaryTypeOf(col.type),
      float: col.type === 'number',
      yearDigits: format === 'DD/MM/YY' ? 2 : 4,
      enumBytes,
    };
  });
}

/** Non-empty printable ASCII with nothing COPY or CSV would treat specially: safe to copy as bytes. */
function isPlainAscii(value: string): boolean {
  return /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/.test(value) && !/[\\",]/.test(value);
}

/**
 * Buffers given back for ByteSink.take() to fill again instead of allocating (on the pipeline
 * thread, the COPY chunks the API thread has sent; see pipeline-thread.ts). Fresh memory for every
 * chunk of a file was most of the pipeline's garbage: some 140 MB per 1M rows of binary COPY,
 * which kept both threads' collectors busy on another core.
 */
const freeBuffers: Buffer[] = [];
/** Buffers kept for reuse; more are left to the collector. */
const MAX_FREE_BUFFERS = 8;

/** Gives `buf` (whose memory nobody else uses any more) to the next ByteSink.take() that fits in it. */
export function recycleBuffer(buf: Buffer): void {
  if (freeBuffers.length < MAX_FREE_BUFFERS && buf.byteOffset === 0 && buf.length === buf.buffer.byteLength) freeBuffers.push(buf);
}

function freeBuffer(size: number): Buffer | undefined {
  for (let i = freeBuffers.length - 1; i >= 0; i--) {
    const buf = freeBuffers[i]!;
    if (buf.length >= size) {
      freeBuffers[i] = freeBuffers[freeBuffers.length - 1]!;
      freeBuffers.pop();
      return buf;
    }
  }
  return undefined;
}

/** A growable byte buffer whose filled part is handed over (not copied) with `take()`. */
export class ByteSink {
  buf: Buffer;
  at = 0;

  constructor(private readonly initial: number) {
    this.buf = Buffer.allocUnsafe(initial);
  }

  /** Room for `n` more bytes. */
  ensure(n: number): void {
    if (this.at + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.at + n));
    this.buf.copy(next, 0, 0, this.at);
    this.buf = next;
  }

  writeString(text: string): void {
    this.ensure(text.length * 3);
    this.at += this.buf.write(text, this.at, 'utf8');
  }

  /** The bytes written so far; the sink starts again on fresh memory (the old buffer belongs to the caller). */
  take(): Buffer {
    if (this.at === 0) return EMPTY;
    const out = this.buf.subarray(0, this.at);
    const size = Math.max(this.initial, this.buf.length);
    this.buf = freeBuffer(size) ?? Buffer.allocUnsafe(size);
    this.at = 0;
    return out;
  }
}

const EMPTY = Buffer.alloc(0);
/** The byte of the digit 0. */
export const ZERO = 48;

/** A fast-checked number `v` of `col` is outside its minimum, maximum or allowed values (the row is then re-read as text). */
export function outOfRange(col: FastColumn, v: number): boolean {
  return (col.minimum !== null && v < col.minimum) || (col.maximum !== null && v > col.maximum) || (col.allowed !== null && !col.allowed.has(v));
}

/**
 * The value of `b[s..e)` when it is plain digits with no leading zero (or a single `0`) and at
 * most MAX_FAST_DIGITS of them; -1 otherwise.
 */
export function plainDigits(b: Buffer, s: number, e: number): number {
  const n = e - s;
  if (n > MAX_FAST_DIGITS || (n > 1 && b[s] === ZERO)) return -1;
  let v = 0;
  for (let i = s; i < e; i++) {
    const d = b[i]! - ZERO;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v;
}

// --- PostgreSQL binary COPY -------------------------------------------------------------------

/** `COPY ... FROM STDIN (FORMAT binary)`: signature, flags (0), header extension length (0). */
export const PGCOPY_HEADER = Buffer.concat([Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'), Buffer.alloc(8)]);
/** The optional end marker: a field count of -1. */
export const PGCOPY_TRAILER = Buffer.from([0xff, 0xff]);

/** Days between 1970-01-01 and 2000-01-01 (PostgreSQL's date epoch). */
const PG_EPOCH_DAYS = 10957;

/** Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
export function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

/** What `isoDateDays` returns for a cell that is not a real `YYYY-MM-DD` date. */
export const NOT_A_DATE = -0x7fffffff;

/**
 * The binary COPY value (days since 2000-01-01) of `b[s..s+10)` when it is a real calendar date
 * written `YYYY-MM-DD`, else NOT_A_DATE. Recent results are cached: a file has few distinct dates.
 */
export function isoDateDays(b: Buffer, s: number): number {
  if (b[s + 4] !== 45 || b[s + 7] !== 45) return NOT_A_DATE;
  const year = digitsAt(b, s, s + 4);
  const month = digitsAt(b, s + 5, s + 7);
  const day = digitsAt(b, s + 8, s + 10);
  return year < 0 || month < 0 || day < 0 ? NOT_A_DATE : daysOf(year, month, day);
}

/** The decimal value of `b[s..e)`, or -1 if a byte there is not a digit. */
function digitsAt(b: Buffer, s: number, e: number): number {
  let v = 0;
  for (let i = s; i < e; i++) {
    const d = b[i]! - ZERO;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v;
}

/**
 * `DD/MM/YY` (`yearDigits` 2, years 2000-2099) or `DD/MM/YYYY`, day and month with 1 or 2 digits,
 * exactly as dates.ts parses them: the days since 2000-01-01, or NOT_A_DATE.
 */
export function dayFirstDays(b: Buffer, s: number, e: number, yearDigits: 2 | 4): number {
  let i = s;
  let day = 0;
  let n = 0;
  for (; i < e && b[i] !== 47; i++, n++) {
    const d = b[i]! - ZERO;
    if (d < 0 || d > 9) return NOT_A_DATE;
    day = day * 10 + d;
  }
  if (n < 1 || n > 2 || i >= e) return NOT_A_DATE;
  let month = 0;
  n = 0;
  for (i++; i < e && b[i] !== 47; i++, n++) {
    const d = b[i]! - ZERO;
    if (d < 0 || d > 9) return NOT_A_DATE;
    month = month * 10 + d;
  }
  if (n < 1 || n > 2 || i >= e || e - i - 1 !== yearDigits) return NOT_A_DATE;
  let year = 0;
  for (i++; i < e; i++) {
    const d = b[i]! - ZERO;
    if (d < 0 || d > 9) return NOT_A_DATE;
    year = year * 10 + d;
  }
  if (yearDigits === 2) year += 2000;
  return daysOf(year, month, day);
}

/** Days since 2000-01-01 of a real calendar date, or NOT_A_DATE; cached (a file has few distinct dates). */
export function daysOf(year: number, month: number, day: number): number {
  const key = year * 10000 + month * 100 + day;
  const slot = key & (DATE_CACHE_SIZE - 1);
  if (dateCacheKeys[slot] === key) return dateCacheDays[slot]!;
  const days = isRealDate(year, month, day) ? daysFromCivil(year, month, day) - PG_EPOCH_DAYS : NOT_A_DATE;
  dateCacheKeys[slot] = key;
  dateCacheDays[slot] = days;
  return days;
}

/** `YYYY-MM-DD` of a PostgreSQL day number (days since 2000-01-01); cached like the day numbers. */
export function isoOfDays(days: number): string {
  const slot = days & (DATE_CACHE_SIZE - 1);
  if (isoCacheDays[slot] === days) return isoCacheText[slot]!;
  const text = new Date((days + PG_EPOCH_DAYS) * 86_400_000).toISOString().slice(0, 10);
  isoCacheDays[slot] = days;
  isoCacheText[slot] = text;
  return text;
}

/** Index of `b[s..e)` in `values`, or -1. */
export function enumIndex(b: Buffer, s: number, e: number, values: readonly Buffer[]): number {
  const n = e - s;
  outer: for (let v = 0; v < values.length; v++) {
    const candidate = values[v]!;
    if (candidate.length !== n) continue;
    for (let k = 0; k < n; k++) if (candidate[k] !== b[s + k]) continue outer;
    return v;
  }
  return -1;
}

/** 1 for true/1/yes, 0 for false/0/no (any case), -1 otherwise; as the string check reads booleans. */
export function booleanBytes(b: Buffer, s: number, e: number): number {
  // `| 0x20` lower-cases an ASCII letter and turns no other byte into one.
  switch (e - s) {
    case 1:
      return b[s] === 49 ? 1 : b[s] === 48 ? 0 : -1;
    case 2:
      return (b[s]! | 0x20) === 110 && (b[s + 1]! | 0x20) === 111 ? 0 : -1;
    case 3:
      return (b[s]! | 0x20) === 121 && (b[s + 1]! | 0x20) === 101 && (b[s + 2]! | 0x20) === 115 ? 1 : -1;
    case 4:
      return (b[s]! | 0x20) === 116 && (b[s + 1]! | 0x20) === 114 && (b[s + 2]! | 0x20) === 117 && (b[s + 3]! | 0x20) === 101 ? 1 : -1;
    case 5:
      return (b[s]! | 0x20) === 102 && (b[s + 1]! | 0x20) === 97 && (b[s + 2]! | 0x20) === 108 && (b[s + 3]! | 0x20) === 115 && (b[s + 4]! | 0x20) === 101
        ? 0
        : -1;
    default:
      return -1;
  }
}

const POWERS_OF_TEN = [1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];

/**
 * `digits.digits` (no sign, no exponent, no leading zero before a longer integer part, at least
 * one digit on each side) with at most MAX_FAST_DIGITS digits in all, as a double: the digits as
 * an exact integer over an exact power of ten is one correctly rounded division, the same double
 * Number(text) gives. -1 when the cell is not such a decimal.
 */
export function plainDecimal(b: Buffer, s: number, e: number): number {
  let dot = -1;
  let m = 0;
  for (let i = s; i < e; i++) {
    const ch = b[i]!;
    if (ch === 46) {
      if (dot !== -1) return -1;
      dot = i;
      continue;
    }
    const d = ch - ZERO;
    if (d < 0 || d > 9) return -1;
    m = m * 10 + d;
  }
  if (dot <= s || dot === e - 1 || e - s - 1 > MAX_FAST_DIGITS) return -1;
  if (b[s] === ZERO && dot - s > 1) return -1;
  return m / POWERS_OF_TEN[e - dot - 1]!;
}

/** The COPY text value the string check would give a cell the fast path vouched for (unique keys). */
export function canonicalText(kind: FastKind, b: Buffer, s: number, e: number, v: number): string {
  switch (kind) {
    case FastKind.Digits:
      return String(v);
    case FastKind.IsoDate:
    case FastKind.DayFirstDate:
      return isoOfDays(v);
    case FastKind.Boolean:
      return v === 1 ? 't' : 'f';
    default:
      return b.toString('utf8', s, e);
  }
}

const DATE_CACHE_SIZE = 4096;
const isoCacheDays = new Int32Array(DATE_CACHE_SIZE).fill(NOT_A_DATE);
const isoCacheText = new Array<string>(DATE_CACHE_SIZE);
const dateCacheKeys = new Int32Array(DATE_CACHE_SIZE).fill(-1);
const dateCacheDays = new Int32Array(DATE_CACHE_SIZE);

export function writeInt32(out: Buffer, o: number, v: number): number {
  out[o] = v >>> 24;
  out[o + 1] = v >>> 16;
  out[o + 2] = v >>> 8;
  out[o + 3] = v;
  return o + 4;
}

/** A non-negative safe integer as a big-endian int64. */
export function writeUint53(out: Buffer, o: number, v: number): number {
  writeInt32(out, o, Math.floor(v / 4294967296));
  return writeInt32(out, o + 4, v >>> 0);
}

type PgBinaryType = 'text' | 'int8' | 'float8' | 'bool' | 'date';

const PG_BINARY: Record<string, PgBinaryType> = { string: 'text', integer: 'int8', number: 'float8', boolean: 'bool', date: 'date' };

export function binaryTypeOf(columnType: string): PgBinaryType {
  return PG_BINARY[columnType]!;
}

const COPY_UNESCAPE = /\\([\\tnr])/g;
const UNESCAPED: Record<string, string> = { '\\': '\\', t: '\t', n: '\n', r: '\r' };

/**
 * Writes one field (length word and bytes) from its COPY text-format value, as the validator
 * produces it: `\N` for NULL, escaped text, canonical numbers, `t`/`f`, ISO dates.
 */
export function writeBinaryField(sink: ByteSink, type: PgBinaryType, value: string): void {
  if (value === '\\N') {
    sink.ensure(4);
    sink.at = writeInt32(sink.buf, sink.at, -1);
    return;
  }
  switch (type) {
    case 'text': {
      const text = value.indexOf('\\') === -1 ? value : value.replace(COPY_UNESCAPE, (_, ch: string) => UNESCAPED[ch]!);
      sink.ensure(4 + text.length * 3);
      const lengthAt = sink.at;
      const written = sink.buf.write(text, lengthAt + 4, 'utf8');
      writeInt32(sink.buf, lengthAt, written);
      sink.at = lengthAt + 4 + written;
      return;
    }
    case 'int8':
      sink.ensure(12);
      sink.at = writeInt32(sink.buf, sink.at, 8);
      sink.at = sink.buf.writeBigInt64BE(BigInt(value), sink.at);
      return;
    case 'float8':
      sink.ensure(12);
      sink.at = writeInt32(sink.buf, sink.at, 8);
      sink.at = sink.buf.writeDoubleBE(Number(value), sink.at);
      return;
    case 'bool':
      sink.ensure(5);
      sink.at = writeInt32(sink.buf, sink.at, 1);
      sink.buf[sink.at++] = value === 't' ? 1 : 0;
      return;
    case 'date': {
      const year = Number(value.slice(0, value.length - 6));
      const month = Number(value.slice(-5, -3));
      const day = Number(value.slice(-2));
      sink.ensure(8);
      sink.at = writeInt32(sink.buf, sink.at, 4);
      sink.at = writeInt32(sink.buf, sink.at, daysFromCivil(year, month, day) - PG_EPOCH_DAYS);
      return;
    }
  }
}

/**
 * One row from COPY text-format values: field count (`fields`), `_file_id` (`fileIdField`, empty
 * when the table's default supplies it), `_line`, the spec's columns.
 */
export function writeBinaryRow(
  sink: ByteSink,
  fields: number,
  fileIdField: Buffer,
  line: number,
  types: readonly PgBinaryType[],
  values: readonly string[],
): void {
  sink.ensure(2 + fileIdField.length + 8);
  const out = sink.buf;
  let o = sink.at;
  out[o++] = fields >>> 8;
  out[o++] = fields;
  o += fileIdField.copy(out, o);
  o = writeInt32(out, o, 4);
  o = writeInt32(out, o, line);
  sink.at = o;
  for (let c = 0; c < types.length; c++) writeBinaryField(sink, types[c]!, values[c]!);
}

/** `_file_id` as a binary field: length 16, then the UUID's bytes. */
export function uuidField(id: string): Buffer {
  if (!isUuid(id)) throw new Error(`${JSON.stringify(id)} is not a UUID`);
  const out = Buffer.alloc(20);
  writeInt32(out, 0, 16);
  Buffer.from(id.replace(/-/g, ''), 'hex').copy(out, 4);
  return out;
}
