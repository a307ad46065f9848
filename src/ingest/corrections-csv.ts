import type { Readable } from 'node:stream';
import Papa from 'papaparse';
import { DEFAULT_MAX_RECORD_LENGTH } from './csv-pipeline';
import { csvLine } from './csv-escape';

/** The corrected error report cannot be put back where its rows came from; nothing of it was applied. */
export class CorrectionsFormatError extends Error {
  readonly code = 'CORRECTIONS_INVALID';
  constructor(message: string) {
    super(message);
    this.name = 'CorrectionsFormatError';
  }
}

/** What safeCsvLine (csv-escape.ts) put before a cell a spreadsheet would evaluate. */
const NEUTRALISED = /^'[=+\-@\t\r]/;
const LINE = /^\d{1,10}$/;

/** Bytes handed to the CSV pipeline at once. */
const OUT_CHUNK_CHARS = 64 * 1024;

/**
 * Turns a corrected error report (`_line, <the file's columns>, error_description[, extra cells]`,
 * as GET /files/:id/errors.csv serves it) back into the file it came from: the original header, then
 * each record at its original line (the gaps filled with blank lines, which the pipeline skips), so
 * the pipeline validates and numbers the rows exactly as it did the first time. `_line` and
 * `error_description` are dropped, and the `'` the report put before formula-like cells is removed.
 *
 * Rejects with CorrectionsFormatError (before or while the rows stream) when `_line` is missing,
 * not a line number, not increasing, or beyond `maxLine` (the parent's last line): the padding is
 * bounded by the parent's own length.
 */
export async function* restoreCorrectedCsv(input: Readable, maxLine: number, maxRecordLength = DEFAULT_MAX_RECORD_LENGTH): AsyncGenerator<Buffer> {
  // Fatal: a replacement character must not reach a stored value (the pipeline reports such bytes
  // as INVALID_UTF8, which this re-serialisation would hide).
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const decode = (chunk: Buffer | undefined): string => {
    try {
      return chunk ? decoder.decode(chunk, { stream: true }) : decoder.decode();
    } catch {
      throw new CorrectionsFormatError('The corrections are not valid UTF-8 text; save the report as UTF-8 CSV');
    }
  };
  let first = true;
  let pending = '';
  let parser: Papa.Parser | null = null;
  let header: { description: number } | null = null;
  /** Physical line the next emitted text starts on (the header is line 1). */
  let next = 1;
  let out = '';

  const record = (cells: string[]): void => {
    if (cells.every((c) => c.trim() === '')) return;
    const plain = cells.map((c) => (NEUTRALISED.test(c) ? c.slice(1) : c));
    if (header === null) {
      if (plain[0]?.replace(/^\uFEFF/, '') !== '_line') {
        throw new CorrectionsFormatError(
          'The first column must be _line, as in the error report (GET /files/<id>/errors.csv); upload the report with its _line column',
        );
      }
      const description = plain.lastIndexOf('error_description');
      if (description < 1) throw new CorrectionsFormatError('The error_description column of the error report is missing; keep it (its content is ignored)');
      header = { description };
      out += csvLine(plain.slice(1, description));
      next = 2;
      return;
    }
    const raw = plain[0] ?? '';
    if (!LINE.test(raw.trim()))
      throw new CorrectionsFormatError(`_line ${JSON.stringify(raw.slice(0, 40))} is not a line number; keep the _line column as the report has it`);
    const line = Number(raw.trim());
    if (line < next) throw new CorrectionsFormatError(`_line ${line} is out of order (lines must increase, each at most once, as in the report)`);
    if (line > maxLine) throw new CorrectionsFormatError(`_line ${line} is beyond the last line (${maxLine}) of the file being corrected`);
    const cells2 = [...plain.slice(1, header.description), ...plain.slice(header.description + 1)];
    out += '\n'.repeat(line - next);
    const text = csvLine(cells2);
    out += text;
    next = line + countLf(text);
  };

  const feed = (text: string, final: boolean): void => {
    const aggregate = pending + text;
    if (parser === null) {
      const nl = aggregate.search(/\r\n|\n|\r/);
      if (nl === -1 && !final) {
        pending = aggregate;
        if (pending.length > maxRecordLength) throw new CorrectionsFormatError(`The header is longer than ${maxRecordLength} characters`);
        return;
      }
      const newline = nl === -1 ? '\n' : aggregate.startsWith('\r\n', nl) ? '\r\n' : aggregate[nl] === '\r' ? '\r' : '\n';
      parser = new Papa.Parser({ delimiter: ',', newline, quoteChar: '"', escapeChar: '"' });
    }
    const parsed = parser.parse(aggregate, 0, !final) as Papa.ParseResult<string[]>;
    pending = final ? '' : aggregate.slice(parsed.meta.cursor);
    if (pending.length > maxRecordLength)
      throw new CorrectionsFormatError(`A record of the corrections is longer than ${maxRecordLength} characters; check for an unterminated quote`);
    for (const cells of parsed.data) record(cells);
  };

  for await (const chunk of input as AsyncIterable<Buffer | string>) {
    if (first && typeof chunk !== 'string') {
      first = false;
      // Not text, or not UTF-8 text: passed on as it is, for the pipeline's own refusal (NOT_A_CSV, UNSUPPORTED_ENCODING).
      if (looksBinary(chunk)) {
        yield chunk;
        for await (const rest of input as AsyncIterable<Buffer>) yield rest;
        return;
      }
    }
    feed(typeof chunk === 'string' ? chunk : decode(chunk), false);
    if (out.length >= OUT_CHUNK_CHARS) {
      yield Buffer.from(out);
      out = '';
    }
  }
  feed(decode(undefined), true);
  if (header === null && out === '') return;
  if (out) yield Buffer.from(out);
}

/** A NUL byte or a UTF-16/32 byte order mark in the first bytes. */
function looksBinary(head: Buffer): boolean {
  const start = head.subarray(0, 1024);
  return start.includes(0) || (start[0] === 0xff && start[1] === 0xfe) || (start[0] === 0xfe && start[1] === 0xff);
}

function countLf(text: string): number {
  let n = 0;
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) n++;
  return n;
}
