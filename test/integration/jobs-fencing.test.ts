import { beforeAll, describe, expect, it } from 'vitest';
import { JobContext } from '../../src/jobs/context';
import { JobStopped } from '../../src/jobs/errors';
import { JobState } from '../../src/jobs/state';
import { IllegalTransitionError } from '../../src/jobs/state';
import { JobDocument, RunDiagnosticJobDocument } from '../../src/sdk/client';
import { createLogger } from '../../src/shared/logger';
import { startTestApp, type TestApp } from '../helpers/app';
import { FAST_JOBS } from '../helpers/jobs';

/** An API-only instance: jobs stay QUEUED, and the test plays the workers to interleave them exactly. */
let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ ...FAST_JOBS, SLUICE_ROLE: 'api' });
});

describe('fencing on attempt', () => {
  it('a stale worker that wakes after its job was reassigned can write nothing', async () => {
    const store = t.app.services.jobsStore;
    const { runDiagnosticJob } = await t.admin.request(RunDiagnosticJobDocument, { input: { to: 10 } });
    const id = runDiagnosticJob.id;
    // Worker A claims attempt 1 ...
    const a = await store.begin(async (tx) => store.transition(tx, (await store.getForUpdate(tx, id))!, JobState.RUNNING, { claim: true, workerId: 'A' }));
    // ... is presumed lost: the reaper re-queues, worker B claims attempt 2.
    await store.begin(async (tx) => store.transition(tx, (await store.getForUpdate(tx, id))!, JobState.QUEUED, { workerId: null }));
    const b = await store.begin(async (tx) => store.transition(tx, (await store.getForUpdate(tx, id))!, JobState.RUNNING, { claim: true, workerId: 'B' }));
    expect([a.attempt, b.attempt]).toEqual([1, 2]);

    const log = createLogger('silent');
    const stale = new JobContext(a, {}, log, store, 0);
    stale.progress({ processed: 9, total: 10 });
    await expect(stale.checkpoint()).rejects.toBeInstanceOf(JobStopped);
    await expect(stale.fenced(async (tx) => tx`update jobs set result = '{"stale":true}' where id = ${id}`)).rejects.toThrow(/fenced/);
    expect(await store.progress(id, a.attempt, { processed: 9 })).toBeUndefined();
    expect((await store.heartbeat(id, a.attempt)).alive).toBe(false);

    const live = new JobContext(b, {}, log, store, 0);
    live.progress({ processed: 3, total: 10 });
    await live.checkpoint();
    const { job } = await t.admin.request(JobDocument, { id });
    expect(job).toMatchObject({ state: 'RUNNING', attempt: 2, result: null, progress: { processed: 3, total: 10 } });
  });

  it('the store refuses an illegal transition loudly', async () => {
    const store = t.app.services.jobsStore;
    const { runDiagnosticJob } = await t.admin.request(RunDiagnosticJobDocument, { input: { to: 1 } });
    await expect(
      store.begin(async (tx) => store.transition(tx, (await store.getForUpdate(tx, runDiagnosticJob.id))!, JobState.SUCCEEDED)),
    ).rejects.toBeInstanceOf(IllegalTransitionError);
    const { job } = await t.admin.request(JobDocument, { id: runDiagnosticJob.id });
    expect(job).toMatchObject({ state: 'QUEUED', lastSeq: 1 });
  });
});
