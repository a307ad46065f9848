import type { Readable } from 'node:stream';
import { parse } from 'fast-csv';

export interface CsvRecord {
  /** Physical line where the record starts (header = 1), counting blank lines and line breaks inside quoted cells. */
  line: number;
  cells: string[];
}

/** A CSV that cannot be read (an unclosed quote). */
export class MalformedCsvError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MalformedCsvError';
  }
}

function newlines(cells: readonly string[]): number {
  let n = 0;
  for (const c of cells) {
    let i = c.indexOf('\n');
    while (i !== -1) {
      n++;
      i = c.indexOf('\n', i + 1);
    }
  }
  return n;
}

/**
 * Streams the records of a CSV with fast-csv (BOM, quotes, CRLF handled; memory flat), header
 * first, blank lines skipped. Directory files are small next to ingestion files, so fast-csv's
 * speed is ample here (see README: why papaparse on the ingestion hot path).
 */
export async function* readCsv(stream: Readable): AsyncGenerator<CsvRecord> {
  const parser = parse({ headers: false });
  stream.on('error', (err) => parser.destroy(err));
  stream.pipe(parser);
  let line = 1;
  try {
    for await (const cells of parser as AsyncIterable<string[]>) {
      const start = line;
      line += 1 + newlines(cells);
      if (cells.length === 0 || (cells.length === 1 && cells[0]!.trim() === '')) continue;
      yield { line: start, cells };
    }
  } catch (err) {
    if (err instanceof Error && /^Parse Error/.test(err.message)) throw new MalformedCsvError(`The CSV cannot be read after line ${line - 1}: ${err.message}`);
    throw err;
  } finally {
    stream.unpipe(parser);
    if (!stream.destroyed) stream.destroy();
  }
}
