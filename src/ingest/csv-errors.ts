import type { HeaderProblem } from './row-validator';
import { UnsupportedEncodingError } from './csv-dialect';

/** The errors the CSV readers (runCsvPipeline, csv-records.ts) reject with; each carries a stable `code`. */

/** Longest message built from a list of problems, in characters. */
export const MAX_MESSAGE_LENGTH = 2000;

/** `prefix` and the problems' messages joined, saying how many there are in all; at most MAX_MESSAGE_LENGTH. */
export function problemsMessage(prefix: string, messages: readonly string[], count = messages.length): string {
  const more = count > messages.length ? ` (${count} problems; the first ${messages.length} are listed)` : '';
  const text = `${prefix}${more}: ${messages.join('; ')}`;
  return text.length > MAX_MESSAGE_LENGTH ? `${text.slice(0, MAX_MESSAGE_LENGTH - 3)}...` : text;
}

/**
 * The header does not fit the spec; nothing was written to the COPY sink. `problems` lists at most
 * MAX_PROBLEMS_LISTED of them; `problemCount` counts them all.
 */
export class HeaderError extends Error {
  readonly code = 'INVALID_HEADER';
  readonly problemCount: number;
  constructor(
    readonly problems: HeaderProblem[],
    problemCount = problems.length,
  ) {
    super(
      problemsMessage(
        'The CSV header does not match the spec',
        problems.map((p) => p.message),
        problemCount,
      ),
    );
    this.name = 'HeaderError';
    this.problemCount = problemCount;
  }
}

/** The input is not text at all (an archive, an executable, an image): refused before any row. */
export class NotCsvError extends Error {
  readonly code = 'NOT_A_CSV';
  constructor(readonly looksLike: string) {
    super(`The file is not a CSV: it looks like ${looksLike}`);
    this.name = 'NotCsvError';
  }
}

export { UnsupportedEncodingError };

/**
 * The file mixes CR-only line ends with LF or CRLF ones, so its records cannot be told apart the
 * same way everywhere (a CR-only file read as LF merges its records into one cell). Refused.
 */
export class MixedLineEndingsError extends Error {
  readonly code = 'MIXED_LINE_ENDINGS';
  constructor(
    readonly line: number,
    readonly detected: string,
  ) {
    super(`Line ${line} ends with a different line break than the file's first line (${detected}); use one kind of line ending throughout`);
    this.name = 'MixedLineEndingsError';
  }
}

/** One record exceeds `maxRecordLength` (usually an unterminated quote). */
export class RecordTooLargeError extends Error {
  readonly code = 'RECORD_TOO_LARGE';
  constructor(
    readonly line: number,
    readonly limit: number,
  ) {
    super(`The record starting at line ${line} exceeds ${limit} characters; check for an unterminated quote`);
    this.name = 'RecordTooLargeError';
  }
}

export class AbortError extends Error {
  readonly code = 'ABORT_ERR';
  constructor(cause?: unknown) {
    super('The CSV pipeline was aborted', { cause });
    this.name = 'AbortError';
  }
}
