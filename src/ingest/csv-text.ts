import { isUtf8 } from 'node:buffer';
import type Papa from 'papaparse';
import { strayQuoteRows, STRAY_QUOTE_MESSAGE, UnsupportedEncodingError } from './csv-dialect';
import { MixedLineEndingsError, NotCsvError } from './csv-errors';
import { INVALID_UTF8_MARK } from './row-validator';

/**
 * What the CSV readers (runCsvPipeline, csv-records.ts) share before and around parsing: sniffing
 * the first bytes, decoding with invalid UTF-8 marked, line breaks, blank lines and quote problems.
 */

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

export const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

export function startsWithBom(buf: Buffer): boolean {
  return buf.length >= BOM.length && buf[0] === BOM[0] && buf[1] === BOM[1] && buf[2] === BOM[2];
}

/** A blank (or whitespace-only) line: skipped wherever it is, as spreadsheets leave them. */
export function isBlank(cells: readonly string[]): boolean {
  return cells.length === 1 && cells[0]!.trim() === '';
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
export function quoteProblems(
  parsed: Papa.ParseResult<string[]>,
  text: string,
  quoted: boolean,
  delimiter: string,
  newline: string,
): Map<number, string> | null {
  const rows = parsed.data;
  let problems = malformedRows(parsed.errors, rows.length);
  if (!quoted) return problems;
  const stray = strayQuoteRows(text, rows, delimiter, newline);
  if (stray) for (const r of stray) if (!problems?.has(r)) (problems ??= new Map()).set(r, STRAY_QUOTE_MESSAGE);
  return problems;
}
