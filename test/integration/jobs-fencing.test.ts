import { beforeAll, describe, expect, it } from 'vitest';
import { JOB_EVENTS_CHANNEL } from '../../src/jobs/channels';
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

  it('stores progress as the row, its PROGRESS event and the notification together, each as a transaction of them would', async () => {
    const store = t.app.services.jobsStore;
    const { runDiagnosticJob } = await t.admin.request(RunDiagnosticJobDocument, { input: { to: 10 } });
    const id = runDiagnosticJob.id;
    const a = await store.begin(async (tx) => store.transition(tx, (await store.getForUpdate(tx, id))!, JobState.RUNNING, { claim: true, workerId: 'A' }));
    const notes: unknown[] = [];
    const listening = await t.database.sql.listen(JOB_EVENTS_CHANNEL, (text) => notes.push(JSON.parse(text)));
    try {
      const job = await store.progress(id, a.attempt, { processed: 4, total: 10, bytesProcessed: 100 });
      expect(job).toMatchObject({ id, state: 'RUNNING', attempt: 1, lastSeq: a.lastSeq + 1, processed: 4, total: 10, bytesProcessed: 100, succeeded: 0 });
      const events = await t.database.sql`select seq, kind, state, attempt, payload from job_events where job_id = ${id} order by seq`;
      const running = events.find((e) => e['seq'] === a.lastSeq)!;
      const progress = events.find((e) => e['seq'] === a.lastSeq + 1)!;
      expect(progress).toMatchObject({ kind: 'PROGRESS', state: 'RUNNING', attempt: 1 });
      // The same payload shape as the STATE event the transition stored from JavaScript.
      expect(Object.keys(progress['payload']).sort()).toEqual(Object.keys(running['payload']).sort());
      expect(progress['payload']).toEqual({ total: 10, processed: 4, succeeded: 0, failed: 0, bytesTotal: null, bytesProcessed: 100, error: null });
      for (const deadline = Date.now() + 10_000; notes.length === 0 && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 20));
      expect(notes).toEqual([{ id, seq: a.lastSeq + 1, state: 'RUNNING', by: a.createdBy }]);
      // Fenced out: nothing written, nothing notified.
      expect(await store.progress(id, a.attempt + 1, { processed: 5 })).toBeUndefined();
      const [count] = await t.database.sql`select count(*)::int as n from job_events where job_id = ${id}`;
      expect(count!['n']).toBe(events.length);
      await new Promise((r) => setTimeout(r, 200));
      expect(notes).toHaveLength(1);
    } finally {
      await listening.unlisten();
    }
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
