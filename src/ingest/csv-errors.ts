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

/**
 * A pipeline error as plain data, to cross a thread (see pipeline-thread.ts): the errors above
 * keep their class and fields, anything else its name and message.
 */
export type PipelineErrorData =
  | { kind: 'HeaderError'; problems: HeaderProblem[]; problemCount: number }
  | { kind: 'NotCsvError'; looksLike: string }
  | { kind: 'UnsupportedEncodingError'; encoding: string }
  | { kind: 'MixedLineEndingsError'; line: number; detected: string }
  | { kind: 'RecordTooLargeError'; line: number; limit: number }
  | { kind: 'AbortError' }
  | { kind: 'Error'; name: string; message: string; stack?: string; code?: string; key?: string };

export function pipelineErrorData(err: unknown): PipelineErrorData {
  if (err instanceof HeaderError) return { kind: 'HeaderError', problems: err.problems, problemCount: err.problemCount };
  if (err instanceof NotCsvError) return { kind: 'NotCsvError', looksLike: err.looksLike };
  if (err instanceof UnsupportedEncodingError) return { kind: 'UnsupportedEncodingError', encoding: err.encoding };
  if (err instanceof MixedLineEndingsError) return { kind: 'MixedLineEndingsError', line: err.line, detected: err.detected };
  if (err instanceof RecordTooLargeError) return { kind: 'RecordTooLargeError', line: err.line, limit: err.limit };
  if (err instanceof AbortError) return { kind: 'AbortError' };
  const e = err instanceof Error ? err : new Error(String(err));
  // A string `code` and `key` (a StorageError's) cross too, for the receiver to rebuild the class.
  const { code, key } = e as { code?: unknown; key?: unknown };
  return {
    kind: 'Error',
    name: e.name,
    message: e.message,
    stack: e.stack,
    ...(typeof code === 'string' ? { code } : {}),
    ...(typeof key === 'string' ? { key } : {}),
  };
}

/** The error `pipelineErrorData` described, as the same class. */
export function revivePipelineError(data: PipelineErrorData): Error {
  switch (data.kind) {
    case 'HeaderError':
      return new HeaderError(data.problems, data.problemCount);
    case 'NotCsvError':
      return new NotCsvError(data.looksLike);
    case 'UnsupportedEncodingError':
      return new UnsupportedEncodingError(data.encoding);
    case 'MixedLineEndingsError':
      return new MixedLineEndingsError(data.line, data.detected);
    case 'RecordTooLargeError':
      return new RecordTooLargeError(data.line, data.limit);
    case 'AbortError':
      return new AbortError();
    default: {
      const err = new Error(data.message);
      err.name = data.name;
      if (data.stack) err.stack = data.stack;
      // A lost connection's code (EPIPE, 57P01, ...) is what tells a transient fault (jobs/transient-errors.ts).
      if (data.code !== undefined) Object.assign(err, { code: data.code });
      return err;
    }
  }
}
