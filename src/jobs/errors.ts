/** Why a job failed (jobs.error.code). Closed: clients branch on it. */
export enum JobErrorCode {
  /** The worker running it stopped heartbeating more times than maxAttempts allows. */
  WORKER_LOST = 'WORKER_LOST',
  /** No handler is registered for the job's type in this deployment. */
  UNKNOWN_JOB_TYPE = 'UNKNOWN_JOB_TYPE',
  /** The stored input does not satisfy the job type. */
  INVALID_INPUT = 'INVALID_INPUT',
  /** The job type reported a failure on purpose (diagnostic jobs). */
  REQUESTED_FAILURE = 'REQUESTED_FAILURE',
  /** The uploaded file has no data rows (0 bytes or a header only). */
  EMPTY_FILE = 'EMPTY_FILE',
  /**
   * A corrections upload cannot be put back where its rows came from: no `_line` column, a
   * `_line` that is not a line number, out of order or beyond the corrected file; nothing applied.
   */
  CORRECTIONS_INVALID = 'CORRECTIONS_INVALID',
  /** The CSV header does not match the spec: missing required, unknown or duplicate columns. */
  HEADER_INVALID = 'HEADER_INVALID',
  /** Some rows are invalid and the upload's policy is onInvalidRows: FAIL; no row was kept. */
  ROWS_INVALID = 'ROWS_INVALID',
  /** Every row is invalid; no row was kept. */
  ALL_ROWS_INVALID = 'ALL_ROWS_INVALID',
  /** The file finished with some invalid rows skipped (SUCCEEDED_WITH_ERRORS summary). */
  SOME_ROWS_INVALID = 'SOME_ROWS_INVALID',
  /** One record is longer than the parser accepts (often an unclosed quote). */
  RECORD_TOO_LARGE = 'RECORD_TOO_LARGE',
  /** The file is not text (an archive, executable or image uploaded as CSV). */
  NOT_A_CSV = 'NOT_A_CSV',
  /** The file is text in an encoding Sluice cannot read: UTF-32, or UTF-16 without a BOM when no `encoding` argument names it; save it as UTF-8 or pass encoding. */
  UNSUPPORTED_ENCODING = 'UNSUPPORTED_ENCODING',
  /** The file mixes CR-only line ends with LF or CRLF ones. */
  MIXED_LINE_ENDINGS = 'MIXED_LINE_ENDINGS',
  /** The stored upload could not be read. */
  FILE_MISSING = 'FILE_MISSING',
  /** The stored upload's size or SHA-256 differs from what was recorded at upload; no row was kept. */
  STORAGE_CORRUPT = 'STORAGE_CORRUPT',
  /** A ZIP was refused: unsafe paths, symlinks, nesting, encryption, too large or not a ZIP. */
  ZIP_REFUSED = 'ZIP_REFUSED',
  /** A CSV in a ZIP matches no registered spec. */
  SPEC_NOT_FOUND = 'SPEC_NOT_FOUND',
  /** Some files of a ZIP failed. */
  SOME_FILES_FAILED = 'SOME_FILES_FAILED',
  /** Some (or all) frameworks of a Credential Engine import failed; see the job result per framework. */
  SOME_FRAMEWORKS_FAILED = 'SOME_FRAMEWORKS_FAILED',
  /** An import finished with some competencies skipped as invalid (SUCCEEDED_WITH_ERRORS summary). */
  SOME_COMPETENCIES_INVALID = 'SOME_COMPETENCIES_INVALID',
  /** A transient database fault (connection lost, deadlock, serialization failure) ended every one of maxAttempts attempts. */
  TRANSIENT_FAILURE = 'TRANSIENT_FAILURE',
  /** Something unexpected; details are in the server log, not here. */
  INTERNAL_ERROR = 'INTERNAL_ERROR',
}

/** Thrown by job handlers to fail the job with a code and a message that is safe to show. */
export class JobFailure extends Error {
  constructor(
    readonly code: JobErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'JobFailure';
  }
}

export type StopReason = 'cancelled' | 'fenced' | 'shutdown';

/** Thrown at a checkpoint when the job must stop: cancelled, reassigned (fenced) or shutting down. */
export class JobStopped extends Error {
  constructor(readonly reason: StopReason) {
    super(`Job stopped: ${reason}`);
    this.name = 'JobStopped';
  }
}
