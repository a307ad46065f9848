import type { Readable } from 'node:stream';
import { readCsvRecords, type CsvRecord, type CsvRecordReaderOptions } from '../../ingest/csv-records';

export type { CsvRecord };

/** A CSV that cannot be read (an unclosed quote runs to its end). */
export class MalformedCsvError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MalformedCsvError';
  }
}

/**
 * Streams the records of a directory CSV, header first, blank lines skipped, with the reader every
 * CSV entry point shares (src/ingest/csv-records.ts): the same encodings, delimiter detection,
 * quote rule and refusals (NOT_A_CSV, UNSUPPORTED_ENCODING, MIXED_LINE_ENDINGS, RECORD_TOO_LARGE)
 * as cQube uploads. Other quote problems are the record's (MALFORMED_QUOTES row errors).
 */
export async function* readCsv(stream: Readable, opts: CsvRecordReaderOptions = {}): AsyncGenerator<CsvRecord> {
  for await (const rec of readCsvRecords(stream, opts)) {
    if (rec.problem?.unclosed) throw new MalformedCsvError(`The CSV cannot be read from line ${rec.line}: a quoted cell is never closed`);
    yield rec;
  }
}
