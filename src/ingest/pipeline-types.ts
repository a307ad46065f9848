import type { Writable } from 'node:stream';
import type { CsvDialect, CsvDialectOptions } from './csv-dialect';
import type { HeaderMapping, HeaderOptions, IgnoredColumn, RowError, RowValidator } from './row-validator';

// The pipeline's API types, apart from csv-pipeline.ts so the run (pipeline-run.ts) and the
// scanner (byte-scanner.ts) use them without importing the API that imports them.

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
  /**
   * `copy` is done with a chunk once the chunk's write callback has run: it sent or copied the
   * bytes and keeps no reference to them (postgres.js's COPY stream). The pipeline thread then
   * fills that memory again instead of allocating (runCsvPipelineOffThread); never set it for a
   * sink that keeps the chunks it is given. Default false.
   */
  copyReleasesChunks?: boolean;
  /**
   * The caller can take "the valid rows are the input file itself" (result.validCsvIsInput)
   * instead of the bytes in `validCsv`: it stores a copy of the input. Only a pipeline thread that
   * reads a stored file itself uses it (runCsvPipelineOffThread with a StoredFileStream whose size
   * and SHA-256 are recorded); everywhere else `validCsv` receives the bytes as always. Default false.
   */
  validCsvMayBeInput?: boolean;
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
   * Write `fileId` as each row's first COPY field (default true). `false` leaves it out: the COPY's
   * column list then starts at `_line`, and the table's `_file_id` default supplies it (a file's own
   * partition, see prepareRowTable), which is 20 bytes a row less to send and to decode.
   */
  copyFileId?: boolean;
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
  /**
   * Only with sinks.validCsvMayBeInput: nothing was written to `validCsv`, because the valid-rows
   * CSV would have been the input file byte for byte (see ingest/input-mirror.ts).
   */
  validCsvIsInput?: true;
}
