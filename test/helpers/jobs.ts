import { JobUpdatedDocument, type JobEventFieldsFragment, type SluiceClient } from '../../src/sdk/client';

/** Fast job timings for tests; production defaults are in src/env.ts. */
export const FAST_JOBS = {
  SLUICE_JOB_POLL_INTERVAL_MS: '500',
  SLUICE_JOB_HEARTBEAT_MS: '200',
  SLUICE_JOB_STALE_MS: '1500',
  SLUICE_JOB_PROGRESS_INTERVAL_MS: '50',
};

/** Collects jobUpdated events until the subscription completes (after the terminal event). */
export async function collectJobEvents(
  client: SluiceClient,
  id: string,
  opts: { afterSeq?: number; timeoutMs?: number; onEvent?: (e: JobEventFieldsFragment) => void } = {},
): Promise<JobEventFieldsFragment[]> {
  const events: JobEventFieldsFragment[] = [];
  const it = client.subscribe(JobUpdatedDocument, { id, afterSeq: opts.afterSeq });
  const timeout = setTimeout(() => void it.return?.(), opts.timeoutMs ?? 30_000);
  try {
    for await (const r of it) {
      if (r.errors?.length) throw new Error(`jobUpdated failed: ${JSON.stringify(r.errors)}`);
      const e = r.data!.jobUpdated;
      events.push(e);
      opts.onEvent?.(e);
    }
  } finally {
    clearTimeout(timeout);
  }
  if (!events.at(-1)?.terminal) throw new Error(`jobUpdated ended without a terminal event: ${JSON.stringify(events, null, 2)}`);
  return events;
}

/** Asserts sequence numbers strictly increase by one (no gaps, no repeats). */
export function expectContiguous(events: Array<{ seq: number }>): void {
  for (let i = 1; i < events.length; i++) {
    if (events[i]!.seq !== events[i - 1]!.seq + 1) {
      throw new Error(`seq not contiguous at ${i}: ${events.map((e) => e.seq).join(',')}`);
    }
  }
}
