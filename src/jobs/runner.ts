import { randomBytes } from 'node:crypto';
import os from 'node:os';
import type { Logger } from '../shared/logger';
import { JobContext } from './context';
import { JobErrorCode, JobFailure, JobStopped } from './errors';
import { HandlerRegistry, type JobHandler, type JobOutcome } from './handler';
import type { JobQueue, QueueMessage } from './queue';
import { JobState } from './state';
import type { Job, JobError, JobsStore } from './store';
import { transientCode } from './transient-errors';

export interface RunnerOptions {
  concurrency: number;
  heartbeatMs: number;
  staleMs: number;
  progressIntervalMs: number;
  /** Called with a job's terminal row once its transaction committed (metrics). */
  onJobEnd?: (job: Job) => void;
  /** First delay before an attempt that hit a transient fault runs again; doubles per attempt. */
  retryDelayMs: number;
}

/** Longest delay between attempts after transient faults. */
const MAX_RETRY_DELAY_MS = 5 * 60_000;

/** How long the reaper waits for a stale worker's database session to exit once told to. */
const TERMINATE_WAIT_MS = 5000;

/**
 * Claims delivered jobs, runs their handlers with heartbeats, and writes exactly one terminal
 * state per job. Also reaps RUNNING jobs whose worker vanished (SIGKILL, crash, network loss).
 */
export class JobRunner {
  readonly workerId = `${os.hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  private readonly handlers = new HandlerRegistry();
  private readonly running = new Map<string, JobContext<unknown>>();
  private reaper?: NodeJS.Timeout;
  private stopping = false;

  constructor(
    private readonly store: JobsStore,
    private readonly queue: JobQueue,
    private readonly log: Logger,
    private readonly opts: RunnerOptions,
  ) {}

  register<I>(handler: JobHandler<I>): void {
    this.handlers.register(handler);
  }

  async start(): Promise<void> {
    await this.queue.work(this.opts.concurrency, (m) => this.handle(m));
    const every = Math.max(250, Math.floor(this.opts.staleMs / 3));
    this.reaper = setInterval(() => {
      this.reap().catch((err) => this.log.error({ err }, 'job reaper failed'));
    }, every);
    this.reaper.unref();
    this.log.info({ workerId: this.workerId, types: this.handlers.types }, 'job workers started');
  }

  /** A cancel request for a job running in this process: stop it now rather than at the next heartbeat. */
  cancelLocal(jobId: string): void {
    this.running.get(jobId)?.stop('cancelled');
  }

  /** Running jobs go back to QUEUED at their next checkpoint, for another worker to finish. */
  async stop(timeoutMs: number): Promise<void> {
    this.stopping = true;
    if (this.reaper) clearInterval(this.reaper);
    for (const ctx of this.running.values()) ctx.stop('shutdown');
    await this.queue.stop(timeoutMs);
  }

  private async handle({ jobId }: QueueMessage): Promise<void> {
    if (this.stopping) return;
    // A failed claim throws: pg-boss redelivers the message later (the job is still QUEUED).
    const claimed = await this.claim(jobId);
    if (!claimed) return;
    try {
      await this.runClaimed(claimed);
    } catch (err) {
      // The job is ours now: its heartbeat has stopped, so the reaper re-queues it if this
      // worker could not store its outcome. The message must not be redelivered.
      this.log.error({ err, jobId }, 'could not store the outcome of a job; the reaper will re-queue it');
    }
  }

  private async runClaimed(claimed: Job): Promise<void> {
    const jobId = claimed.id;
    const handler = this.handlers.get(claimed.type);
    const log = this.log.child({ jobId, type: claimed.type, attempt: claimed.attempt });
    if (!handler) {
      await this.finish(claimed.id, claimed.attempt, {
        state: JobState.FAILED,
        error: { code: JobErrorCode.UNKNOWN_JOB_TYPE, message: `No worker handles jobs of type ${JSON.stringify(claimed.type)}` },
      });
      return;
    }
    let ctx: JobContext<unknown> | undefined;
    const heartbeat = setInterval(() => {
      this.store.heartbeat(claimed.id, claimed.attempt).then(
        ({ alive, cancelRequested }) => {
          if (!alive) ctx?.stop('fenced');
          else if (cancelRequested) ctx?.stop('cancelled');
        },
        (err) => log.warn({ err }, 'heartbeat failed'),
      );
    }, this.opts.heartbeatMs);
    heartbeat.unref();
    log.info({ workerId: this.workerId }, 'job started');
    try {
      const input = handler.parseInput(claimed.input);
      ctx = new JobContext(claimed, input, log, this.store, this.opts.progressIntervalMs);
      this.running.set(claimed.id, ctx);
      if (claimed.cancelRequestedAt) ctx.stop('cancelled');
      if (this.stopping) ctx.stop('shutdown');
      const outcome = await handler.run(ctx);
      await ctx.settled();
      // A stop that arrived after the handler's last checkpoint does not undo a finished result.
      await this.finish(claimed.id, claimed.attempt, { ...outcome, counters: { ...ctx.takePending(), ...outcome.counters } });
    } catch (err) {
      await ctx?.settled();
      await this.fail(claimed, err, log, ctx);
    } finally {
      clearInterval(heartbeat);
      this.running.delete(claimed.id);
    }
  }

  private async fail(job: Job, err: unknown, log: Logger, ctx?: JobContext<unknown>): Promise<void> {
    const transient = err instanceof JobFailure ? undefined : transientCode(err);
    // A fenced-out attempt is over whatever it failed with (its session may have been ended by
    // the reaper); a stop also explains an abort or a connection it made us drop.
    const stop =
      err instanceof JobStopped
        ? err.reason
        : ctx?.stopped && (ctx.stopped === 'fenced' || (ctx.signal.aborted && (isAbort(err) || transient)))
          ? ctx.stopped
          : undefined;
    if (stop === 'fenced') {
      log.warn('job was reassigned while this worker ran it; its writes were refused');
      return;
    }
    if (stop === 'shutdown') {
      await this.requeue(job.id, job.attempt, log);
      return;
    }
    if (stop === 'cancelled') {
      await this.finishAs(job.id, job.attempt, JobState.CANCELLED, { counters: ctx?.takePending() });
      log.info('job cancelled');
      return;
    }
    if (transient) {
      if (job.attempt < job.maxAttempts) {
        const delayMs = Math.min(MAX_RETRY_DELAY_MS, this.opts.retryDelayMs * 2 ** (job.attempt - 1));
        log.warn({ err, code: transient, delayMs }, 'transient database fault; the job runs again');
        await this.requeue(job.id, job.attempt, log, delayMs);
        return;
      }
      log.error({ err, code: transient }, 'transient database fault on the last attempt');
      await this.finish(job.id, job.attempt, {
        state: JobState.FAILED,
        error: { code: JobErrorCode.TRANSIENT_FAILURE, message: `A transient database fault (${transient}) ended each of the ${job.maxAttempts} attempts` },
        counters: ctx?.takePending(),
      });
      return;
    }
    let error: JobError;
    if (err instanceof JobFailure) {
      error = { code: err.code, message: err.message };
    } else {
      log.error({ err }, 'job failed unexpectedly');
      error = { code: JobErrorCode.INTERNAL_ERROR, message: 'The job failed unexpectedly; the server log has details' };
    }
    await this.finish(job.id, job.attempt, { state: JobState.FAILED, error, counters: ctx?.takePending() });
  }

  /** QUEUED -> RUNNING with attempt + 1, unless the job was cancelled, finished or claimed already. */
  private async claim(jobId: string): Promise<Job | undefined> {
    return this.store.begin(async (tx) => {
      const job = await this.store.getForUpdate(tx, jobId);
      // Duplicate or stale delivery: someone else has it or it is over.
      if (!job || job.state !== JobState.QUEUED) return undefined;
      if (job.cancelRequestedAt) {
        await this.store.transition(tx, job, JobState.CANCELLED);
        return undefined;
      }
      return this.store.transition(tx, job, JobState.RUNNING, { claim: true, workerId: this.workerId });
    });
  }

  private finish(jobId: string, attempt: number, outcome: JobOutcome): Promise<void> {
    return this.finishAs(jobId, attempt, outcome.state, outcome);
  }

  /** The one terminal write, fenced on attempt: a stale worker's result is dropped. */
  private async finishAs(jobId: string, attempt: number, state: JobState, o: Partial<JobOutcome>): Promise<void> {
    const ended = await this.store.begin(async (tx) => {
      const job = await this.store.getForUpdate(tx, jobId);
      if (!job || job.state !== JobState.RUNNING || job.attempt !== attempt) {
        this.log.warn({ jobId, attempt, state: job?.state, current: job?.attempt }, 'dropping the result of a fenced-out attempt');
        return undefined;
      }
      const done = await this.store.transition(tx, job, state, { ...(o.counters ?? {}), result: o.result, error: o.error, workerId: null });
      this.log.info({ jobId, attempt, state, error: o.error?.code }, 'job finished');
      return done;
    });
    if (ended) this.opts.onJobEnd?.(ended);
  }

  private async requeue(jobId: string, attempt: number, log: Logger, delayMs = 0): Promise<void> {
    const done = await this.store.begin(async (tx) => {
      const job = await this.store.getForUpdate(tx, jobId);
      if (!job || job.state !== JobState.RUNNING || job.attempt !== attempt) return false;
      await this.store.transition(tx, job, JobState.QUEUED, { workerId: null });
      await this.queue.enqueue(tx, jobId, delayMs);
      return true;
    });
    if (done) log.info({ delayMs }, 'job returned to the queue');
    else log.warn('job was reassigned while this worker ran it; not re-queued');
  }

  /** Re-queues (or fails, past maxAttempts) RUNNING jobs whose worker stopped heartbeating. */
  async reap(): Promise<number> {
    const ended: Job[] = [];
    const count = await this.store.begin(async (tx) => {
      const stale = await this.store.lockStale(tx, this.opts.staleMs);
      let reaped = 0;
      for (const job of stale) {
        // The fence is held by the stale worker's open data transaction: the worker is frozen or
        // its link is half-open (a live worker heartbeats beside its transaction). End that
        // session: its transaction rolls back and the lock is free. Without this a frozen
        // process, or a connection no one resets, would hold the job for as long as it lasts.
        if (!(await this.store.tryLockFence(tx, job.id))) {
          const ended = await this.store.terminateFenceHolders(tx, job.id, TERMINATE_WAIT_MS);
          if (ended.length)
            this.log.warn(
              { jobId: job.id, attempt: job.attempt, lostWorker: job.workerId, pids: ended },
              "ended a stale worker's database session holding the job's fence",
            );
          if (!(await this.store.tryLockFence(tx, job.id))) continue;
        }
        reaped++;
        if (job.attempt >= job.maxAttempts) {
          const failed = await this.store.transition(tx, job, JobState.FAILED, {
            workerId: null,
            error: { code: JobErrorCode.WORKER_LOST, message: `The worker running this job was lost ${job.attempt} times (maxAttempts ${job.maxAttempts})` },
          });
          ended.push(failed);
        } else {
          await this.store.transition(tx, job, JobState.QUEUED, { workerId: null });
          await this.queue.enqueue(tx, job.id);
        }
        this.log.warn({ jobId: job.id, attempt: job.attempt, lostWorker: job.workerId }, 'reaped a job whose worker was lost');
      }
      return reaped;
    });
    for (const job of ended) this.opts.onJobEnd?.(job);
    return count;
  }
}

function isAbort(err: unknown): boolean {
  return err instanceof Error && (err.name === 'AbortError' || err instanceof JobStopped);
}
