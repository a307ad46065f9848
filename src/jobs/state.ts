import { registerEnumType } from 'type-graphql';

export enum JobState {
  QUEUED = 'QUEUED',
  RUNNING = 'RUNNING',
  SUCCEEDED = 'SUCCEEDED',
  SUCCEEDED_WITH_ERRORS = 'SUCCEEDED_WITH_ERRORS',
  FAILED = 'FAILED',
  CANCELLED = 'CANCELLED',
}

registerEnumType(JobState, {
  name: 'JobState',
  description: 'QUEUED -> RUNNING -> SUCCEEDED | SUCCEEDED_WITH_ERRORS | FAILED | CANCELLED. RUNNING returns to QUEUED when its worker is lost or stops; FAILED returns to QUEUED on retryJob.',
  valuesConfig: {
    QUEUED: { description: 'Waiting for a worker.' },
    RUNNING: { description: 'A worker is processing it.' },
    SUCCEEDED: { description: 'Finished; every row or item succeeded.' },
    SUCCEEDED_WITH_ERRORS: { description: 'Finished; some rows or items failed and were reported.' },
    FAILED: { description: 'Finished without a usable result; see error.' },
    CANCELLED: { description: 'Stopped on request; nothing it wrote stays visible.' },
  },
});

export const TERMINAL_STATES: ReadonlySet<JobState> = new Set([
  JobState.SUCCEEDED,
  JobState.SUCCEEDED_WITH_ERRORS,
  JobState.FAILED,
  JobState.CANCELLED,
]);

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
