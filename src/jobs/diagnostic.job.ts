import { setTimeout as sleep } from 'node:timers/promises';
import { JobErrorCode, JobFailure } from './errors';
import type { JobHandler } from './handler';
import { JobState } from './state';

export const DIAGNOSTIC_JOB = 'diagnostic.count';

export interface DiagnosticInput {
  to: number;
  stepMs: number;
  failAt: number | null;
  failEvery: number | null;
}

export function parseDiagnosticInput(raw: unknown): DiagnosticInput {
  const r = (raw ?? {}) as Record<string, unknown>;
  const int = (v: unknown, min: number, max: number, name: string): number => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      throw new JobFailure(JobErrorCode.INVALID_INPUT, `${name} must be an integer ${min}-${max}, got ${JSON.stringify(v)}`);
    }
    return v;
  };
  return {
    to: int(r['to'], 1, 100_000, 'to'),
    stepMs: int(r['stepMs'] ?? 0, 0, 10_000, 'stepMs'),
    failAt: r['failAt'] == null ? null : int(r['failAt'], 1, 100_000, 'failAt'),
    failEvery: r['failEvery'] == null ? null : int(r['failEvery'], 1, 100_000, 'failEvery'),
  };
}

/**
 * Counts to N with a checkpoint per step. Writes nothing but progress until the end, where it
 * commits its result fenced, so a cancelled or reassigned attempt leaves nothing behind.
 */
export const diagnosticJob: JobHandler<DiagnosticInput> = {
  type: DIAGNOSTIC_JOB,
  parseInput: parseDiagnosticInput,
  async run(ctx) {
    const { to, stepMs, failAt, failEvery } = ctx.input;
    let failed = 0;
    for (let i = 1; i <= to; i++) {
      if (stepMs > 0) await sleep(stepMs, undefined, { signal: ctx.signal }).catch(() => undefined);
      await ctx.checkpoint();
      if (failAt === i) throw new JobFailure(JobErrorCode.REQUESTED_FAILURE, `Failed at step ${i} as requested (failAt)`);
      if (failEvery && i % failEvery === 0) failed++;
      ctx.progress({ total: to, processed: i, succeeded: i - failed, failed });
    }
    const result = await ctx.fenced(async () => ({ counted: to, attempt: ctx.attempt }));
    return {
      state: failed > 0 ? JobState.SUCCEEDED_WITH_ERRORS : JobState.SUCCEEDED,
      result,
      counters: { total: to, processed: to, succeeded: to - failed, failed },
    };
  },
};
