import type { Readable } from 'node:stream';
import Papa from 'papaparse';
import { DEFAULT_MAX_RECORD_LENGTH } from './csv-pipeline';
import { NotCsvError, RecordTooLargeError } from './csv-errors';
import {
  binaryMagic,
  BOM,
  checkLineEndings,
  decodeMarked,
  detectNewline,
  isBlank,
  physicalLines,
  quoteProblems,
  sniff,
  SNIFF_BYTES,
  startsWithBom,
  type Newline,
} from './csv-text';
import { bomEncoding, detectDelimiter, Transcoder, type CsvDelimiter, type CsvDialect, type CsvDialectOptions, type CsvEncoding } from './csv-dialect';
import { INVALID_UTF8_MARK, printable } from './row-validator';

/**
 * The record reader for CSV entry points that do not go through the ingestion pipeline (directory
 * bulk uploads): the same bytes-to-records rules as the pipeline's general path, with no spec.
 * Same sniffing (NOT_A_CSV, UNSUPPORTED_ENCODING), encodings and transcoding, BOM, delimiter
 * detection, line-ending rule (MIXED_LINE_ENDINGS), quote rule (MALFORMED_QUOTES), record bound
 * (RECORD_TOO_LARGE) and physical line numbers; a record with bytes that are not valid in the
 * file's encoding is flagged INVALID_UTF8, its cells made printable. Memory stays flat.
 */

export interface CsvRecord {
  /** Physical line where the record starts (header = 1), counting blank lines and line breaks inside quoted cells. */
  line: number;
  cells: string[];
  /** Why the record cannot be used as it is, or null. */
  problem: CsvRecordProblem | null;
}

export interface CsvRecordProblem {
  code: 'MALFORMED_QUOTES' | 'INVALID_UTF8';
  message: string;
  /** MALFORMED_QUOTES: a quote opened and never closed, so the record ran to the end of the file. */
  unclosed?: boolean;
}

export interface CsvRecordReaderOptions extends CsvDialectOptions {
  /** Longest record, in UTF-16 characters (see CsvPipelineOptions.maxRecordLength). Default 1 Mi characters. */
  maxRecordLength?: number;
  /** Called once, when the header line has been read, with how the file is read. */
  onDialect?: (dialect: CsvDialect) => void;
}

const EMPTY = Buffer.alloc(0);

/**
 * Streams the records of `input`, header first, blank lines skipped. Rejects with NotCsvError,
 * UnsupportedEncodingError, MixedLineEndingsError or RecordTooLargeError (see csv-errors.ts).
 */
export async function* readCsvRecords(input: Readable, opts: CsvRecordReaderOptions = {}): AsyncGenerator<CsvRecord> {
  const reader = new RecordReader(opts);
  try {
    for await (const chunk of input as AsyncIterable<Buffer | string>) {
      yield* reader.push(typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk);
    }
    yield* reader.end();
  } finally {
    if (!input.destroyed) input.destroy();
  }
}

class RecordReader {
  private rawHead: Buffer | null = EMPTY;
  private transcoder: Transcoder | null = null;
  private encoding: CsvEncoding = 'UTF_8';
  private bom = false;
  private started = false;
  private pendingBytes: Buffer = EMPTY;
  private pending = '';
  private parser: Papa.Parser | null = null;
  private newline: Newline = '\n';
  private delimiter: CsvDelimiter = ',';
  private nextLine = 1;
  private readonly maxRecordLength: number;

  constructor(private readonly opts: CsvRecordReaderOptions) {
    this.maxRecordLength = opts.maxRecordLength ?? DEFAULT_MAX_RECORD_LENGTH;
  }

  push(chunk: Buffer): CsvRecord[] {
    if (this.rawHead !== null) {
      const head = this.rawHead.length === 0 ? chunk : Buffer.concat([this.rawHead, chunk]);
      if (head.length < SNIFF_BYTES) {
        this.rawHead = head;
        return [];
      }
      this.rawHead = null;
      this.decideEncoding(head);
      return this.bytes(this.transcoder ? this.transcoder.write(head) : head, false);
    }
    return this.bytes(this.transcoder ? this.transcoder.write(chunk) : chunk, false);
  }

  end(): CsvRecord[] {
    const out: CsvRecord[] = [];
    if (this.rawHead !== null) {
      const head = this.rawHead;
      this.rawHead = null;
      this.decideEncoding(head);
      out.push(...this.bytes(this.transcoder ? this.transcoder.write(head) : head, false));
    }
    out.push(...this.bytes(this.transcoder ? this.transcoder.end() : EMPTY, true));
    return out;
  }

  /** As PipelineRun.decideEncoding. */
  private decideEncoding(head: Buffer): void {
    const marked = bomEncoding(head);
    this.encoding = marked ?? this.opts.encoding ?? 'UTF_8';
    this.bom = marked !== null;
    if (this.encoding === 'UTF_8') return;
    const what = binaryMagic(head.subarray(0, SNIFF_BYTES));
    if (what !== null) throw new NotCsvError(what);
    this.transcoder = new Transcoder(this.encoding);
  }

  /** UTF-8 bytes: sniffed and stripped of a BOM first, then decoded up to the last line break. */
  private bytes(chunk: Buffer, final: boolean): CsvRecord[] {
    let buf = this.pendingBytes.length === 0 ? chunk : Buffer.concat([this.pendingBytes, chunk]);
    this.pendingBytes = EMPTY;
    if (!this.started) {
      if (buf.length < SNIFF_BYTES && !final) {
        this.pendingBytes = buf;
        return [];
      }
      sniff(buf.subarray(0, SNIFF_BYTES));
      this.started = true;
      if (startsWithBom(buf)) {
        buf = buf.subarray(BOM.length);
        this.bom = true;
      }
    }
    if (final) return this.text(decodeMarked(buf), true);
    const end = Math.max(buf.lastIndexOf(10), buf.lastIndexOf(13)) + 1;
    this.pendingBytes = buf.subarray(end);
    if (this.pendingBytes.length > this.maxRecordLength) throw new RecordTooLargeError(this.nextLine, this.maxRecordLength);
    return end === 0 ? [] : this.text(decodeMarked(buf, 0, end), false);
  }

  /** As PipelineRun.feed and handleRecords, without a spec. */
  private text(text: string, final: boolean): CsvRecord[] {
    const aggregate = this.pending + text;
    if (this.parser === null) {
      const newline = detectNewline(aggregate, final);
      const delimiter = newline === null ? null : (this.opts.delimiter ?? detectDelimiter(aggregate, newline, final));
      if (newline === null || delimiter === null) {
        this.keepPending(aggregate);
        return [];
      }
      this.newline = newline;
      this.delimiter = delimiter;
      this.parser = new Papa.Parser({ delimiter, newline, quoteChar: '"', escapeChar: '"' });
      this.opts.onDialect?.({ delimiter, encoding: this.encoding, bom: this.bom, lineEnding: newline === '\r\n' ? 'CRLF' : newline === '\r' ? 'CR' : 'LF' });
    }
    checkLineEndings(aggregate, this.newline, this.nextLine);
    const parsed = this.parser.parse(aggregate, 0, !final) as Papa.ParseResult<string[]>;
    this.keepPending(final ? '' : aggregate.slice(parsed.meta.cursor));
    const problems = quoteProblems(parsed, aggregate, aggregate.indexOf('"') !== -1, this.delimiter, this.newline);
    const unclosed = new Set(parsed.errors.filter((e) => e.code === 'MissingQuotes').map((e) => e.row));
    const lineBreak = this.newline === '\r' ? '\r' : '\n';
    const out: CsvRecord[] = [];
    parsed.data.forEach((cells, r) => {
      const line = this.nextLine;
      this.nextLine += physicalLines(cells, lineBreak);
      if (isBlank(cells)) return;
      const quotes = problems?.get(r);
      let problem: CsvRecordProblem | null = quotes ? { code: 'MALFORMED_QUOTES', message: quotes, unclosed: unclosed.has(r) } : null;
      const bad = cells.findIndex((c) => c.indexOf(INVALID_UTF8_MARK) !== -1);
      if (bad !== -1) {
        for (let i = 0; i < cells.length; i++) cells[i] = printable(cells[i]!, Infinity);
        problem ??= {
          code: 'INVALID_UTF8',
          message: `cell ${bad + 1} holds bytes that are not valid ${this.encoding === 'UTF_8' ? 'UTF-8' : this.encoding} (shown as U+FFFD)`,
        };
      }
      out.push({ line, cells, problem });
    });
    return out;
  }

  private keepPending(rest: string): void {
    if (rest.length > this.maxRecordLength) throw new RecordTooLargeError(this.nextLine, this.maxRecordLength);
    this.pending = rest;
  }
}
