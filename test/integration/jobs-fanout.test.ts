import { print } from 'graphql';
import { createClient } from 'graphql-ws';
import { beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import {
  CancelJobDocument,
  JobDocument,
  type JobEventFieldsFragment,
  JobEventsDocument,
  JobUpdatedDocument,
  RunDiagnosticJobDocument,
} from '../../src/sdk/client';
import { startTestApp, type TestApp } from '../helpers/app';
import { FAST_JOBS } from '../helpers/jobs';

/** Subscribers of one job: half live from a SNAPSHOT, half replaying from afterSeq 0. */
const SUBSCRIBERS = 300;

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({
    ...FAST_JOBS,
    SLUICE_WS_MAX_CONNECTIONS_PER_CLIENT: String(SUBSCRIBERS + 10),
    // One job at a time: the watched job waits QUEUED behind another until all have subscribed.
    SLUICE_WORKER_CONCURRENCY: '1',
  });
});

interface Watcher {
  afterSeq: number | null;
  events: JobEventFieldsFragment[];
  ready: Promise<void>;
  done: Promise<string | null>;
  dispose: () => Promise<void>;
}

/** One graphql-ws client and socket with one jobUpdated subscription; `done` resolves with an error message or null once it completes. */
function watch(id: string, afterSeq: number | null): Watcher {
  const client = createClient({
    url: `${t.url.replace(/^http/, 'ws')}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${t.admin.options.token}` },
    retryAttempts: 0,
  });
  const events: JobEventFieldsFragment[] = [];
  let onReady!: () => void;
  let onDone!: (error: string | null) => void;
  const ready = new Promise<void>((r) => (onReady = r));
  const done = new Promise<string | null>((r) => (onDone = r));
  client.subscribe<{ jobUpdated: JobEventFieldsFragment }>(
    { query: print(JobUpdatedDocument), variables: afterSeq === null ? { id } : { id, afterSeq } },
    {
      next: (r) => {
        if (!r.data) return onDone(JSON.stringify(r.errors));
        events.push(r.data.jobUpdated);
        onReady();
      },
      error: (err) => onDone(String(err instanceof Error ? err.message : JSON.stringify(err))),
      complete: () => onDone(null),
    },
  );
  return { afterSeq, events, ready, done, dispose: async () => void (await client.dispose()) };
}

/** Reads of job_events (sequential and index scans) by every session that has ended, from PostgreSQL's statistics. */
async function jobEventReads(): Promise<number> {
  const [row] = await t.database.sql<{ n: number }[]>`
    select (coalesce(seq_scan, 0) + coalesce(idx_scan, 0))::int as n from pg_stat_user_tables where relname = 'job_events'`;
  return row?.n ?? 0;
}

describe('jobUpdated with hundreds of subscribers on one job', () => {
  it('delivers every event to every subscriber, in order, with one read of job_events per event for all of them', async () => {
    const { runDiagnosticJob: blocker } = await t.admin.request(RunDiagnosticJobDocument, { input: { to: 100_000, stepMs: 1000 } });
    const { runDiagnosticJob: job } = await t.admin.request(RunDiagnosticJobDocument, { input: { to: 40, stepMs: 25 } });
    const watchers: Watcher[] = [];
    try {
      for (let i = 0; i < SUBSCRIBERS; i += 50) {
        const wave = Array.from({ length: 50 }, (_, k) => watch(job.id, (i + k) % 2 === 0 ? null : 0));
        watchers.push(...wave);
        await Promise.all(wave.map((w) => w.ready));
      }
      const { job: queued } = await t.admin.request(JobDocument, { id: job.id });
      expect(queued.state).toBe('QUEUED');
      await t.admin.request(CancelJobDocument, { id: blocker.id });

      const errors = await Promise.all(watchers.map((w) => w.done));
      expect(errors.filter((e) => e !== null)).toEqual([]);
      const { job: stored } = await t.admin.request(JobEventsDocument, { id: job.id, afterSeq: 0, first: 1000 });
      const all = stored.events;
      expect(all.at(-1)).toMatchObject({ state: 'SUCCEEDED', terminal: true });
      expect(all.filter((e) => e.kind === 'PROGRESS').length).toBeGreaterThan(5);
      for (const w of watchers) {
        if (w.afterSeq === null) {
          // A SNAPSHOT of the QUEUED job, then every stored event after it, each once.
          const [snapshot, ...live] = w.events;
          expect(snapshot).toMatchObject({ kind: 'SNAPSHOT', state: 'QUEUED', seq: queued.lastSeq });
          expect(live).toEqual(all.filter((e) => e.seq > queued.lastSeq));
        } else {
          expect(w.events).toEqual(all);
        }
      }
    } finally {
      await Promise.all(watchers.map((w) => w.dispose()));
    }

    // Sessions report their statistics when they end: stop the service, wait for its sessions to go.
    await t.app.dispose();
    for (let tries = 0; ; tries++) {
      const left = await t.database.sql<{ application_name: string; state: string }[]>`
        select application_name, state from pg_stat_activity
        where datname = current_database() and backend_type = 'client backend' and application_name not like 'sluice-test-assert%'`;
      if (left.length === 0) break;
      if (tries > 100) throw new Error(`the service sessions did not end: ${JSON.stringify(left)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    // Each replaying subscriber reads the table once to reach the feed; the feed reads once per
    // notification. One read per subscriber per event (the old way) would be thousands.
    const reads = await jobEventReads();
    expect(reads).toBeGreaterThan(0);
    expect(reads).toBeLessThan(SUBSCRIBERS / 2 + 150);
  });
});
