import { describe, expect, it } from 'vitest';
import { assertTransition, canTransition, IllegalTransitionError, isTerminal, JobState } from '../../src/jobs/state';

const all = Object.values(JobState);

describe('job state machine', () => {
  it('allows exactly the documented transitions', () => {
    const allowed = all.flatMap((from) => all.filter((to) => canTransition(from, to)).map((to) => `${from}->${to}`));
    expect(allowed.sort()).toEqual(
      [
        'QUEUED->RUNNING',
        'QUEUED->CANCELLED',
        'RUNNING->SUCCEEDED',
        'RUNNING->SUCCEEDED_WITH_ERRORS',
        'RUNNING->FAILED',
        'RUNNING->CANCELLED',
        'RUNNING->QUEUED',
        'FAILED->QUEUED',
      ].sort(),
    );
  });

  it('fails loudly on an illegal transition', () => {
    expect(() => assertTransition(JobState.SUCCEEDED, JobState.RUNNING)).toThrow(IllegalTransitionError);
    expect(() => assertTransition(JobState.QUEUED, JobState.SUCCEEDED)).toThrow(/QUEUED -> SUCCEEDED/);
    expect(() => assertTransition(JobState.CANCELLED, JobState.QUEUED)).toThrow(IllegalTransitionError);
  });

  it('knows the terminal states', () => {
    expect(all.filter(isTerminal).sort()).toEqual(['CANCELLED', 'FAILED', 'SUCCEEDED', 'SUCCEEDED_WITH_ERRORS']);
  });
});
