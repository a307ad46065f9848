export enum JobState {
  QUEUED = 'QUEUED',
  RUNNING = 'RUNNING',
  SUCCEEDED = 'SUCCEEDED',
  SUCCEEDED_WITH_ERRORS = 'SUCCEEDED_WITH_ERRORS',
  FAILED = 'FAILED',
  CANCELLED = 'CANCELLED',
}

export const TERMINAL_STATES: ReadonlySet<JobState> = new Set([JobState.SUCCEEDED, JobState.SUCCEEDED_WITH_ERRORS, JobState.FAILED, JobState.CANCELLED]);

/** The only legal transitions. Everything else is a bug and throws IllegalTransitionError. */
const TRANSITIONS: Record<JobState, readonly JobState[]> = {
  [JobState.QUEUED]: [JobState.RUNNING, JobState.CANCELLED],
  [JobState.RUNNING]: [JobState.SUCCEEDED, JobState.SUCCEEDED_WITH_ERRORS, JobState.FAILED, JobState.CANCELLED, JobState.QUEUED],
  [JobState.FAILED]: [JobState.QUEUED],
  [JobState.SUCCEEDED]: [],
  [JobState.SUCCEEDED_WITH_ERRORS]: [],
  [JobState.CANCELLED]: [],
};

export class IllegalTransitionError extends Error {
  constructor(
    readonly from: JobState,
    readonly to: JobState,
  ) {
    super(`Illegal job state transition ${from} -> ${to}`);
    this.name = 'IllegalTransitionError';
  }
}

export function isTerminal(state: JobState): boolean {
  return TERMINAL_STATES.has(state);
}

export function canTransition(from: JobState, to: JobState): boolean {
  return TRANSITIONS[from].includes(to);
}

export function assertTransition(from: JobState, to: JobState): void {
  if (!canTransition(from, to)) throw new IllegalTransitionError(from, to);
}
