import type { Readable, Writable } from 'node:stream';
import type { CompiledSpec } from './contract';
import type { CsvDialect, CsvDialectOptions } from './csv-dialect';
import { AbortError } from './csv-errors';
import { PipelineRun } from './pipeline-run';
import type { HeaderMapping, HeaderOptions, IgnoredColumn, RowError, RowValidator } from './row-validator';

export {
  AbortError,
  HeaderError,
  MAX_MESSAGE_LENGTH,
  MixedLineEndingsError,
  NotCsvError,
  problemsMessage,
  RecordTooLargeError,
  UnsupportedEncodingError,
} from './csv-errors';
export { DEFAULT_MAX_RECORD_LENGTH, DEFAULT_PROGRESS_EVERY_ROWS } from './pipeline-run';

/**
 * Streaming CSV -> validated COPY text: the API (runCsvPipeline, its options, result and errors).
 * The run itself is pipeline-run.ts, its byte fast path byte-scanner.ts, the shared text helpers
 * (sniffing, marked decoding, line breaks) csv-text.ts.
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

/**
 * Reads a CSV from `input` (bytes, UTF-8, optional BOM, LF/CRLF/CR, RFC 4180 quoting), validates
 * every record against `spec`, writes valid rows to `sinks.copy` (and `sinks.validCsv`) and reports
 * invalid ones. Memory stays flat in the file size except for the unique-key set (see below).
 * Bytes that are not valid UTF-8 make their record an INVALID_UTF8 row error (never U+FFFD in a
 * stored value). Rejects with NotCsvError or UnsupportedEncodingError (from the first SNIFF_BYTES),
 * MixedLineEndingsError, HeaderError, RecordTooLargeError, AbortError, or a sink's error.
 */
export async function runCsvPipeline(input: Readable, spec: CompiledSpec, sinks: CsvPipelineSinks, opts: CsvPipelineOptions): Promise<CsvPipelineResult> {
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
