import { codeValues } from '../shared/codes';

/** Why a job failed (jobs.error.code), each with its description. Closed: clients branch on it. */
export const JOB_ERROR_CODES = {
  WORKER_LOST: 'The worker running it stopped heartbeating more times than maxAttempts allows.',
  UNKNOWN_JOB_TYPE: "No handler is registered for the job's type in this deployment.",
  INVALID_INPUT: 'The stored input does not satisfy the job type.',
  REQUESTED_FAILURE: 'The job type reported a failure on purpose (diagnostic jobs).',
  EMPTY_FILE: 'The uploaded file has no data rows (0 bytes or a header only).',
  CORRECTIONS_INVALID:
    'A corrections upload cannot be put back where its rows came from: no `_line` column, a `_line` that is not a line number, out of order or beyond the corrected file; nothing applied.',
  HEADER_INVALID: 'The CSV header does not match the spec: missing required, unknown or duplicate columns.',
  ROWS_INVALID: "Some rows are invalid and the upload's policy is onInvalidRows: FAIL; no row was kept.",
  ALL_ROWS_INVALID: 'Every row is invalid; no row was kept.',
  SOME_ROWS_INVALID: 'The file finished with some invalid rows skipped (SUCCEEDED_WITH_ERRORS summary).',
  RECORD_TOO_LARGE: 'One record is longer than the parser accepts (often an unclosed quote).',
  NOT_A_CSV: 'The file is not text (an archive, executable or image uploaded as CSV).',
  UNSUPPORTED_ENCODING:
    'The file is text in an encoding Sluice cannot read: UTF-32, or UTF-16 without a BOM when no `encoding` argument names it; save it as UTF-8 or pass encoding.',
  MIXED_LINE_ENDINGS: 'The file mixes CR-only line ends with LF or CRLF ones.',
  FILE_MISSING: 'The stored upload could not be read.',
  STORAGE_CORRUPT: "The stored upload's size or SHA-256 differs from what was recorded at upload; no row was kept.",
  ZIP_REFUSED: 'A ZIP was refused: unsafe paths, symlinks, nesting, encryption, too large or not a ZIP.',
  SPEC_NOT_FOUND: 'A CSV in a ZIP matches no registered spec.',
  SOME_FILES_FAILED: 'Some files of a ZIP failed.',
  SOME_FRAMEWORKS_FAILED: 'Some (or all) frameworks of a Credential Engine import failed; see the job result per framework.',
  SOME_COMPETENCIES_INVALID: 'An import finished with some competencies skipped as invalid (SUCCEEDED_WITH_ERRORS summary).',
  TRANSIENT_FAILURE: 'A transient database fault (connection lost, deadlock, serialization failure) ended every one of maxAttempts attempts.',
  INTERNAL_ERROR: 'Something unexpected; details are in the server log, not here.',
} as const;
export type JobErrorCode = keyof typeof JOB_ERROR_CODES;
export const JobErrorCode = codeValues(JOB_ERROR_CODES);

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
