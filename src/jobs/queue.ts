import PgBoss from 'pg-boss';
import { noAnswerMs, type DbTimeouts } from '../db/client';
import type { Tx } from '../db/tx';
import type { Logger } from '../shared/logger';

/** The single pg-boss queue. Its messages only say "run job <id>"; the jobs table is the truth. */
export const QUEUE_NAME = 'sluice-jobs';
export const BOSS_SCHEMA = 'pgboss';

export interface QueueMessage {
  jobId: string;
}

/** pg-boss `db` adapter over a postgres.js transaction, so enqueueing commits with the job row. */
function txAdapter(tx: Tx): PgBoss.Db {
  return {
    async executeSql(text, values) {
      // postgres.js does not serialise plain objects as JSON by itself; node-postgres does.
      // node-postgres sends undefined as NULL; postgres.js refuses it. Objects are serialised by
      // postgres.js itself from the parameter types the server describes (jsonb for job data).
      const params = values.map((v) => (v === undefined ? null : v));
      const rows = await tx.unsafe(text, params as never[]);
      return { rows: [...rows] };
    },
  };
}

export interface JobQueueOptions {
  databaseUrl: string;
  /** Maintenance (expiry, archiving) runs in worker processes only. */
  supervise: boolean;
  pollIntervalMs: number;
  log: Logger;
  /** Bounds on pg-boss's own pool (node-postgres), as on Sluice's pools. */
  timeouts?: DbTimeouts;
}

/** Redeliveries of a message whose handler failed before claiming its job (the database was unreachable). */
const MESSAGE_RETRY_LIMIT = 8;

/** node-postgres pool options for the same bounds as src/db/client.ts gives postgres.js. */
function pgPoolOptions(t: DbTimeouts): Record<string, unknown> {
  const keepAliveS = Math.max(1, Math.round(t.keepAliveMs / 1000));
  return {
    connectionTimeoutMillis: t.connectMs,
    idleTimeoutMillis: t.idleMs,
    maxLifetimeSeconds: Math.round(t.maxLifetimeMs / 1000),
    keepAlive: true,
    keepAliveInitialDelayMillis: t.keepAliveMs,
    statement_timeout: t.statementMs,
    idle_in_transaction_session_timeout: t.idleInTransactionMs,
    // Client side: a query unanswered past the server's own timeout is on a half-open link; the
    // pool then discards its client instead of waiting on it for good.
    query_timeout: noAnswerMs(t),
    options: `-c tcp_keepalives_idle=${keepAliveS} -c tcp_keepalives_interval=${Math.max(1, Math.ceil(keepAliveS / 3))} -c tcp_keepalives_count=3`,
  };
}

/** pg-boss, started once per process. Returns dispose() via stop(). */
export class JobQueue {
  private constructor(
    private readonly boss: PgBoss,
    private readonly opts: JobQueueOptions,
  ) {}

  static async start(opts: JobQueueOptions): Promise<JobQueue> {
    const boss = new PgBoss({
      connectionString: opts.databaseUrl,
      schema: BOSS_SCHEMA,
      max: 4,
      application_name: 'sluice-pgboss',
      supervise: opts.supervise,
      schedule: false,
      migrate: true,
      ...(opts.timeouts ? pgPoolOptions(opts.timeouts) : {}),
    } as PgBoss.ConstructorOptions);
    boss.on('error', (err) => opts.log.error({ err }, 'pg-boss error'));
    await boss.start();
    if (!(await boss.getQueue(QUEUE_NAME))) {
      try {
        // No pg-boss retries by default: a lost or failed attempt is re-queued by Sluice itself, fenced.
        await boss.createQueue(QUEUE_NAME, { name: QUEUE_NAME, retryLimit: 0, expireInSeconds: 12 * 3600 });
      } catch (err) {
        // Another process created it between our check and our insert.
        if (!(await boss.getQueue(QUEUE_NAME))) throw err;
      }
    }
    return new JobQueue(boss, opts);
  }

  /**
   * Enqueues inside `tx`: the message exists if and only if the transaction commits. It is
   * delivered after `delayMs` (rounded up to seconds). pg-boss redelivers it only when the
   * handler failed before claiming the job: claims are idempotent, so a redelivery is harmless.
   */
  async enqueue(tx: Tx, jobId: string, delayMs = 0): Promise<void> {
    const message: QueueMessage = { jobId };
    await this.boss.send(QUEUE_NAME, message as unknown as object, {
      db: txAdapter(tx),
      retryLimit: MESSAGE_RETRY_LIMIT,
      retryDelay: 1,
      retryBackoff: true,
      ...(delayMs > 0 ? { startAfter: Math.ceil(delayMs / 1000) } : {}),
    });
  }

  /**
   * Another queue in the same pg-boss (e.g. webhook deliveries), whose failed messages pg-boss
   * retries itself: `retryLimit` times, `retryDelaySeconds` apart, doubling when `retryBackoff`.
   */
  async ensureQueue(name: string, opts: { retryLimit: number; retryDelaySeconds: number; retryBackoff: boolean; expireInSeconds: number }): Promise<void> {
    const options = {
      name,
      retryLimit: opts.retryLimit,
      retryDelay: opts.retryDelaySeconds,
      retryBackoff: opts.retryBackoff,
      expireInSeconds: opts.expireInSeconds,
    };
    if (await this.boss.getQueue(name)) {
      // Settings may have changed since the queue was created; new messages take the queue's values.
      await this.boss.updateQueue(name, options);
      return;
    }
    try {
      await this.boss.createQueue(name, options);
    } catch (err) {
      if (!(await this.boss.getQueue(name))) throw err;
    }
  }

  /** Sends `data` to queue `name` inside `tx`: the message exists if and only if the transaction commits. */
  async sendIn(tx: Tx, name: string, data: object): Promise<void> {
    await this.boss.send(name, data, { db: txAdapter(tx) });
  }

  /** `concurrency` pollers of queue `name`; a handler that throws fails the message (pg-boss retries it). */
  async workOn<T extends object>(name: string, concurrency: number, handler: (data: T) => Promise<void>): Promise<void> {
    for (let i = 0; i < concurrency; i++) {
      const id = await this.boss.work<T>(name, { batchSize: 1, pollingIntervalSeconds: Math.max(0.5, this.opts.pollIntervalMs / 1000) }, async ([job]) => {
        if (job) await handler(job.data);
      });
      this.otherWorkerIds.push(id);
    }
  }

  /** Makes idle pollers of the other queues fetch now. */
  wakeOthers(): void {
    for (const id of this.otherWorkerIds) this.boss.notifyWorker(id);
  }

  private readonly otherWorkerIds: string[] = [];

  /** Starts `concurrency` pollers, each handling one message at a time. */
  async work(concurrency: number, handler: (message: QueueMessage) => Promise<void>): Promise<void> {
    for (let i = 0; i < concurrency; i++) {
      const id = await this.boss.work<QueueMessage>(
        QUEUE_NAME,
        { batchSize: 1, pollingIntervalSeconds: Math.max(0.5, this.opts.pollIntervalMs / 1000) },
        async ([job]) => {
          if (job) await handler(job.data);
        },
      );
      this.workerIds.push(id);
    }
  }

  /** Makes idle local pollers fetch now instead of at their next poll (a job was just queued). */
  wake(): void {
    for (const id of this.workerIds) this.boss.notifyWorker(id);
  }

  private readonly workerIds: string[] = [];

  /** Stops polling and waits up to `timeoutMs` for running handlers, then closes the pool. */
  stop(timeoutMs: number): Promise<void> {
    this.stopping ??= this.boss.stop({ graceful: true, timeout: Math.max(1000, timeoutMs), wait: true, close: true });
    return this.stopping;
  }

  private stopping?: Promise<void>;
}
