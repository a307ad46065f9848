import { beforeAll, describe, expect, it } from 'vitest';
import {
  CancelJobDocument,
  JobDocument,
  JobEventsDocument,
  JobsChangedDocument,
  JobsDocument,
  JobUpdatedDocument,
  RetryJobDocument,
  RunDiagnosticJobDocument,
  type JobFieldsFragment,
  type SluiceClient,
} from '../../src/sdk/client';
import { codeOf, startTestApp, type TestApp } from '../helpers/app';
import { collectJobEvents, expectContiguous, FAST_JOBS } from '../helpers/jobs';

let t: TestApp;
/** An API-only instance on its own database: its jobs stay QUEUED (no workers there). */
let idle: TestApp;

beforeAll(async () => {
  [t, idle] = await Promise.all([startTestApp({ ...FAST_JOBS }), startTestApp({ ...FAST_JOBS, SLUICE_ROLE: 'api' })]);
});

async function run(
  client: SluiceClient,
  input: { to: number; stepMs?: number; failAt?: number; failEvery?: number; idempotencyKey?: string },
): Promise<JobFieldsFragment> {
  return (await client.request(RunDiagnosticJobDocument, { input })).runDiagnosticJob;
}

async function waitFor(client: SluiceClient, id: string, pred: (j: JobFieldsFragment) => boolean, timeoutMs = 20_000): Promise<JobFieldsFragment> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { job } = await client.request(JobDocument, { id });
    if (pred(job)) return job;
    if (Date.now() > deadline) throw new Error(`condition not met: ${JSON.stringify(job)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('a job from submission to success', () => {
  it('streams a snapshot, then every event in order, and completes after SUCCEEDED', async () => {
    const job = await run(t.admin, { to: 5, stepMs: 20 });
    expect(job.state).toBe('QUEUED');
    expect(job.type).toBe('diagnostic.count');
    const events = await collectJobEvents(t.admin, job.id);
    expect(events[0]!.kind).toBe('SNAPSHOT');
    expectContiguous(events);
    // The snapshot is whatever state the job had when we subscribed; after it, every transition.
    const states = events.filter((e) => e.kind !== 'PROGRESS').map((e) => e.state);
    const lifecycle = ['QUEUED', 'RUNNING', 'SUCCEEDED'];
    expect(lifecycle.slice(lifecycle.length - states.length)).toEqual(states);
    const last = events.at(-1)!;
    expect(last).toMatchObject({ state: 'SUCCEEDED', terminal: true, progress: { total: 5, processed: 5, succeeded: 5, failed: 0, percent: 100 } });
    expect(events.filter((e) => e.terminal)).toHaveLength(1);

    const { job: done } = await t.admin.request(JobDocument, { id: job.id });
    expect(done).toMatchObject({ state: 'SUCCEEDED', attempt: 1, result: { counted: 5, attempt: 1 }, error: null, lastSeq: last.seq });
    expect(done.startedAt).not.toBeNull();
    expect(done.finishedAt).not.toBeNull();

    const { job: withEvents } = await t.admin.request(JobEventsDocument, { id: job.id, afterSeq: 0 });
    const stored = withEvents.events;
    expect(stored[0]).toMatchObject({ seq: 1, kind: 'STATE', state: 'QUEUED' });
    expect(stored.filter((e) => e.kind === 'STATE').map((e) => e.state)).toEqual(lifecycle);
    expect(stored.map((e) => e.seq)).toEqual(Array.from({ length: last.seq }, (_, i) => i + 1));
  });

  it('replays the events after afterSeq to a reconnecting client, then completes', async () => {
    const job = await run(t.admin, { to: 3 });
    const first = await collectJobEvents(t.admin, job.id);
    const replay = await collectJobEvents(t.admin, job.id, { afterSeq: 1 });
    expect(replay[0]!.seq).toBe(2);
    expect(replay.at(-1)!.seq).toBe(first.at(-1)!.seq);
    expectContiguous(replay);
    // Resuming at the end gets the terminal snapshot and completes at once.
    const atEnd = await collectJobEvents(t.admin, job.id, { afterSeq: first.at(-1)!.seq });
    expect(atEnd).toHaveLength(1);
    expect(atEnd[0]).toMatchObject({ kind: 'SNAPSHOT', state: 'SUCCEEDED', terminal: true });
  });

  it('throttles progress events but never drops the terminal one', async () => {
    const job = await run(t.admin, { to: 400, stepMs: 1 });
    const started = Date.now();
    const events = await collectJobEvents(t.admin, job.id);
    const elapsed = Date.now() - started;
    const progress = events.filter((e) => e.kind === 'PROGRESS');
    // At most one stored progress event per 50 ms interval (+1 for the first).
    expect(progress.length).toBeLessThanOrEqual(Math.ceil(elapsed / 50) + 1);
    expect(progress.length).toBeLessThan(400);
    expect(events.at(-1)).toMatchObject({ state: 'SUCCEEDED', progress: { processed: 400 } });
  });

  it('reports failed items as SUCCEEDED_WITH_ERRORS', async () => {
    const job = await run(t.admin, { to: 10, failEvery: 5 });
    const events = await collectJobEvents(t.admin, job.id);
    expect(events.at(-1)).toMatchObject({ state: 'SUCCEEDED_WITH_ERRORS', progress: { succeeded: 8, failed: 2 } });
  });

  it('returns the same job for the same idempotency key', async () => {
    const a = await run(t.admin, { to: 1, idempotencyKey: 'same-key' });
    const b = await run(t.admin, { to: 1, idempotencyKey: 'same-key' });
    expect(b.id).toBe(a.id);
  });
});

describe('failure, retry and cancel', () => {
  it('fails with a code, retries the FAILED job under the same id, and refuses to retry others', async () => {
    const job = await run(t.admin, { to: 5, failAt: 3 });
    const events = await collectJobEvents(t.admin, job.id);
    expect(events.at(-1)).toMatchObject({ state: 'FAILED', error: { code: 'REQUESTED_FAILURE' } });
    const { retryJob } = await t.admin.request(RetryJobDocument, { id: job.id });
    expect(retryJob).toMatchObject({ id: job.id, state: 'QUEUED', error: null });
    const again = await collectJobEvents(t.admin, job.id, { afterSeq: retryJob.lastSeq });
    expect(again.at(-1)).toMatchObject({ state: 'FAILED', attempt: 2 });
    const ok = await run(t.admin, { to: 1 });
    await collectJobEvents(t.admin, ok.id);
    const res = await t.admin.raw(RetryJobDocument, { id: ok.id });
    expect(codeOf(res.body), JSON.stringify(res.body)).toBe('CONFLICT');
  });

  it('cancels a RUNNING job at its next checkpoint; it ends CANCELLED exactly once', async () => {
    const job = await run(t.admin, { to: 10_000, stepMs: 10 });
    await waitFor(t.admin, job.id, (j) => j.state === 'RUNNING' && j.progress.processed > 2);
    const { cancelJob } = await t.admin.request(CancelJobDocument, { id: job.id });
    expect(['RUNNING', 'CANCELLED']).toContain(cancelJob.state);
    const events = await collectJobEvents(t.admin, job.id, { afterSeq: 0 });
    expectContiguous(events);
    expect(events.filter((e) => e.terminal).map((e) => e.state)).toEqual(['CANCELLED']);
    const { job: done } = await t.admin.request(JobDocument, { id: job.id });
    expect(done).toMatchObject({ state: 'CANCELLED', result: null, cancelRequested: false });
    expect(done.progress.processed).toBeLessThan(10_000);
    const twice = await t.admin.raw(CancelJobDocument, { id: job.id });
    expect(codeOf(twice.body)).toBe('CONFLICT');
  });

  it('cancels a QUEUED job at once', async () => {
    const job = await run(idle.admin, { to: 1 });
    const { cancelJob } = await idle.admin.request(CancelJobDocument, { id: job.id });
    expect(cancelJob.state).toBe('CANCELLED');
    const events = await collectJobEvents(idle.admin, job.id, { afterSeq: 0 });
    expect(events.map((e) => e.state)).toEqual(['QUEUED', 'CANCELLED']);
  });
});

describe('visibility and listing', () => {
  it('hides other clients’ jobs (NOT_FOUND), including from subscriptions', async () => {
    const job = await run(t.admin, { to: 1 });
    const viewer = await t.clientWith(['VIEWER']);
    expect(codeOf((await viewer.raw(JobDocument, { id: job.id })).body)).toBe('NOT_FOUND');
    expect(codeOf((await viewer.raw(JobDocument, { id: 'not-a-uuid' })).body)).toBe('NOT_FOUND');
    const sub = viewer.subscribe(JobUpdatedDocument, { id: job.id });
    const first = await sub.next();
    expect(first.value?.errors?.[0]?.extensions?.['code'], JSON.stringify(first.value)).toBe('NOT_FOUND');
    const { jobs } = await viewer.request(JobsDocument, {});
    expect(jobs.totalCount).toBe(0);
    const cancel = await viewer.raw(CancelJobDocument, { id: job.id });
    expect(codeOf(cancel.body)).toBe('FORBIDDEN');
  });

  it('pages newest first with cursors and a total count', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await run(idle.admin, { to: 1 })).id);
    const seen: string[] = [];
    let after: string | null = null;
    for (let page = 0; page < 10; page++) {
      const res: { jobs: { totalCount: number; pageInfo: { hasNextPage: boolean; endCursor: string | null }; nodes: JobFieldsFragment[] } } =
        await idle.admin.request(JobsDocument, { first: 2, after, filter: { states: ['QUEUED'] } });
      expect(res.jobs.totalCount).toBeGreaterThanOrEqual(5);
      seen.push(...res.jobs.nodes.map((n) => n.id));
      if (!res.jobs.pageInfo.hasNextPage) break;
      after = res.jobs.pageInfo.endCursor;
    }
    expect(seen.slice(0, 5)).toEqual([...ids].reverse());
    expect(new Set(seen).size).toBe(seen.length);
    const bad = await idle.admin.raw(JobsDocument, { after: 'garbage' });
    expect(codeOf(bad.body)).toBe('BAD_USER_INPUT');
    const big = await idle.admin.raw(JobsDocument, { first: 1000 });
    expect(codeOf(big.body)).toBe('BAD_USER_INPUT');
  });

  it('pages jobs created within one millisecond without skipping any', async () => {
    const client = await idle.clientWith(['ADMIN']);
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push((await run(client, { to: 1 })).id);
    // The same millisecond, different microseconds: what a busy server writes.
    for (const [i, id] of ids.entries()) {
      await idle.database.sql`update jobs set created_at = ${`2026-01-01 00:00:00.000${100 + i}+00`}::timestamptz where id = ${id}`;
    }
    const seen: string[] = [];
    let after: string | null = null;
    for (let page = 0; page < 50; page++) {
      const res: { jobs: { pageInfo: { hasNextPage: boolean; endCursor: string | null }; nodes: JobFieldsFragment[] } } = await client.request(JobsDocument, {
        first: 3,
        after,
      });
      seen.push(...res.jobs.nodes.map((n) => n.id));
      if (!res.jobs.pageInfo.hasNextPage) break;
      after = res.jobs.pageInfo.endCursor;
    }
    // An ADMIN sees every job of the database (other tests' too); the four oldest are these.
    expect(new Set(seen).size).toBe(seen.length);
    expect(new Set(seen.slice(-4))).toEqual(new Set(ids));
  });

  it('streams changes of the viewer’s jobs through the jobs subscription', async () => {
    const sub = t.admin.subscribe(JobsChangedDocument, { filter: { types: ['diagnostic.count'] } });
    const got: JobFieldsFragment[] = [];
    let target = '';
    const reading = (async () => {
      for await (const r of sub) {
        got.push(r.data!.jobs);
        if (r.data!.jobs.id === target && r.data!.jobs.state === 'SUCCEEDED') break;
      }
    })();
    await new Promise((r) => setTimeout(r, 200));
    const job = await run(t.admin, { to: 2 });
    target = job.id;
    await reading;
    const mine = got.filter((j) => j.id === job.id);
    expect(mine.map((j) => j.state)).toContain('SUCCEEDED');
    expect(mine.at(-1)!.state).toBe('SUCCEEDED');
  });
});
