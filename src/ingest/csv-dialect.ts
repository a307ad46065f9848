import iconv from 'iconv-lite';

/**
 * The CSV dialect layer shared by every CSV reader (the ingestion pipeline and the record reader
 * used by directory uploads): which encoding the bytes are in, which delimiter separates cells,
 * and the quote rule. Everything else (header checks, validation) sits above it.
 */

/** Encodings a CSV may be read in. UTF-8 is read natively; the others are transcoded to UTF-8 while streaming. */
export const CSV_ENCODINGS = ['UTF_8', 'UTF_16LE', 'UTF_16BE', 'WINDOWS_1252', 'ISO_8859_1', 'ISO_8859_15', 'WINDOWS_1250', 'WINDOWS_1251'] as const;
export type CsvEncoding = (typeof CSV_ENCODINGS)[number];

/** iconv-lite's name for each encoding other than UTF-8. */
const ICONV_NAMES: Record<Exclude<CsvEncoding, 'UTF_8'>, string> = {
  UTF_16LE: 'utf-16le',
  UTF_16BE: 'utf-16be',
  WINDOWS_1252: 'windows-1252',
  ISO_8859_1: 'iso-8859-1',
  ISO_8859_15: 'iso-8859-15',
  WINDOWS_1250: 'windows-1250',
  WINDOWS_1251: 'windows-1251',
};

/** Cell delimiters a CSV may use. */
export const CSV_DELIMITERS = [',', ';', '\t', '|'] as const;
export type CsvDelimiter = (typeof CSV_DELIMITERS)[number];

export type CsvLineEnding = 'LF' | 'CRLF' | 'CR';

/** How a file was read: reported on the file (`file.dialect`). */
export interface CsvDialect {
  delimiter: CsvDelimiter;
  encoding: CsvEncoding;
  /** The file started with a byte order mark (UTF-8 or UTF-16), which was dropped. */
  bom: boolean;
  lineEnding: CsvLineEnding;
}

/** What the caller asked for; anything absent is detected. */
export interface CsvDialectOptions {
  /**
   * The file's encoding. Absent: UTF-8, or UTF-16 LE/BE when the file starts with a UTF-16 byte
   * order mark. A byte order mark always wins over this option (it cannot be mistaken).
   */
  encoding?: CsvEncoding;
  /** The cell delimiter. Absent: detected from the header line (see detectDelimiter). */
  delimiter?: CsvDelimiter;
}

/** The input is text in an encoding Sluice cannot read (UTF-32, or UTF-16 without a BOM and no `encoding`): refused before any row. */
export class UnsupportedEncodingError extends Error {
  readonly code = 'UNSUPPORTED_ENCODING';
  constructor(readonly encoding: string) {
    super(
      `The file is encoded as ${encoding}; Sluice reads UTF-8 (with or without a BOM) and UTF-16 with a BOM, and other encodings when the upload names them (encoding: UTF_16LE, WINDOWS_1252, ...). Save it as UTF-8 CSV or pass encoding`,
    );
    this.name = 'UnsupportedEncodingError';
  }
}

/**
 * The encoding a byte order mark at the start of `head` declares, or null. UTF-32 marks are
 * refused (UnsupportedEncodingError). Needs the first 4 bytes (fewer only at the end of input).
 */
export function bomEncoding(head: Buffer): 'UTF_8' | 'UTF_16LE' | 'UTF_16BE' | null {
  if (head.length >= 4 && head[0] === 0xff && head[1] === 0xfe && head[2] === 0 && head[3] === 0) throw new UnsupportedEncodingError('UTF-32LE');
  if (head.length >= 4 && head[0] === 0 && head[1] === 0 && head[2] === 0xfe && head[3] === 0xff) throw new UnsupportedEncodingError('UTF-32BE');
  if (head.length >= 3 && head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf) return 'UTF_8';
  if (head.length >= 2 && head[0] === 0xff && head[1] === 0xfe) return 'UTF_16LE';
  if (head.length >= 2 && head[0] === 0xfe && head[1] === 0xff) return 'UTF_16BE';
  return null;
}

/** A byte that is never valid UTF-8: what the transcoder writes for a character it could not decode. */
const INVALID = 0xff;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * Streams bytes in `encoding` to UTF-8 bytes, chunk by chunk (a character split across chunks is
 * kept for the next one; memory stays flat). A byte order mark is dropped. What cannot be decoded
 * (a byte a code page leaves undefined, a lone UTF-16 surrogate, an odd trailing byte) becomes one
 * 0xFF byte, which the UTF-8 reader downstream reports like any invalid UTF-8 (INVALID_UTF8 row
 * error), so no U+FFFD is ever stored in its place.
 */
export class Transcoder {
  private readonly decoder: { write(b: Buffer): string; end(): string | undefined };
  private readonly wide: boolean;
  private bytes = 0;

  constructor(readonly encoding: Exclude<CsvEncoding, 'UTF_8'>) {
    this.decoder = iconv.getDecoder(ICONV_NAMES[encoding], { stripBOM: true });
    this.wide = encoding === 'UTF_16LE' || encoding === 'UTF_16BE';
  }

  write(chunk: Buffer): Buffer {
    this.bytes += chunk.length;
    return utf8Marked(this.decoder.write(chunk));
  }

  end(): Buffer {
    const rest = utf8Marked(this.decoder.end() ?? '');
    // iconv-lite drops an odd last byte of UTF-16 silently.
    return this.wide && this.bytes % 2 === 1 ? Buffer.concat([rest, Buffer.from([INVALID])]) : rest;
  }
}

function utf8Marked(text: string): Buffer {
  const clean = text.replace(LONE_SURROGATE, '\uFFFD');
  if (clean.indexOf('\uFFFD') === -1) return Buffer.from(clean, 'utf8');
  const parts = clean.split('\uFFFD');
  const out: Buffer[] = [];
  parts.forEach((p, k) => {
    if (k > 0) out.push(Buffer.from([INVALID]));
    out.push(Buffer.from(p, 'utf8'));
  });
  return Buffer.concat(out);
}

/**
 * The delimiter of a file whose text starts with `text`: the candidate (`,` `;` tab `|`) that
 * occurs most often outside quotes in the header line (the first line that is not blank); a tie,
 * or none at all, means comma. Null when the header line is not complete yet (more input needed).
 */
export function detectDelimiter(text: string, newline: string, final: boolean): CsvDelimiter | null {
  let at = 0;
  for (;;) {
    const end = unquotedIndexOf(text, newline, at);
    if (end === -1 && !final) return null;
    const line = text.slice(at, end === -1 ? text.length : end);
    if (line.trim() !== '' || end === -1) return delimiterOf(line);
    at = end + newline.length;
  }
}

function delimiterOf(line: string): CsvDelimiter {
  const counts = new Map<CsvDelimiter, number>(CSV_DELIMITERS.map((d) => [d, 0]));
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (ch === '"') quoted = !quoted;
    else if (!quoted && counts.has(ch as CsvDelimiter)) counts.set(ch as CsvDelimiter, counts.get(ch as CsvDelimiter)! + 1);
  }
  let best: CsvDelimiter = ',';
  let bestCount = counts.get(',')!;
  for (const d of CSV_DELIMITERS) {
    if (counts.get(d)! > bestCount) {
      best = d;
      bestCount = counts.get(d)!;
    }
  }
  return best;
}

/** Index of `needle` at or after `from` outside double quotes (quote parity from `from`), or -1. */
function unquotedIndexOf(text: string, needle: string, from: number): number {
  let quoted = false;
  for (let i = from; i < text.length; i++) {
    if (text.charCodeAt(i) === 34) quoted = !quoted;
    else if (!quoted && text.startsWith(needle, i)) return i;
  }
  return -1;
}

export const STRAY_QUOTE_MESSAGE = 'a cell that does not start with a quote holds one; quote the whole cell and double the quote inside it ("ab""c")';

/**
 * The quote rule: a quote inside a cell that does not start with one (`ab"c`) makes its record a
 * MALFORMED_QUOTES row error (papaparse alone would keep the quote as text). Returns the indexes,
 * among the first `rowCount` records papaparse returned for `text`, of records holding such a cell,
 * or null. Walks `text` exactly as papaparse's parser does (same quote, delimiter and newline
 * rules, spaces allowed between a closing quote and the delimiter) so record indexes line up. Only
 * run when a returned cell holds a quote at all: otherwise no record can have one.
 */
export function strayQuoteRows(text: string, rows: readonly string[][], delim: string, newline: string): Set<number> | null {
  if (!rows.some((r) => r.some((c) => c.indexOf('"') !== -1))) return null;
  const rowCount = rows.length;
  let stray: Set<number> | null = null;
  const len = text.length;
  let row = 0;
  let cursor = 0;
  let nextDelim = text.indexOf(delim);
  let nextNewline = text.indexOf(newline);
  let nextQuote = text.indexOf('"');
  const spaces = (from: number, upTo: number) => {
    if (upTo === -1) return 0;
    const between = text.substring(from, upTo);
    return between && between.trim() === '' ? between.length : 0;
  };
  outer: while (row < rowCount && cursor < len) {
    if (text.charCodeAt(cursor) === 34) {
      let q = cursor;
      for (;;) {
        q = text.indexOf('"', q + 1);
        if (q === -1 || q === len - 1) break outer;
        if (text.charCodeAt(q + 1) === 34) {
          q++;
          continue;
        }
        if (nextDelim !== -1 && nextDelim < q + 1) nextDelim = text.indexOf(delim, q + 1);
        if (nextNewline !== -1 && nextNewline < q + 1) nextNewline = text.indexOf(newline, q + 1);
        const upTo = nextNewline === -1 ? nextDelim : Math.min(nextDelim, nextNewline);
        const sd = spaces(q + 1, upTo);
        if (text.startsWith(delim, q + 1 + sd)) {
          cursor = q + 1 + sd + delim.length;
          break;
        }
        const sn = spaces(q + 1, nextNewline);
        if (text.startsWith(newline, q + 1 + sn)) {
          cursor = q + 1 + sn + newline.length;
          row++;
          break;
        }
      }
      if (nextDelim !== -1 && nextDelim < cursor) nextDelim = text.indexOf(delim, cursor);
      if (nextNewline !== -1 && nextNewline < cursor) nextNewline = text.indexOf(newline, cursor);
      continue;
    }
    const fieldEnd = nextDelim !== -1 && (nextDelim < nextNewline || nextNewline === -1) ? nextDelim : nextNewline === -1 ? len : nextNewline;
    if (nextQuote !== -1 && nextQuote < cursor) nextQuote = text.indexOf('"', cursor);
    if (nextQuote !== -1 && nextQuote < fieldEnd) (stray ??= new Set()).add(row);
    if (fieldEnd === nextDelim) {
      cursor = nextDelim + delim.length;
      nextDelim = text.indexOf(delim, cursor);
    } else if (fieldEnd === nextNewline) {
      cursor = nextNewline + newline.length;
      nextNewline = text.indexOf(newline, cursor);
      row++;
    } else break;
  }
  return stray;
}
