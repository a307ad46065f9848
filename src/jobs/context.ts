import type postgres from 'postgres';
import type { Logger } from '../shared/logger';
import { JobStopped, type StopReason } from './errors';
import type { Counters, Job, JobsStore } from './store';

/** What a running handler may do. Every write is fenced on (state RUNNING, this attempt). */
export class JobContext<I> {
  private pending: Counters = {};
  private lastFlush = 0;
  private flushing: Promise<void> = Promise.resolve();
  private stopReason?: StopReason;
  private readonly controller = new AbortController();

  constructor(
    readonly job: Job,
    readonly input: I,
    readonly log: Logger,
    private readonly store: JobsStore,
    private readonly progressIntervalMs: number,
  ) {}

  get jobId(): string {
    return this.job.id;
  }

  get attempt(): number {
    return this.job.attempt;
  }

  /** Aborted when the job must stop; pass it to streams so they stop promptly. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  stop(reason: StopReason): void {
    // The first reason wins: a cancelled job that is also shutting down is still cancelled.
    if (this.stopReason) return;
    this.stopReason = reason;
    this.controller.abort(new JobStopped(reason));
  }

  get stopped(): StopReason | undefined {
    return this.stopReason;
  }

  /** Records progress; stored and published at most every progressIntervalMs (the terminal state always is). */
  progress(c: Counters): void {
    Object.assign(this.pending, c);
    if (Date.now() - this.lastFlush >= this.progressIntervalMs) this.flush();
  }

  /** Counters reported so far and not yet stored; included in the terminal transition. */
  takePending(): Counters {
    const p = this.pending;
    this.pending = {};
    return p;
  }

  private flush(): void {
    this.lastFlush = Date.now();
    const counters = this.takePending();
    if (Object.keys(counters).length === 0) return;
    this.flushing = this.flushing.then(async () => {
      const job = await this.store.progress(this.job.id, this.job.attempt, counters);
      if (!job) this.stop('fenced');
    });
  }

  /** Stores due progress and throws JobStopped if the job was cancelled, reassigned or the worker is stopping. */
  async checkpoint(): Promise<void> {
    if (Date.now() - this.lastFlush >= this.progressIntervalMs) this.flush();
    await this.flushing;
    if (this.stopReason) throw new JobStopped(this.stopReason);
  }

  /**
   * Runs `fn` in a transaction that may write the feature's data: it holds the job's fence lock
   * and first verifies this attempt still owns the job. Why an advisory lock and not the job row:
   * progress and heartbeats keep updating the row during a long COPY, and the reaper cannot
   * re-assign the job while this lock is held, so a stale attempt can never commit data.
   */
  async fenced<T>(fn: (tx: postgres.TransactionSql) => Promise<T>): Promise<T> {
    await this.flushing;
    return this.store.begin(async (tx) => {
      if (!(await this.store.holdsFence(tx, this.job.id, this.job.attempt))) {
        this.stop('fenced');
        throw new JobStopped('fenced');
      }
      return fn(tx);
    });
  }

  async settled(): Promise<void> {
    await this.flushing.catch(() => undefined);
  }
}
