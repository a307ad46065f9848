import { registerEnumType } from 'type-graphql';

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
  /** Something unexpected; details are in the server log, not here. */
  INTERNAL_ERROR = 'INTERNAL_ERROR',
}

registerEnumType(JobErrorCode, { name: 'JobErrorCode', description: 'Why a job failed.' });

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
