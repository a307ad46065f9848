import type postgres from 'postgres';
import type { Viewer } from '../../shared/auth';
import { BoundedMap } from '../../shared/bounded-map';
import { decodeTimeCursor, encodeTimeCursor, isUuid, paginate, type Page } from '../../shared/cursor';
import { BadInputError, ConflictError, ErrorCode, NotFoundError, SluiceError } from '../../shared/errors';
import type { Logger } from '../../shared/logger';
import type { NotificationBus } from '../../shared/pubsub';
import { hasRole, Role } from '../../shared/roles';
import { type PullBatch, PullStream } from '../../shared/stream';
import { retryTransientRead } from '../../jobs/transient-errors';
import type { JobQueue } from '../../jobs/queue';
import { isTerminal, JobState } from '../../jobs/state';
import type { Tx } from '../../db/tx';
import type { Notification } from '../../jobs/channels';
import type { Job, JobsStore, ListFilter } from '../../jobs/store';
import { EVENT_PAGE_SIZE, type FanoutObserver, JobEventFeeds, type JobUpdate, toUpdate } from './job-event-feed';
export type { Job } from '../../jobs/store';
export type { JobUpdate } from './job-event-feed';

export const MAX_PAGE_SIZE = 100;
/** Events `jobUpdated` reads (and holds) at a time. */
export const WATCH_PAGE_SIZE = EVENT_PAGE_SIZE;
/** Distinct changed jobs a `jobs` subscription may fall behind before it is ended. */
export const WATCH_MAX_PENDING_JOBS = 10_000;

/** Job rules: visibility (own jobs, all for ADMIN), submission, cancel, retry, live streams. */
export class JobsService {
  private readonly feeds: JobEventFeeds;

  constructor(
    private readonly store: JobsStore,
    private readonly queue: JobQueue,
    private readonly bus: NotificationBus<Notification>,
    private readonly log: Logger,
    private readonly maxAttempts: number,
    /** Each round of delivering a job's new events to its subscriptions in this process: how long, to how many. */
    onFanoutRound?: FanoutObserver,
  ) {
    this.feeds = new JobEventFeeds(store, bus, log, onFanoutRound);
  }

  private readonly retryGuards = new Map<string, (tx: Tx, job: Job) => Promise<void>>();

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

  /**
   * A job by id without an access check: for a job the caller reached through a record it may
   * see (a file's job).
   */
  find(id: string): Promise<Job | undefined> {
    return this.store.get(id);
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
  async submit(viewer: Viewer, type: string, input: unknown, opts: { idempotencyKey?: string | null; tx?: Tx } = {}): Promise<{ job: Job; created: boolean }> {
    const run = async (tx: Tx) => {
      const res = await this.store.insert(tx, { type, input, createdBy: viewer.clientId, idempotencyKey: opts.idempotencyKey, maxAttempts: this.maxAttempts });
      if (res.created) await this.queue.enqueue(tx, res.job.id);
      return res;
    };
    const res = opts.tx ? await run(opts.tx) : await this.store.begin(run);
    if (res.created) this.log.info({ jobId: res.job.id, type, by: viewer.clientId }, 'job queued');
    return res;
  }

  async list(viewer: Viewer, filter: ListFilter, first: number, after?: string | null): Promise<Page<Job>> {
    if (!Number.isInteger(first) || first < 1 || first > MAX_PAGE_SIZE) {
      throw new BadInputError(`first must be 1-${MAX_PAGE_SIZE}, got ${first}`, { field: 'first' });
    }
    const f: ListFilter = { ...filter };
    if (!hasRole(viewer.roles, Role.ADMIN)) f.createdBy = viewer.clientId;
    return paginate({
      first,
      after: after ? decodeTimeCursor(after) : undefined,
      fetch: (limit, cursor) => this.store.list(f, limit, cursor),
      count: () => this.store.count(f),
      cursorOf: encodeTimeCursor,
    });
  }

  /** QUEUED: cancelled at once. RUNNING: the worker stops at its next checkpoint and ends CANCELLED. */
  async cancel(viewer: Viewer, id: string): Promise<Job> {
    await this.get(viewer, id);
    const job = await this.store.begin(async (tx) => {
      const current = (await this.store.getForUpdate(tx, id))!;
      if (current.state === JobState.QUEUED) return this.store.transition(tx, current, JobState.CANCELLED);
      if (current.state === JobState.RUNNING) {
        await this.store.requestCancel(tx, id);
        return (await this.store.get(id, tx))!;
      }
      throw new ConflictError(`Job ${id} is ${current.state} and can no longer be cancelled`, { state: current.state });
    });
    this.log.info({ jobId: id, by: viewer.clientId, state: job.state }, 'job cancel requested');
    return job;
  }

  /**
   * A check a job type adds to retryJob, run in the retry's transaction with the job's row locked
   * (FOR UPDATE): it throws to refuse the retry (e.g. a file whose corrections a reload would drop).
   */
  guardRetry(type: string, guard: (tx: Tx, job: Job) => Promise<void>): void {
    this.retryGuards.set(type, guard);
  }

  /**
   * Locks job `id`'s row (FOR SHARE, until the transaction ends) and refuses with CONFLICT while it
   * is QUEUED or RUNNING: whatever the caller writes then cannot race a retry of that job, which
   * takes the row FOR UPDATE.
   */
  async assertSettled(tx: Tx, id: string, what: string): Promise<void> {
    const state = await this.store.stateForShare(tx, id);
    if (state !== undefined && !isTerminal(state)) {
      throw new ConflictError(`${what}: its job ${id} is ${state}; try again once it has ended`, { jobId: id, state });
    }
  }

  /** FAILED -> QUEUED, keeping its id, input and events; attempts continue counting. */
  async retry(viewer: Viewer, id: string): Promise<Job> {
    await this.get(viewer, id);
    return this.store.begin(async (tx) => {
      const current = (await this.store.getForUpdate(tx, id))!;
      if (current.state !== JobState.FAILED) {
        throw new ConflictError(`Only FAILED jobs can be retried; job ${id} is ${current.state}`, { state: current.state });
      }
      await this.retryGuards.get(current.type)?.(tx, current);
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
      await this.store.allowMoreAttempts(tx, id, this.maxAttempts);
      await this.queue.enqueue(tx, id);
      return job;
    });
  }

  /**
   * Events of one job: those after `afterSeq` (replayed from the table), or a SNAPSHOT of the
   * current state; then live ones in order; completes after the terminal event. The stream takes
   * a page of events only when its consumer asks (notifications just wake it), so a slow client
   * costs one page of memory, never a queue. Live events come from the job's feed, one read of
   * job_events per notification for all its subscribers in this process; a subscription behind
   * the feed's window (a replay, a slow client) reads the table itself. The feed listens before
   * its first read, so nothing falls between replay and live.
   */
  async watch(viewer: Viewer, id: string, afterSeq: number | null | undefined): Promise<AsyncIterableIterator<JobUpdate>> {
    const job = await this.get(viewer, id);
    if (afterSeq != null && (!Number.isInteger(afterSeq) || afterSeq < 0)) {
      throw new BadInputError('afterSeq must be a non-negative integer', { field: 'afterSeq' });
    }
    let sent = afterSeq ?? job.lastSeq;
    const initial: JobUpdate[] = [];
    let done = false;
    if (afterSeq == null || afterSeq >= job.lastSeq) {
      initial.push({
        jobId: id,
        seq: job.lastSeq,
        kind: 'SNAPSHOT',
        state: job.state,
        attempt: job.attempt,
        at: job.updatedAt,
        counters: {
          total: job.total,
          processed: job.processed,
          succeeded: job.succeeded,
          failed: job.failed,
          bytesTotal: job.bytesTotal,
          bytesProcessed: job.bytesProcessed,
          error: job.error,
        },
      });
      sent = Math.max(sent, job.lastSeq);
      done = isTerminal(job.state);
    }
    if (done) return new PullStream<JobUpdate>(async () => ({ items: [], done: true }), { initial, done });
    const take = (events: JobUpdate[]): PullBatch<JobUpdate> => {
      const items: JobUpdate[] = [];
      for (const e of events) {
        sent = e.seq;
        items.push(e);
        if (e.kind === 'STATE' && isTerminal(e.state)) return { items, done: true };
      }
      return { items, done: false };
    };
    const stream = new PullStream<JobUpdate>(
      // Replays what the client missed from the table when the feed does not hold it.
      async () => take(feed.after(sent, WATCH_PAGE_SIZE) ?? (await retryTransientRead(() => this.store.events(id, sent, WATCH_PAGE_SIZE))).map(toUpdate)),
      {
        initial,
        done,
        onClose: () => feed.leave(),
        // What the feed holds is at hand without a read.
        readSync: () => {
          const events = feed.after(sent, WATCH_PAGE_SIZE);
          return events && take(events);
        },
      },
    );
    const feed = this.feeds.join(id, job.lastSeq, {
      get sent() {
        return sent;
      },
      wake: () => stream.wake(),
    });
    return stream;
  }

  /**
   * Every change to the viewer's jobs (all jobs for ADMIN) matching the filter, as current rows.
   * Changes are coalesced per job into a bounded set of ids, read only when the consumer asks:
   * a client that falls more than WATCH_MAX_PENDING_JOBS distinct jobs behind gets
   * SERVICE_UNAVAILABLE and must subscribe again (and re-read with the `jobs` query).
   */
  watchAll(viewer: Viewer, filter: ListFilter): AsyncIterableIterator<Job> {
    const admin = hasRole(viewer.roles, Role.ADMIN);
    const pending = new Set<string>();
    // Last seq pushed per job (bounded: oldest entries go first), so each state is pushed once.
    const pushed = new BoundedMap<string, number>(WATCH_MAX_PENDING_JOBS);
    const remember = (jobId: string, seq: number) => {
      pushed.delete(jobId);
      pushed.set(jobId, seq);
    };
    const stream = new PullStream<Job>(
      async () => {
        for (let next = pending.values().next(); !next.done; next = pending.values().next()) {
          pending.delete(next.value);
          const jobId = next.value;
          const job = await retryTransientRead(() => this.store.get(jobId));
          if (!job || stream.isDone) continue;
          if (filter.types?.length && !filter.types.includes(job.type)) continue;
          if ((pushed.get(job.id) ?? 0) >= job.lastSeq) continue;
          remember(job.id, job.lastSeq);
          return { items: [job], done: false };
        }
        return { items: [], done: false };
      },
      { onClose: () => off() },
    );
    const off = this.bus.on((n) => {
      if (!n) return;
      if (!admin && n.by !== viewer.clientId) return;
      if (filter.states?.length && !filter.states.includes(n.state)) return;
      if (n.seq <= (pushed.get(n.id) ?? 0)) return;
      pending.add(n.id);
      if (pending.size > WATCH_MAX_PENDING_JOBS) {
        pending.clear();
        stream.fail(
          new SluiceError(
            ErrorCode.SERVICE_UNAVAILABLE,
            `More than ${WATCH_MAX_PENDING_JOBS} jobs changed faster than this subscription was read; subscribe again`,
          ),
        );
        off();
        return;
      }
      stream.wake();
    });
    return stream;
  }
}
