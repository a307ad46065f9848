import type { CompiledSpec } from '../modules/specs/spec.model';
import type { CellCheck } from './row-validator';
import type { HeaderMapping } from './row-validator';

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
  /** Part of the unique key. */
  key: boolean;
}

/** Digits a `Digits` cell may have and still be exact as a double (the string path compares doubles too). */
export const MAX_FAST_DIGITS = 15;

export function planFastColumns(spec: CompiledSpec, mapping: HeaderMapping, checks: readonly CellCheck[]): FastColumn[] {
  const keys = new Set(spec.uniqueKey);
  return spec.columns.map((col, i) => {
    let kind = FastKind.Checked;
    if (col.type === 'string' && col.enum === null && col.pattern === null && col.minLength === null && col.maxLength === null) kind = FastKind.Text;
    else if (col.type === 'integer' || col.type === 'number') kind = FastKind.Digits;
    else if (col.type === 'date' && (col.dateFormat ?? 'YYYY-MM-DD') === 'YYYY-MM-DD') kind = FastKind.IsoDate;
    return {
      kind,
      source: mapping.sourceIndex[i]!,
      nullable: col.nullable,
      minimum: col.minimum,
      maximum: col.maximum,
      allowed: col.enum && (col.type === 'integer' || col.type === 'number') ? new Set(col.enum as number[]) : null,
      check: checks[i]!,
      key: keys.has(col.column),
    };
  });
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
  take(): Buffer | null {
    if (this.at === 0) return null;
    const out = this.buf.subarray(0, this.at);
    this.buf = Buffer.allocUnsafe(Math.max(this.initial, this.buf.length));
    this.at = 0;
    return out;
  }
}

const ZERO = 48;

/** True when `b[s..s+10)` is a real calendar date written `YYYY-MM-DD`. */
export function isIsoDateBytes(b: Buffer, s: number): boolean {
  if (b[s + 4] !== 45 || b[s + 7] !== 45) return false;
  let year = 0;
  for (let i = s; i < s + 4; i++) {
    const d = b[i]! - ZERO;
    if (d < 0 || d > 9) return false;
    year = year * 10 + d;
  }
  const m1 = b[s + 5]! - ZERO;
  const m2 = b[s + 6]! - ZERO;
  const d1 = b[s + 8]! - ZERO;
  const d2 = b[s + 9]! - ZERO;
  if (m1 < 0 || m1 > 9 || m2 < 0 || m2 > 9 || d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9) return false;
  const month = m1 * 10 + m2;
  const day = d1 * 10 + d2;
  if (year < 1 || month < 1 || month > 12 || day < 1) return false;
  if (month === 2) return day <= ((year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28);
  return day <= (month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31);
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
