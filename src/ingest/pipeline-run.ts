import type { Writable } from 'node:stream';
import { isUtf8 } from 'node:buffer';
import Papa from 'papaparse';
import { MiB } from '../shared/units';
import type { CompiledSpec } from './contract';
import { copyEscape, csvEscape, csvLine, safeCsvLine } from './csv-escape';
import {
  checkHeader,
  compileCellChecks,
  INVALID_UTF8_MARK,
  printable,
  compileRowValidator,
  type CellCheck,
  type HeaderMapping,
  type RowError,
  type RowResult,
  type RowValidator,
} from './row-validator';
import { KeyIndex } from './key-index';
import { bomEncoding, detectDelimiter, Transcoder, type CsvDelimiter, type CsvEncoding } from './csv-dialect';
import { binaryTypeOf, ByteSink, PGCOPY_HEADER, PGCOPY_TRAILER, planFastColumns, uuidField, writeBinaryRow, type FastColumn } from './fast-path';
import { scanRegion, type ScanState } from './byte-scanner';
import { type CompiledFusedEncoder, compileFusedEncoder, fusedPlan } from './fused-encoder';
import { AbortError, HeaderError, NotCsvError, RecordTooLargeError } from './csv-errors';
import type { CsvPipelineCounts, CsvPipelineOptions, CsvPipelineResult, CsvPipelineSinks, InvalidRow } from './pipeline-types';
import {
  binaryMagic,
  BOM,
  checkLineEndings,
  decodeMarked,
  detectNewline,
  encodeMarked,
  isBlank,
  physicalLines,
  quoteProblems,
  sniff,
  SNIFF_BYTES,
  startsWithBom,
  type Newline,
} from './csv-text';

export const DEFAULT_PROGRESS_EVERY_ROWS = 10_000;
export const DEFAULT_MAX_RECORD_LENGTH = 1 * MiB;

const EMPTY = Buffer.alloc(0);

/**
 * The state of one pipeline run: the feed (raw bytes, text, encoding and dialect), the record path
 * (papaparse, validation, the key check) and the sinks. The byte fast path is scanRegion
 * (byte-scanner.ts), which reads and advances this state.
 */
export class PipelineRun implements ScanState {
  readonly counts: CsvPipelineCounts = { total: 0, valid: 0, invalid: 0, bytes: 0 };
  private readonly validate: RowValidator;
  /** Value indexes (spec order) of the unique key columns. */
  readonly keyIndexes: number[];
  /** 0..n-1 over the key: the fast path gathers key values in key order. */
  readonly keyOrder: number[];
  /** Composite keys of this file's valid rows; memory grows with distinct keys (see KeyIndex). */
  readonly seenKeys: KeyIndex | null;
  private readonly keyLabel: string;
  private readonly filePrefix: string;
  private readonly progressEvery: number;
  private readonly maxRecordLength: number;
  private sinkError: Error | null = null;

  newline: Newline | null = null;
  private parser: Papa.Parser | null = null;
  /** Text after the last complete record of the previous chunk. */
  private pending = '';
  /** Physical line where the next record starts. */
  nextLine = 1;
  private header: string[] | null = null;
  mapping: HeaderMapping | null = null;
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
  delimiter: CsvDelimiter = ',';
  /** `delimiter` as a byte, for the fast path. */
  delimiterByte = 44;

  // Byte mode (Buffer input): see feedBytes.
  private readonly checks: CellCheck[];
  private readonly useFast: boolean;
  /** Input bytes after the last complete line, not parsed yet. */
  private pendingBytes: Buffer = EMPTY;
  /** False until the leading BOM (if any) has been dropped. */
  private started = false;
  fastColumns: FastColumn[] | null = null;
  fused: CompiledFusedEncoder | null = null;
  cellStarts = new Int32Array(0);
  cellEnds = new Int32Array(0);
  cellFlags = new Int32Array(0);
  readonly prefixBytes: Buffer;
  /** COPY binary format (see CsvPipelineOptions.copyFormat). */
  readonly binary: boolean;
  private readonly binaryTypes: ReturnType<typeof binaryTypeOf>[];
  readonly fileIdField: Buffer;
  /** Fields of one binary COPY tuple: (`_file_id`,) `_line`, the spec's columns. */
  readonly copyFields: number;
  readonly copyBytes = new ByteSink(128 * 1024);
  readonly validBytes = new ByteSink(64 * 1024);

  constructor(
    private readonly spec: CompiledSpec,
    readonly sinks: CsvPipelineSinks,
    private readonly opts: CsvPipelineOptions,
  ) {
    this.validate = opts.validator ?? compileRowValidator(spec);
    this.keyIndexes = spec.uniqueKey.map((k) => spec.columns.findIndex((c) => c.column === k));
    this.keyOrder = this.keyIndexes.map((_, k) => k);
    this.seenKeys = this.keyIndexes.length > 0 ? new KeyIndex() : null;
    this.keyLabel = spec.uniqueKey.join(',');
    this.filePrefix = opts.copyFileId === false ? '' : `${copyEscape(opts.fileId)}\t`;
    this.progressEvery = Math.max(1, opts.progressEveryRows ?? DEFAULT_PROGRESS_EVERY_ROWS);
    this.maxRecordLength = opts.maxRecordLength ?? DEFAULT_MAX_RECORD_LENGTH;
    this.checks = compileCellChecks(spec);
    this.useFast = opts.fastPath !== false;
    this.prefixBytes = Buffer.from(this.filePrefix, 'utf8');
    this.binary = opts.copyFormat === 'binary';
    this.binaryTypes = spec.columns.map((c) => binaryTypeOf(c.type));
    this.fileIdField = this.binary && opts.copyFileId !== false ? uuidField(opts.fileId) : EMPTY;
    this.copyFields = spec.columns.length + (opts.copyFileId === false ? 1 : 2);
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
    const stop = scanRegion(this, buf, end, invalid);
    await this.flushRows(invalid);
    return stop;
  }

  /**
   * One data record (not blank), from papaparse or from a line the fast path handed over: the
   * string validator and the key check; a valid row goes into the byte sinks, an invalid one into
   * `invalid` for flushRows.
   */
  takeRecord(cells: string[], line: number, invalid: InvalidRow[], malformed: string | false): void {
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
    if (this.binary) writeBinaryRow(this.copyBytes, this.copyFields, this.fileIdField, line, this.binaryTypes, values);
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
      for (const row of invalid)
        errorOut += safeCsvLine(
          lineColumn
            ? [String(row.line), ...errorRecord(row.cells, this.mapping!.fieldCount, row.errors)]
            : errorRecord(row.cells, this.mapping!.fieldCount, row.errors),
        );
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
      this.fused = fusedPlan(columns, n, this.binary) ? compileFusedEncoder(columns, this.delimiterByte, this.newline === '\r\n') : null;
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
 * INVALID_UTF8 errors, one per cell holding bytes that were not valid UTF-8, or null when the
 * record has none. Named by the spec column the cell feeds, or by its position.
 */
function invalidUtf8Result(cells: readonly string[], mapping: HeaderMapping, spec: CompiledSpec, encoding: CsvEncoding): RowResult | null {
  const why =
    encoding === 'UTF_8'
      ? 'bytes that are not valid UTF-8 (shown as U+FFFD); save the file as UTF-8'
      : `bytes that are not valid ${encoding} (shown as U+FFFD); check the encoding argument`;
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
export function drained(stream: Writable, signal: AbortSignal | undefined): Promise<void> {
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
