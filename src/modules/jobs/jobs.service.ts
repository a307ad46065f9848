import type postgres from 'postgres';
import type { Viewer } from '../../shared/auth';
import { decodeTimeCursor, encodeTimeCursor, isUuid } from '../../shared/cursor';
import { BadInputError, ConflictError, NotFoundError } from '../../shared/errors';
import type { Logger } from '../../shared/logger';
import type { NotificationBus } from '../../shared/pubsub';
import { hasRole, Role } from '../../shared/roles';
import { PushStream } from '../../shared/stream';
import type { JobQueue } from './job-queue';
import { isTerminal, JobState } from './job-state';
import type { Job, JobEvent, JobsStore, ListFilter, Notification, Tx } from './jobs.store';

export const JOB_CANCEL_CHANNEL = 'sluice_job_cancel';
export const MAX_PAGE_SIZE = 100;

export interface JobsPage {
  jobs: Job[];
  hasNextPage: boolean;
  endCursor: string | null;
  totalCount: number;
}

/** What `jobUpdated` emits: a stored event, or a SNAPSHOT of the current state when there is nothing to replay. */
export interface JobUpdate {
  jobId: string;
  seq: number;
  kind: 'STATE' | 'PROGRESS' | 'SNAPSHOT';
  state: JobState;
  attempt: number;
  at: Date;
  counters: JobEvent['payload'];
}



function toUpdate(e: JobEvent): JobUpdate {
  return { jobId: e.jobId, seq: e.seq, kind: e.kind, state: e.state, attempt: e.attempt, at: e.createdAt, counters: e.payload };
}


/** Job rules: visibility (own jobs, all for ADMIN), submission, cancel, retry, live streams. */
export class JobsService {
  constructor(
    private readonly store: JobsStore,
    private readonly queue: JobQueue,
    private readonly bus: NotificationBus<Notification>,
    private readonly log: Logger,
    private readonly maxAttempts: number,
  ) {}

  private canSee(viewer: Viewer, job: Job): boolean {
    return hasRole(viewer.roles, Role.ADMIN) || job.createdBy === viewer.clientId;
  }

  /** Loads a job the viewer may see; NOT_FOUND otherwise (existence is not revealed). */
  async get(viewer: Viewer, id: string): Promise<Job> {
    if (!isUuid(id)) throw new NotFoundError('Job', id);
    const job = await this.store.get(id);
    if (!job || !this.canSee(viewer, job)) throw new NotFoundError('Job', id);
    return job;
  }

  /** A transaction in which a feature writes its own rows and submits jobs atomically. */
  inTransaction<T>(fn: (tx: postgres.TransactionSql) => Promise<T>): Promise<T> {
    return this.store.begin(fn);
  }

  /** Stored events of a job the caller has already been allowed to see. */
  async events(jobId: string, afterSeq: number, limit: number): Promise<JobUpdate[]> {
    const events = await this.store.events(jobId, afterSeq, limit);
    return events.map(toUpdate);
  }

  /**
   * Creates a QUEUED job and its queue message in one transaction (`tx` when the caller has one,
   * so a feature's own rows commit with the job). Same idempotency key: the existing job back.
   */
  async submit(
    viewer: Viewer,
    type: string,
    input: unknown,
    opts: { idempotencyKey?: string | null; tx?: Tx } = {},
  ): Promise<{ job: Job; created: boolean }> {
    const run = async (tx: Tx) => {
      const res = await this.store.insert(tx, { type, input, createdBy: viewer.clientId, idempotencyKey: opts.idempotencyKey, maxAttempts: this.maxAttempts });
      if (res.created) await this.queue.enqueue(tx, res.job.id);
      return res;
    };
    const res = opts.tx ? await run(opts.tx) : await this.store.begin(run);
    if (res.created) this.log.info({ jobId: res.job.id, type, by: viewer.clientId }, 'job queued');
    return res;
  }

  async list(viewer: Viewer, filter: ListFilter, first: number, after?: string | null): Promise<JobsPage> {
    if (!Number.isInteger(first) || first < 1 || first > MAX_PAGE_SIZE) {
      throw new BadInputError(`first must be 1-${MAX_PAGE_SIZE}, got ${first}`, { field: 'first' });
    }
    const f: ListFilter = { ...filter };
    if (!hasRole(viewer.roles, Role.ADMIN)) f.createdBy = viewer.clientId;
    const cursor = after ? decodeTimeCursor(after) : undefined;
    const [rows, totalCount] = await Promise.all([this.store.list(f, first + 1, cursor), this.store.count(f)]);
    const jobs = rows.slice(0, first);
    return { jobs, hasNextPage: rows.length > first, endCursor: jobs.length ? encodeTimeCursor(jobs[jobs.length - 1]!) : null, totalCount };
  }

  /** QUEUED: cancelled at once. RUNNING: the worker stops at its next checkpoint and ends CANCELLED. */
  async cancel(viewer: Viewer, id: string): Promise<Job> {
    await this.get(viewer, id);
    const job = await this.store.begin(async (tx) => {
      const current = (await this.store.getForUpdate(tx, id))!;
      if (current.state === JobState.QUEUED) return this.store.transition(tx, current, JobState.CANCELLED);
      if (current.state === JobState.RUNNING) {
        await this.store.requestCancel(tx, id);
        await tx`select pg_notify(${JOB_CANCEL_CHANNEL}, ${JSON.stringify({ id })})`;
        return (await this.store.get(id, tx))!;
      }
      throw new ConflictError(`Job ${id} is ${current.state} and can no longer be cancelled`, { state: current.state });
    });
    this.log.info({ jobId: id, by: viewer.clientId, state: job.state }, 'job cancel requested');
    return job;
  }

  /** FAILED -> QUEUED, keeping its id, input and events; attempts continue counting. */
  async retry(viewer: Viewer, id: string): Promise<Job> {
    await this.get(viewer, id);
    return this.store.begin(async (tx) => {
      const current = (await this.store.getForUpdate(tx, id))!;
      if (current.state !== JobState.FAILED) {
        throw new ConflictError(`Only FAILED jobs can be retried; job ${id} is ${current.state}`, { state: current.state });
      }
      const job = await this.store.transition(tx, current, JobState.QUEUED, {
        error: null,
        result: null,
        workerId: null,
        processed: 0,
        succeeded: 0,
        failed: 0,
        bytesProcessed: 0,
      });
      // Give the retried job a fresh budget of attempts beyond those already used.
      await tx`update jobs set max_attempts = attempt + ${this.maxAttempts} where id = ${id}`;
      await this.queue.enqueue(tx, id);
      return job;
    });
  }

  /**
   * Events of one job: those after `afterSeq` (replayed from the table), or a SNAPSHOT of the
   * current state; then live ones in order; completes after the terminal event. LISTEN starts
   * before the first read, so nothing falls between replay and live.
   */
  async watch(viewer: Viewer, id: string, afterSeq: number | null | undefined): Promise<AsyncIterableIterator<JobUpdate>> {
    const job = await this.get(viewer, id);
    if (afterSeq != null && (!Number.isInteger(afterSeq) || afterSeq < 0)) {
      throw new BadInputError('afterSeq must be a non-negative integer', { field: 'afterSeq' });
    }
    let sent = afterSeq ?? job.lastSeq;
    let pumping: Promise<void> = Promise.resolve();
    const stream = new PushStream<JobUpdate>(() => off());
    const pump = () => {
      pumping = pumping.then(async () => {
        while (!stream.isDone) {
          const events = await this.store.events(id, sent, 500);
          for (const e of events) {
            sent = e.seq;
            stream.push(toUpdate(e));
            if (e.kind === 'STATE' && isTerminal(e.state)) {
              stream.end();
              return;
            }
          }
          if (events.length < 500) return;
        }
      }).catch((err) => stream.fail(err));
    };
    const off = this.bus.on((n) => {
      if (n === null || (n.id === id && n.seq > sent)) pump();
    });
    if (afterSeq == null || afterSeq >= job.lastSeq) {
      stream.push({
        jobId: id,
        seq: job.lastSeq,
        kind: 'SNAPSHOT',
        state: job.state,
        attempt: job.attempt,
        at: job.updatedAt,
        counters: { total: job.total, processed: job.processed, succeeded: job.succeeded, failed: job.failed, bytesTotal: job.bytesTotal, bytesProcessed: job.bytesProcessed, error: job.error },
      });
      sent = Math.max(sent, job.lastSeq);
      if (isTerminal(job.state)) stream.end();
    }
    // Replay what the client missed, and anything committed between our read and LISTEN.
    pump();
    return stream;
  }

  /** Every change to the viewer's jobs (all jobs for ADMIN) matching the filter, as current rows. */
  watchAll(viewer: Viewer, filter: ListFilter): AsyncIterableIterator<Job> {
    const admin = hasRole(viewer.roles, Role.ADMIN);
    const stream = new PushStream<Job>(() => off());
    let chain: Promise<void> = Promise.resolve();
    const pushed = new Map<string, number>();
    const off = this.bus.on((n) => {
      if (!n) return;
      if (!admin && n.by !== viewer.clientId) return;
      if (filter.states?.length && !filter.states.includes(n.state)) return;
      chain = chain
        .then(async () => {
          const job = await this.store.get(n.id);
          if (!job || stream.isDone) return;
          if (filter.types?.length && !filter.types.includes(job.type)) return;
          // Several notifications may be answered by one read; push each state of a job once.
          if ((pushed.get(job.id) ?? 0) >= job.lastSeq) return;
          pushed.set(job.id, job.lastSeq);
          stream.push(job);
        })
        .catch((err) => this.log.warn({ err }, 'jobs subscription read failed'));
    });
    return stream;
  }
}
