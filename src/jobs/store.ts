import type postgres from 'postgres';
import type { Sql } from '../db/client';
import { decoder } from '../db/rows';
import { jobEvents, jobs } from '../db/schema';
import type { Counters, EventPayload, JobError } from '../db/schema/jobs';

export type { Counters, EventPayload, JobError } from '../db/schema/jobs';
import type { Tx } from '../db/tx';
import { JOB_CANCEL_CHANNEL, JOB_EVENTS_CHANNEL, type CancelNotification, type Notification } from './channels';
import { assertTransition, JobState } from './state';

/** First key of the two-key advisory locks that fence job data writes. Arbitrary, fixed. */
const FENCE_LOCK_CLASS = 7283;

/** How often a data transaction retries a job's fence lock held by another session. */
const FENCE_POLL_MS = 100;

/** A jobs row. */
export type Job = typeof jobs.$inferSelect;

/** A job_events row. */
export type JobEvent = typeof jobEvents.$inferSelect;

const decodeJob = decoder(jobs);

const decodeEvent = decoder(jobEvents);

function payloadOf(job: Job): EventPayload {
  return {
    total: job.total,
    processed: job.processed,
    succeeded: job.succeeded,
    failed: job.failed,
    bytesTotal: job.bytesTotal,
    bytesProcessed: job.bytesProcessed,
    error: job.error,
  };
}

export interface TransitionPatch extends Counters {
  result?: unknown;
  error?: JobError | null;
  workerId?: string | null;
  /** Increment attempt (a claim). */
  claim?: boolean;
  cancelRequested?: boolean;
}

export interface ListFilter {
  createdBy?: string;
  types?: string[];
  states?: JobState[];
}

/** SQL for jobs and job_events; no rules beyond the state machine guard. */
export class JobsStore {
  constructor(private readonly sql: Sql) {}

  /**
   * Runs inside the transaction of every STATE event (the webhook outbox): whatever it writes
   * commits with the transition or not at all.
   */
  onStateEvent?: (tx: Tx, job: Job) => Promise<void>;

  begin<T>(fn: (tx: postgres.TransactionSql) => Promise<T>): Promise<T> {
    return this.sql.begin(fn) as Promise<T>;
  }

  /** Inserts a QUEUED job with its first event; on an idempotency-key hit returns the existing job. */
  async insert(
    tx: Tx,
    v: { type: string; input: unknown; createdBy: string; idempotencyKey?: string | null; maxAttempts: number },
  ): Promise<{ job: Job; created: boolean }> {
    const [row] = await tx`
      insert into jobs (type, input, created_by, idempotency_key, max_attempts, last_seq)
      values (${v.type}, ${tx.json(v.input as postgres.JSONValue)}, ${v.createdBy}, ${v.idempotencyKey ?? null}, ${v.maxAttempts}, 1)
      on conflict (created_by, type, idempotency_key) do nothing
      returning *`;
    if (!row) {
      const [existing] = await tx`
        select * from jobs where created_by = ${v.createdBy} and type = ${v.type} and idempotency_key = ${v.idempotencyKey ?? null}`;
      return { job: decodeJob(existing!), created: false };
    }
    const job = decodeJob(row);
    await this.insertEvent(tx, job, 'STATE');
    return { job, created: true };
  }

  async get(id: string, tx: Tx = this.sql): Promise<Job | undefined> {
    const [row] = await tx`select * from jobs where id = ${id}`;
    return row ? decodeJob(row) : undefined;
  }

  /** Job `id`'s state, its row locked FOR SHARE until `tx` ends (a retry, FOR UPDATE, waits). */
  async stateForShare(tx: Tx, id: string): Promise<JobState | undefined> {
    const [row] = await tx<{ state: JobState }[]>`select state::text as state from jobs where id = ${id} for share`;
    return row?.state;
  }

  async getForUpdate(tx: Tx, id: string): Promise<Job | undefined> {
    const [row] = await tx`select * from jobs where id = ${id} for update`;
    return row ? decodeJob(row) : undefined;
  }

  async getMany(ids: readonly string[]): Promise<Job[]> {
    if (ids.length === 0) return [];
    const rows = await this.sql`select * from jobs where id = any(${ids as string[]}::uuid[])`;
    return rows.map(decodeJob);
  }

  private where(f: ListFilter, after?: { createdAt: Date; id: string }) {
    const s = this.sql;
    const parts = [s`true`];
    if (f.createdBy) parts.push(s`created_by = ${f.createdBy}`);
    if (f.types?.length) parts.push(s`type = any(${f.types})`);
    if (f.states?.length) parts.push(s`state = any(${f.states}::job_state[])`);
    if (after) parts.push(s`(created_at, id) < (${after.createdAt}, ${after.id}::uuid)`);
    return parts.reduce((acc, p) => s`${acc} and ${p}`);
  }

  async list(f: ListFilter, limit: number, after?: { createdAt: Date; id: string }): Promise<Job[]> {
    const rows = await this.sql`
      select * from jobs where ${this.where(f, after)} order by created_at desc, id desc limit ${limit}`;
    return rows.map(decodeJob);
  }

  async count(f: ListFilter): Promise<number> {
    const [row] = await this.sql<{ n: number }[]>`select count(*)::int as n from jobs where ${this.where(f)}`;
    return row!.n;
  }

  async events(jobId: string, afterSeq: number, limit = 1000): Promise<JobEvent[]> {
    const rows = await this.sql`
      select * from job_events where job_id = ${jobId} and seq > ${afterSeq} order by seq limit ${limit}`;
    return rows.map(decodeEvent);
  }

  /**
   * Moves `current` (read FOR UPDATE in `tx`) to `to`, stores the numbered event and notifies.
   * The state machine check here is the last line of defence: callers check first and report
   * expected conflicts; reaching an illegal transition here is a bug and throws.
   */
  async transition(tx: Tx, current: Job, to: JobState, patch: TransitionPatch = {}): Promise<Job> {
    assertTransition(current.state, to);
    const terminal = to !== JobState.QUEUED && to !== JobState.RUNNING;
    const [row] = await tx`
      update jobs set
        state = ${to}::job_state,
        last_seq = last_seq + 1,
        updated_at = now(),
        attempt = attempt + ${patch.claim ? 1 : 0},
        started_at = case when ${to === JobState.RUNNING} then coalesce(started_at, now()) else started_at end,
        heartbeat_at = case when ${to === JobState.RUNNING} then now() else null end,
        finished_at = case when ${terminal} then now() when ${to === JobState.QUEUED} then null else finished_at end,
        worker_id = ${patch.workerId === undefined ? current.workerId : patch.workerId},
        result = ${patch.result === undefined ? tx`result` : this.jsonOrNull(tx, patch.result)},
        error = ${patch.error === undefined ? tx`error` : this.jsonOrNull(tx, patch.error)},
        cancel_requested_at = case when ${to === JobState.QUEUED && current.state === JobState.FAILED} then null else cancel_requested_at end,
        ${this.counterSet(tx, patch)}
      where id = ${current.id}
      returning *`;
    const job = decodeJob(row!);
    await this.insertEvent(tx, job, 'STATE');
    return job;
  }

  private jsonOrNull(tx: Tx, v: unknown) {
    return v === null ? tx`null` : tx`${tx.json(v as postgres.JSONValue)}`;
  }

  private counterSet(tx: Tx, c: Counters) {
    return tx`
      total = ${c.total === undefined ? tx`total` : c.total},
      processed = ${c.processed === undefined ? tx`processed` : c.processed},
      succeeded = ${c.succeeded === undefined ? tx`succeeded` : c.succeeded},
      failed = ${c.failed === undefined ? tx`failed` : c.failed},
      bytes_total = ${c.bytesTotal === undefined ? tx`bytes_total` : c.bytesTotal},
      bytes_processed = ${c.bytesProcessed === undefined ? tx`bytes_processed` : c.bytesProcessed}`;
  }

  /**
   * Fenced progress: writes only while the job is RUNNING under `attempt`. False when fenced out.
   * One statement, so one round trip and its own transaction: the row, its PROGRESS event (the
   * payload payloadOf gives, built from the updated row) and the notification, committed together
   * as insertEvent's three statements in a transaction would be. Why: each round trip waits for a
   * turn of the event loop, which a fan-out round to thousands of subscribers holds for hundreds of
   * milliseconds; the event's `at` is the transaction's start, so every turn it waited was latency.
   */
  async progress(id: string, attempt: number, c: Counters): Promise<Job | undefined> {
    const s = this.sql;
    const [row] = await s`
      with j as (
        update jobs set last_seq = last_seq + 1, updated_at = now(), heartbeat_at = now(), ${this.counterSet(s, c)}
        where id = ${id} and attempt = ${attempt} and state = 'RUNNING'
        returning *
      ), e as (
        insert into job_events (job_id, seq, kind, state, attempt, payload)
        select id, last_seq, 'PROGRESS', state, attempt, jsonb_build_object(
          'total', total, 'processed', processed, 'succeeded', succeeded, 'failed', failed,
          'bytesTotal', bytes_total, 'bytesProcessed', bytes_processed, 'error', error)
        from j
      ), n as (
        select pg_notify(${JOB_EVENTS_CHANNEL}, json_build_object('id', id, 'seq', last_seq, 'state', state, 'by', created_by)::text) from j
      )
      select j.* from j cross join n`;
    return row ? decodeJob(row) : undefined;
  }

  /** Fenced heartbeat; also reports whether cancellation was requested. */
  async heartbeat(id: string, attempt: number): Promise<{ alive: boolean; cancelRequested: boolean }> {
    const [row] = await this.sql<{ cancel_requested_at: Date | null }[]>`
      update jobs set heartbeat_at = now()
      where id = ${id} and attempt = ${attempt} and state = 'RUNNING'
      returning cancel_requested_at`;
    return { alive: Boolean(row), cancelRequested: Boolean(row?.cancel_requested_at) };
  }

  /** Marks a RUNNING job's cancellation requested and notifies JOB_CANCEL_CHANNEL at commit. */
  async requestCancel(tx: Tx, id: string): Promise<void> {
    await tx`update jobs set cancel_requested_at = coalesce(cancel_requested_at, now()), updated_at = now() where id = ${id}`;
    await tx`select pg_notify(${JOB_CANCEL_CHANNEL}, ${JSON.stringify({ id } satisfies CancelNotification)})`;
  }

  /** A fresh budget of `more` attempts beyond those already used (a retried job). */
  async allowMoreAttempts(tx: Tx, id: string, more: number): Promise<void> {
    await tx`update jobs set max_attempts = attempt + ${more} where id = ${id}`;
  }

  /**
   * Transaction-scoped fence lock of a job (see JobContext.fenced). Also lifts statement_timeout
   * for the transaction: a load's COPY lasts as long as its file takes to stream. A silent
   * server is still caught by the client's no-answer bound (src/db/watched-socket.ts), a vanished
   * worker by the reaper.
   */
  async lockFence(tx: Tx, id: string): Promise<void> {
    await tx`set local statement_timeout = 0`;
    // Polled, not waited for: the holder may be a stale attempt the reaper has yet to end, and a
    // statement silent for that long would be taken for a half-open link.
    while (!(await this.tryLockFence(tx, id))) await new Promise((r) => setTimeout(r, FENCE_POLL_MS));
  }

  /**
   * Takes the job's fence lock (lockFence) and tells whether attempt `attempt` still owns the job
   * (RUNNING under it): what a transaction that writes the job's data checks first.
   */
  async holdsFence(tx: Tx, id: string, attempt: number): Promise<boolean> {
    await this.lockFence(tx, id);
    const current = await this.get(id, tx);
    return current !== undefined && current.state === JobState.RUNNING && current.attempt === attempt;
  }

  async tryLockFence(tx: Tx, id: string): Promise<boolean> {
    const [row] = await tx<{ ok: boolean }[]>`select pg_try_advisory_xact_lock(${FENCE_LOCK_CLASS}, hashtext(${id})) as ok`;
    return row!.ok;
  }

  /**
   * Ends the database sessions (other than this one) holding a job's fence lock: the open data
   * transaction of a worker that stopped heartbeating (frozen, partitioned, half-open link). Its
   * transaction rolls back, so nothing it wrote becomes visible. Waits up to `waitMs` for each to
   * exit. Returns their process ids.
   */
  async terminateFenceHolders(tx: Tx, id: string, waitMs: number): Promise<number[]> {
    const rows = await tx<{ pid: number }[]>`
      select l.pid, pg_terminate_backend(l.pid, ${waitMs}::bigint) as ended
      from pg_locks l
      where l.locktype = 'advisory' and l.granted and l.pid <> pg_backend_pid()
        and l.database = (select oid from pg_database where datname = current_database())
        and l.classid = ${FENCE_LOCK_CLASS}::oid and l.objid = hashtext(${id})::oid and l.objsubid = 2`;
    return rows.map((r) => r.pid);
  }

  /** RUNNING jobs whose worker stopped heartbeating, locked for the caller's transaction. */
  async lockStale(tx: Tx, staleMs: number, limit = 50): Promise<Job[]> {
    const rows = await tx`
      select * from jobs
      where state = 'RUNNING' and heartbeat_at < now() - make_interval(secs => ${staleMs / 1000})
      order by heartbeat_at
      limit ${limit}
      for update skip locked`;
    return rows.map(decodeJob);
  }

  private async insertEvent(tx: Tx, job: Job, kind: 'STATE' | 'PROGRESS'): Promise<void> {
    await tx`
      insert into job_events (job_id, seq, kind, state, attempt, payload)
      values (${job.id}, ${job.lastSeq}, ${kind}, ${job.state}::job_state, ${job.attempt}, ${tx.json(payloadOf(job) as unknown as postgres.JSONValue)})`;
    if (kind === 'STATE' && this.onStateEvent) await this.onStateEvent(tx, job);
    const note: Notification = { id: job.id, seq: job.lastSeq, state: job.state, by: job.createdBy };
    // Delivered at commit, so listeners never see an event before it can be read.
    await tx`select pg_notify(${JOB_EVENTS_CHANNEL}, ${JSON.stringify(note)})`;
  }
}
