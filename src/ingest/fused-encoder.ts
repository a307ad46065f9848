import { COPY_NULL } from './csv-escape';
import {
  booleanBytes,
  canonicalText,
  dayFirstDays,
  daysOf,
  enumIndex,
  FastKind,
  isoDateDays,
  MAX_FAST_DIGITS,
  NOT_A_DATE,
  outOfRange,
  plainDecimal,
  plainDigits,
  writeInt32,
  writeUint53,
  ZERO,
  type FastColumn,
} from './fast-path';

/**
 * The fused encoder, generated per spec: one pass over one line's bytes that finds, checks and
 * writes each cell in binary COPY as it reads it, written out for the file's columns in order
 * (their kinds, nullability, ranges and enum values as constants), so the loop over a row has no
 * per-column plan to read, no kind to dispatch on and no range to look up. The general loop of
 * scanRegion finds every cell first and reads each again; this takes only the lines it can vouch
 * for entirely, with the very bytes the general loop would write: a cell that is not plain (a
 * quote, a backslash, a control byte, padding, a sign, a leading zero, a value out of range, a
 * wrong field count, any other line break) makes it return -1, and the general loop reads the
 * line again from its start.
 *
 * The source holds nothing from the file or the spec's text: only the code below, column
 * indexes, and numbers checked to be finite (ranges) or bytes (enum values, 0-255). Enum values
 * longer than ENUM_INLINE_BYTES in all, and sets of allowed integers, are passed in, not written.
 * A process that forbids code from strings (`--disallow-code-generation-from-strings`), and a
 * spec wider than FUSED_MAX_COLUMNS, get the loop encoder (encodeLine) instead.
 */

/** Longest line the fused encoder takes (the COPY room scanRegion makes sure of before a line is this plus the fields' framing). */
export const FUSED_MAX_LINE = 4096;

/**
 * Encodes the line starting at `p` of `buf` as one binary COPY tuple's fields at `out[o]`;
 * returns the offset after them, or -1 (nothing to keep) for a line the general loop must read.
 * On success `next[0]` is where the next line starts. `keyValues` receives the unique key's parts.
 */
export type FusedEncoder = (buf: Buffer, p: number, out: Buffer, o: number, keyValues: string[]) => number;

export interface CompiledFusedEncoder {
  readonly encode: FusedEncoder;
  /** Where the line the encoder has just taken ends (the start of the next one). */
  readonly next: Int32Array;
  /** Generated for the spec (else the loop over the columns' plans). */
  readonly generated: boolean;
}

/**
 * For the fused encoder: 1 for a byte that may stand in a plain cell as it is, 0 for one that ends
 * the cell or sends the line the other way (a control byte, line breaks included, a quote, a
 * backslash, the delimiter). Bytes of multi-byte characters are plain: the fast path only scans
 * regions that are valid UTF-8.
 */
function fusedTextBytes(delimiter: number): Uint8Array {
  const table = new Uint8Array(256);
  for (let b = 32; b < 256; b++) table[b] = b === 34 || b === 92 || b === delimiter ? 0 : 1;
  return table;
}

/** Kinds the fused encoder takes (a Checked column would send every line the other way). */
const FUSED_KINDS = new Set([FastKind.Text, FastKind.Digits, FastKind.IsoDate, FastKind.DayFirstDate, FastKind.Enum, FastKind.Boolean]);

/**
 * Widest spec the fused encoder is generated for. Why: the code grows with the columns, and V8
 * optimises a large function late or never (TurboFan stops at 60 KB of bytecode): measured on
 * 20,000-row files, a 100-column spec's encoder in one function ran 1.5-1.6 s per file against
 * 0.16-0.30 s for the general loop, and 200 columns of integers 3.3 s against 0.29 s for ever;
 * split into functions of 16 columns it still needed about 40,000 rows before V8 had optimised
 * it (2-4x slower until then). At 10-16 columns it warms as fast as the general loop. Wider
 * files get the loop over the columns' plans (encodeLine), which V8 optimises once for all specs.
 */
export const FUSED_MAX_COLUMNS = 16;

/**
 * Whether a file gets the fused encoder: binary COPY, at least two fields, the file's fields are
 * the spec's columns in the spec's order (no mapping, no ignored or absent column), and only
 * column kinds it checks itself.
 */
export function fusedPlan(cols: readonly FastColumn[], fieldCount: number, binary: boolean): boolean {
  return binary && cols.length >= 2 && cols.length === fieldCount && cols.every((c, i) => c.source === i && FUSED_KINDS.has(c.kind));
}

/** Enum values written into the code as byte comparisons when their bytes add up to at most this. */
const ENUM_INLINE_BYTES = 256;

type Factory = (
  text: Uint8Array,
  helpers: typeof HELPERS,
  enums: readonly (readonly Buffer[] | null)[],
  allowed: readonly (Set<number> | null)[],
  next: Int32Array,
) => FusedEncoder;

const HELPERS = { booleanBytes, canonicalText, dayFirstDays, daysOf, enumIndex, plainDecimal, plainDigits, NOT_A_DATE, COPY_NULL };

/**
 * The fused encoder as one loop over the columns' plans, for specs wider than FUSED_MAX_COLUMNS
 * and processes that cannot compile code from strings: the same lines taken, the same bytes
 * written as the generated encoder (the differential tests run both), reading each column's plan
 * as it goes. On success it leaves the next line's start in `next[0]`.
 */
function encodeLine(
  cols: readonly FastColumn[],
  text: Uint8Array,
  buf: Buffer,
  p: number,
  out: Buffer,
  o: number,
  delim: number,
  crlf: boolean,
  keyValues: string[],
  next: Int32Array,
): number {
  const lineStart = p;
  const count = cols.length;
  for (let c = 0; c < count; c++) {
    const col = cols[c]!;
    const kind = col.kind;
    const s = p;
    const first = buf[p];
    if (first === delim || first === 10 || first === 13) {
      // An empty cell (what follows it is checked below, as after any cell).
      if (!col.nullable) return -1;
      o = writeInt32(out, o, -1);
      if (col.keyAt >= 0) keyValues[col.keyAt] = COPY_NULL;
    } else if (kind === FastKind.Text) {
      const lengthAt = o;
      o += 4;
      let b = buf[p]!;
      while (text[b] === 1) {
        out[o++] = b;
        b = buf[++p]!;
      }
      // A line longer than the room made for it (FUSED_MAX_LINE): what did not fit was not stored
      // (a typed array drops writes past its end), and the general loop takes the line.
      if (o > out.length) return -1;
      if (p === s || buf[s] === 32 || buf[p - 1] === 32) return -1;
      writeInt32(out, lengthAt, p - s);
      if (col.keyAt >= 0) keyValues[col.keyAt] = buf.toString('utf8', s, p);
    } else if (kind === FastKind.Digits && !col.float) {
      let v = 0;
      let d = buf[p]! - ZERO;
      while (d >= 0 && d <= 9) {
        v = v * 10 + d;
        d = buf[++p]! - ZERO;
      }
      const n = p - s;
      if (n === 0 || n > MAX_FAST_DIGITS || (n > 1 && buf[s] === ZERO)) return -1;
      if (outOfRange(col, v)) return -1;
      o = writeInt32(out, o, 8);
      o = writeUint53(out, o, v);
      if (col.keyAt >= 0) keyValues[col.keyAt] = String(v);
    } else {
      let b = buf[p]!;
      while (text[b] === 1) b = buf[++p]!;
      const e = p;
      if (e === s) return -1;
      if (buf[s] === 32 || buf[e - 1] === 32) return -1;
      let v = 0;
      switch (kind) {
        case FastKind.IsoDate:
          if (e - s !== 10) return -1;
          v = isoDateDays(buf, s);
          if (v === NOT_A_DATE) return -1;
          o = writeInt32(out, o, 4);
          o = writeInt32(out, o, v);
          break;
        case FastKind.DayFirstDate:
          v = dayFirstDays(buf, s, e, col.yearDigits);
          if (v === NOT_A_DATE) return -1;
          o = writeInt32(out, o, 4);
          o = writeInt32(out, o, v);
          break;
        case FastKind.Enum:
          if (enumIndex(buf, s, e, col.enumBytes!) < 0) return -1;
          o = writeInt32(out, o, e - s);
          for (let k = s; k < e; k++) out[o++] = buf[k]!;
          break;
        case FastKind.Boolean:
          v = booleanBytes(buf, s, e);
          if (v < 0) return -1;
          o = writeInt32(out, o, 1);
          out[o++] = v;
          break;
        case FastKind.Digits:
          // A number (float8) column: plain digits, or a plain decimal, as the general loop reads them.
          v = plainDigits(buf, s, e);
          if (v < 0) v = plainDecimal(buf, s, e);
          if (v < 0) return -1;
          if (outOfRange(col, v)) return -1;
          // writeDoubleBE checks its bounds (and throws), unlike the stores above.
          if (o + 12 > out.length) return -1;
          o = writeInt32(out, o, 8);
          o = out.writeDoubleBE(v, o);
          break;
        default:
          return -1;
      }
      if (col.keyAt >= 0) keyValues[col.keyAt] = canonicalText(kind, buf, s, e, v);
    }
    const b = buf[p];
    if (c < count - 1) {
      if (b !== delim) return -1;
      p++;
    } else if (b === 10 && !crlf) p++;
    else if (b === 13 && crlf && buf[p + 1] === 10) p += 2;
    else return -1;
  }
  if (p - lineStart > FUSED_MAX_LINE) return -1;
  next[0] = p;
  return o;
}

/** Compiled sources, so a spec's encoder is generated and compiled once per process (bounded). */
const factories = new Map<string, Factory>();
const MAX_FACTORIES = 32;

function literal(v: number): string {
  if (!Number.isFinite(v)) throw new Error('fused encoder: not a finite number');
  return Object.is(v, -0) ? '0' : String(v);
}

function writeInt32Code(at: string, value: string): string {
  return `out[${at}] = ${value} >>> 24; out[${at} + 1] = ${value} >>> 16; out[${at} + 2] = ${value} >>> 8; out[${at} + 3] = ${value};`;
}

function enumTest(values: readonly Buffer[]): string | null {
  let total = 0;
  for (const v of values) total += v.length;
  if (total > ENUM_INLINE_BYTES) return null;
  const alternatives = values.map((v) => `(n === ${v.length}${[...v].map((byte, k) => ` && buf[s + ${k}] === ${byte}`).join('')})`);
  return alternatives.length === 0 ? 'false' : alternatives.join(' || ');
}

function columnCode(col: FastColumn, c: number, last: boolean, crlf: boolean, delim: number): string {
  const lines: string[] = [];
  const key = col.keyAt >= 0 ? col.keyAt : -1;
  lines.push(`s = p; b = buf[p];`);
  lines.push(`if (b === ${delim} || b === 10 || b === 13) {`);
  if (!col.nullable) lines.push(`  return -1;`);
  else {
    lines.push(`  out[o] = 255; out[o + 1] = 255; out[o + 2] = 255; out[o + 3] = 255; o += 4;`);
    if (key >= 0) lines.push(`  keyValues[${key}] = H.COPY_NULL;`);
  }
  lines.push(`} else {`);
  if (col.kind === FastKind.Text) {
    lines.push(`  la = o; o += 4;`);
    lines.push(`  while (T[b] === 1) { out[o++] = b; b = buf[++p]; }`);
    // A line longer than the room made for it: what did not fit was not stored (a typed array
    // drops writes past its end), and the general loop takes the line.
    lines.push(`  if (o > L) return -1;`);
    lines.push(`  if (p === s || buf[s] === 32 || buf[p - 1] === 32) return -1;`);
    lines.push(`  n = p - s; ${writeInt32Code('la', 'n')}`);
    if (key >= 0) lines.push(`  keyValues[${key}] = buf.toString('utf8', s, p);`);
  } else if (col.kind === FastKind.Digits && !col.float) {
    lines.push(`  v = 0; d = b - 48;`);
    lines.push(`  while (d >= 0 && d <= 9) { v = v * 10 + d; d = buf[++p] - 48; }`);
    lines.push(`  n = p - s;`);
    lines.push(`  if (n === 0 || n > ${MAX_FAST_DIGITS} || (n > 1 && buf[s] === 48)) return -1;`);
    if (col.minimum !== null) lines.push(`  if (v < ${literal(col.minimum)}) return -1;`);
    if (col.maximum !== null) lines.push(`  if (v > ${literal(col.maximum)}) return -1;`);
    if (col.allowed !== null) lines.push(`  if (!A[${c}].has(v)) return -1;`);
    lines.push(`  out[o] = 0; out[o + 1] = 0; out[o + 2] = 0; out[o + 3] = 8;`);
    lines.push(`  hi = Math.floor(v / 4294967296); lo = v >>> 0;`);
    lines.push(`  ${writeInt32Code('o + 4', 'hi')} ${writeInt32Code('o + 8', 'lo')} o += 12;`);
    if (key >= 0) lines.push(`  keyValues[${key}] = String(v);`);
  } else {
    lines.push(`  while (T[b] === 1) b = buf[++p];`);
    lines.push(`  e = p;`);
    lines.push(`  if (e === s || buf[s] === 32 || buf[e - 1] === 32) return -1;`);
    switch (col.kind) {
      case FastKind.IsoDate:
        // YYYY-MM-DD read in place: eight digits and two dashes, then the (cached) day number.
        lines.push(`  if (e - s !== 10 || buf[s + 4] !== 45 || buf[s + 7] !== 45) return -1;`);
        lines.push(`  y = 0; for (k = s; k < s + 4; k++) { d = buf[k] - 48; if (d < 0 || d > 9) return -1; y = y * 10 + d; }`);
        lines.push(`  d = buf[s + 5] - 48; n = buf[s + 6] - 48; if (d < 0 || d > 9 || n < 0 || n > 9) return -1; m = d * 10 + n;`);
        lines.push(`  d = buf[s + 8] - 48; n = buf[s + 9] - 48; if (d < 0 || d > 9 || n < 0 || n > 9) return -1;`);
        lines.push(`  v = H.daysOf(y, m, d * 10 + n); if (v === ${NOT_A_DATE}) return -1;`);
        lines.push(`  out[o] = 0; out[o + 1] = 0; out[o + 2] = 0; out[o + 3] = 4; ${writeInt32Code('o + 4', 'v')} o += 8;`);
        break;
      case FastKind.DayFirstDate:
        lines.push(`  v = H.dayFirstDays(buf, s, e, ${col.yearDigits === 2 ? 2 : 4}); if (v === ${NOT_A_DATE}) return -1;`);
        lines.push(`  out[o] = 0; out[o + 1] = 0; out[o + 2] = 0; out[o + 3] = 4; ${writeInt32Code('o + 4', 'v')} o += 8;`);
        break;
      case FastKind.Enum: {
        const test = enumTest(col.enumBytes!);
        lines.push(`  n = e - s;`);
        lines.push(test === null ? `  if (H.enumIndex(buf, s, e, E[${c}]) < 0) return -1;` : `  if (!(${test})) return -1;`);
        lines.push(`  ${writeInt32Code('o', 'n')} o += 4;`);
        lines.push(`  for (k = s; k < e; k++) out[o++] = buf[k];`);
        break;
      }
      case FastKind.Boolean:
        lines.push(`  v = H.booleanBytes(buf, s, e); if (v < 0) return -1;`);
        lines.push(`  out[o] = 0; out[o + 1] = 0; out[o + 2] = 0; out[o + 3] = 1; out[o + 4] = v; o += 5;`);
        break;
      case FastKind.Digits:
        // A number (float8) column: plain digits, or a plain decimal, as the general loop reads them.
        lines.push(`  v = H.plainDigits(buf, s, e); if (v < 0) v = H.plainDecimal(buf, s, e); if (v < 0) return -1;`);
        if (col.minimum !== null) lines.push(`  if (v < ${literal(col.minimum)}) return -1;`);
        if (col.maximum !== null) lines.push(`  if (v > ${literal(col.maximum)}) return -1;`);
        if (col.allowed !== null) lines.push(`  if (!A[${c}].has(v)) return -1;`);
        // writeDoubleBE checks its bounds (and throws), unlike the stores above.
        lines.push(`  if (o + 12 > L) return -1;`);
        lines.push(`  out[o] = 0; out[o + 1] = 0; out[o + 2] = 0; out[o + 3] = 8; o = out.writeDoubleBE(v, o + 4);`);
        break;
      default:
        throw new Error(`fused encoder: no code for column kind ${col.kind}`);
    }
    if (key >= 0) lines.push(`  keyValues[${key}] = H.canonicalText(${col.kind}, buf, s, e, v);`);
  }
  lines.push(`}`);
  if (!last) lines.push(`if (buf[p] !== ${delim}) return -1; p++;`);
  else if (crlf) lines.push(`if (buf[p] === 13 && buf[p + 1] === 10) p += 2; else return -1;`);
  else lines.push(`if (buf[p] === 10) p++; else return -1;`);
  return lines.join('\n');
}

/** The encoder's source: a factory taking the tables and helpers, returning the encoder. */
function encoderSource(cols: readonly FastColumn[], delim: number, crlf: boolean): string {
  if (!Number.isInteger(delim) || delim < 0 || delim > 255) throw new Error('fused encoder: delimiter is not a byte');
  return [
    `'use strict';`,
    `return function fusedEncode(buf, p, out, o, keyValues) {`,
    `const lineStart = p; const L = out.length;`,
    `let s = 0, b = 0, v = 0, d = 0, n = 0, e = 0, k = 0, la = 0, hi = 0, lo = 0, y = 0, m = 0;`,
    ...cols.map((col, c) => columnCode(col, c, c === cols.length - 1, crlf, delim)),
    `if (p - lineStart > ${FUSED_MAX_LINE}) return -1;`,
    `N[0] = p;`,
    `return o;`,
    `};`,
  ].join('\n');
}

/**
 * The fused encoder for `cols` (every one of a kind fusedPlan accepts): generated for up to
 * FUSED_MAX_COLUMNS columns, else (or where this process cannot compile code from strings) the
 * loop over the columns' plans.
 */
export function compileFusedEncoder(cols: readonly FastColumn[], delim: number, crlf: boolean): CompiledFusedEncoder {
  const text = fusedTextBytes(delim);
  const next = new Int32Array(1);
  const factory = cols.length <= FUSED_MAX_COLUMNS ? factoryFor(encoderSource(cols, delim, crlf)) : null;
  if (factory === null) {
    return { encode: (buf, p, out, o, keyValues) => encodeLine(cols, text, buf, p, out, o, delim, crlf, keyValues, next), next, generated: false };
  }
  const encode = factory(
    text,
    HELPERS,
    cols.map((c) => c.enumBytes),
    cols.map((c) => c.allowed),
    next,
  );
  return { encode, next, generated: true };
}

/** The compiled factory of `source` (cached), or null where code from strings is forbidden. */
function factoryFor(source: string): Factory | null {
  let factory = factories.get(source);
  if (factory === undefined) {
    try {
      factory = new Function('T', 'H', 'E', 'A', 'N', source) as Factory;
    } catch (err) {
      if (err instanceof EvalError) return null;
      throw err;
    }
    if (factories.size >= MAX_FACTORIES) factories.delete(factories.keys().next().value!);
    factories.set(source, factory);
  }
  return factory;
}
