import type { Writable } from 'node:stream';
import { COPY_NULL } from './csv-escape';
import type { InvalidRow } from './pipeline-types';
import { isBlank, type Newline } from './csv-text';
import {
  booleanBytes,
  canonicalText,
  dayFirstDays,
  enumIndex,
  FastKind,
  isoDateDays,
  isoOfDays,
  outOfRange,
  NOT_A_DATE,
  plainDecimal,
  plainDigits,
  writeBinaryField,
  writeInt32,
  writeUint53,
  type ByteSink,
  type FastColumn,
} from './fast-path';
import { type CompiledFusedEncoder, FUSED_MAX_LINE } from './fused-encoder';
import type { KeyIndex } from './key-index';
import type { HeaderMapping } from './row-validator';

/**
 * The byte-level fast path of runCsvPipeline: plain lines (no quote, no stray line break, valid
 * UTF-8) are split, checked and written as COPY bytes without decoding them to strings.
 */

/**
 * What scanRegion reads and advances of a pipeline run (PipelineRun implements it; no other
 * object is ever passed, so the accesses stay monomorphic).
 */
export interface ScanState {
  /** The fast-path plan of the spec's columns (null: no fast path for this file). */
  readonly fastColumns: FastColumn[] | null;
  readonly mapping: HeaderMapping | null;
  readonly newline: Newline | null;
  readonly delimiter: string;
  /** `delimiter` as a byte. */
  readonly delimiterByte: number;
  /** Per header field of the current line: where its cell starts and ends, and its byte flags. */
  readonly cellStarts: Int32Array;
  readonly cellEnds: Int32Array;
  readonly cellFlags: Int32Array;
  readonly copyBytes: ByteSink;
  readonly validBytes: ByteSink;
  readonly sinks: { readonly validCsv?: Writable };
  /** `fileId \t` in text COPY. */
  readonly prefixBytes: Buffer;
  readonly seenKeys: KeyIndex | null;
  readonly keyIndexes: readonly number[];
  readonly keyOrder: readonly number[];
  /** COPY binary format. */
  readonly binary: boolean;
  readonly fileIdField: Buffer;
  /** Fields of one binary COPY tuple. */
  readonly copyFields: number;
  /**
   * The fused encoder for the file's columns (compileFusedEncoder), or null where it does not
   * apply (see fusedPlan): binary COPY, the file's fields in the spec's order.
   */
  readonly fused: CompiledFusedEncoder | null;
  /** Physical line where the next record starts. */
  nextLine: number;
  readonly counts: { total: number; valid: number };
  /** The string path for one record (a line the byte checks refused or cannot take). */
  takeRecord(cells: string[], line: number, invalid: InvalidRow[], malformed: string | false): void;
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
 * The synchronous part of PipelineRun.fastRegion: rows into the byte sinks, refused rows into
 * `invalid`. Kept free of `await` so V8 optimises it as one plain loop; `run` is always a
 * PipelineRun (one hidden class), so its property reads stay monomorphic.
 */
export function scanRegion(run: ScanState, buf: Buffer, end: number, invalid: InvalidRow[]): number {
  const cols = run.fastColumns!;
  const count = cols.length;
  const fieldCount = run.mapping!.fieldCount;
  const crlf = run.newline === '\r\n';
  const delim = run.delimiterByte;
  // Valid rows of a file not separated by commas are written to the valid-rows file as commas.
  const asIs = delim === 44;
  const cs = run.cellStarts;
  const ce = run.cellEnds;
  const cf = run.cellFlags;
  const copy = run.copyBytes;
  const valid = run.sinks.validCsv ? run.validBytes : null;
  const prefix = run.prefixBytes;
  const keys = run.seenKeys;
  const keyValues: string[] = new Array<string>(run.keyIndexes.length);
  const bin = run.binary;
  const idField = run.fileIdField;
  const fields = run.copyFields;
  // Consecutive valid rows of an LF file are copied to the valid-rows file as one run of bytes.
  let runStart = -1;
  let runEnd = -1;
  const keyOrder = run.keyOrder;
  let pos = 0;
  let stop = end;
  // Binary COPY is at most about twice the CSV (8-byte numbers, 4-byte lengths): grow once per region.
  copy.ensure(2 * end + 1024);
  if (valid) valid.ensure(end + 1024);
  const fused = run.fused;
  const fusedEncode = fused === null ? null : fused.encode;
  const fusedNext = fused === null ? null : fused.next;
  const fusedRoom = 16 + idField.length + 12 * count + FUSED_MAX_LINE;

  lines: while (pos < end) {
    const lineStart = pos;
    let contentEnd = 0;
    // A row that is written ends the block (the fused encoder's, or the general loop's at its
    // end); a line handed elsewhere continues the loop from inside it.
    row: {
      if (fusedEncode !== null) {
        if (copy.buf.length - copy.at < fusedRoom) copy.ensure(fusedRoom);
        const fo = copy.buf;
        let o = copy.at;
        const line = run.nextLine;
        fo[o++] = fields >>> 8;
        fo[o++] = fields;
        for (let k = 0; k < idField.length; k++) fo[o++] = idField[k]!;
        o = writeInt32(fo, o, 4);
        o = writeInt32(fo, o, line);
        o = fusedEncode(buf, pos, fo, o, keyValues);
        // A repeated key: the general loop finds it again and hands the line to the string path.
        if (o >= 0 && keys !== null && keys.firstLineOf(keyValues, keyOrder, line) !== -1) o = -1;
        if (o >= 0) {
          run.nextLine++;
          copy.at = o;
          pos = fusedNext![0]!;
          contentEnd = crlf ? pos - 2 : pos - 1;
          break row;
        }
      }
      let cellStart = pos;
      let flags = 0;
      let n = 0;
      let i = pos;
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
      const line = run.nextLine++;
      if (contentEnd === lineStart) continue; // blank line
      // A wrong cell count, or a lone padded cell (maybe a whitespace-only line): the string way.
      if (n !== fieldCount || (n === 1 && (buf[lineStart]! <= 32 || buf[contentEnd - 1]! <= 32))) {
        if (runStart >= 0) {
          appendValidRun(run, buf, runStart, runEnd);
          runStart = -1;
        }
        const cells = buf.toString('utf8', lineStart, contentEnd).split(run.delimiter);
        if (!isBlank(cells)) run.takeRecord(cells, line, invalid, false);
        continue;
      }

      const rowStart = copy.at;
      const budget = 48 + prefix.length + 3 * (contentEnd - lineStart) + 12 * count;
      copy.ensure(budget);
      let out = copy.buf;
      let o = rowStart;
      if (bin) {
        out[o++] = fields >>> 8;
        out[o++] = fields;
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
                if (outOfRange(col, v)) ok = false;
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
          appendValidRun(run, buf, runStart, runEnd);
          runStart = -1;
        }
        run.takeRecord(buf.toString('utf8', lineStart, contentEnd).split(run.delimiter), line, invalid, false);
        continue;
      }
      if (!bin) out[o++] = 10;
      copy.at = o;
    }
    run.counts.total++;
    run.counts.valid++;
    if (valid) {
      if (!asIs) {
        appendLineCells(run, buf, lineStart, contentEnd, delim);
      } else if (!crlf) {
        if (runStart < 0) runStart = lineStart;
        else if (runEnd !== lineStart) {
          appendValidRun(run, buf, runStart, runEnd);
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
  if (runStart >= 0) appendValidRun(run, buf, runStart, runEnd);
  return stop;
}

/** Source bytes `buf[start, end)` (whole valid lines) into the valid-rows file. */
function appendValidRun(run: ScanState, buf: Buffer, start: number, end: number): void {
  const valid = run.validBytes;
  valid.ensure(end - start);
  valid.at += buf.copy(valid.buf, valid.at, start, end);
}

/**
 * A fast-path row, `buf[start, end)` with `delim` between its cells, into the valid-rows file as
 * a comma-separated line, as csvLine writes it: a cell is quoted when it holds a comma (it holds
 * no quote, CR or LF, or the fast path would not have taken its line).
 */
function appendLineCells(run: ScanState, buf: Buffer, start: number, end: number, delim: number): void {
  const valid = run.validBytes;
  valid.ensure(3 * (end - start) + 1);
  const vb = valid.buf;
  let at = valid.at;
  let s = start;
  for (;;) {
    let e = s;
    let quote = false;
    for (; e < end && buf[e] !== delim; e++) if (buf[e] === 44) quote = true;
    if (quote) vb[at++] = 34;
    at += buf.copy(vb, at, s, e);
    if (quote) vb[at++] = 34;
    if (e >= end) break;
    vb[at++] = 44;
    s = e + 1;
  }
  vb[at++] = 10;
  valid.at = at;
}
