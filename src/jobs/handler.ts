import type { JobContext } from './context';
import type { JobState } from './state';
import type { Counters, JobError } from './store';

export type FinalState = JobState.SUCCEEDED | JobState.SUCCEEDED_WITH_ERRORS | JobState.FAILED;

export interface JobOutcome {
  state: FinalState;
  result?: unknown;
  error?: JobError | null;
  /** Final counters; merged over the last progress report. */
  counters?: Counters;
}

/** A job type. `run` must be restartable: a lost attempt is run again from the start. */
export interface JobHandler<I = unknown> {
  type: string;
  /** Validates the stored input; throw JobFailure(INVALID_INPUT) to fail the job. */
  parseInput(raw: unknown): I;
  run(ctx: JobContext<I>): Promise<JobOutcome>;
}

/**
 * The job types a worker runs, by type name (src/job-handlers.ts lists this deployment's). A
 * later registration of a type replaces the earlier one.
 */
export class HandlerRegistry {
  private readonly byType = new Map<string, JobHandler<unknown>>();

  register<I>(handler: JobHandler<I>): void {
    this.byType.set(handler.type, handler as JobHandler<unknown>);
  }

  get(type: string): JobHandler<unknown> | undefined {
    return this.byType.get(type);
  }

  get types(): string[] {
    return [...this.byType.keys()];
  }
}
