import { sql } from 'drizzle-orm';
import { bigint, index, integer, jsonb, pgEnum, pgTable, primaryKey, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import type { JobState } from '../../jobs/state';

/** A failed job's error (jobs.error; the code is one of JOB_ERROR_CODES or a handler's). */
export interface JobError {
  code: string;
  message: string;
}

/** A job's progress counters. */
export interface Counters {
  total?: number | null;
  processed?: number;
  succeeded?: number;
  failed?: number;
  bytesTotal?: number | null;
  bytesProcessed?: number;
}

export interface EventPayload extends Required<Counters> {
  error: JobError | null;
}

export const jobStateEnum = pgEnum('job_state', ['QUEUED', 'RUNNING', 'SUCCEEDED', 'SUCCEEDED_WITH_ERRORS', 'FAILED', 'CANCELLED']);

/**
 * The job a client sees. pg-boss only delivers "run job <id>"; this row is the truth, and every
 * write to it from a worker is fenced on (state = RUNNING, attempt = the worker's attempt).
 */
export const jobs = pgTable(
  'jobs',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    type: text('type').notNull(),
    state: jobStateEnum('state').notNull().default('QUEUED').$type<JobState>(),
    /** Incremented each time a worker claims the job; the fencing token. */
    attempt: integer('attempt').notNull().default(0),
    maxAttempts: integer('max_attempts').notNull().default(3),
    input: jsonb('input').notNull().default(sql`'{}'::jsonb`),
    result: jsonb('result'),
    /** `{ code, message }` of the failure or the errors summary. */
    error: jsonb('error').$type<JobError>(),
    total: bigint('total', { mode: 'number' }),
    processed: bigint('processed', { mode: 'number' }).notNull().default(0),
    succeeded: bigint('succeeded', { mode: 'number' }).notNull().default(0),
    failed: bigint('failed', { mode: 'number' }).notNull().default(0),
    bytesTotal: bigint('bytes_total', { mode: 'number' }),
    bytesProcessed: bigint('bytes_processed', { mode: 'number' }).notNull().default(0),
    /** Sequence number of the newest job_events row. */
    lastSeq: integer('last_seq').notNull().default(0),
    createdBy: text('created_by').notNull(),
    idempotencyKey: text('idempotency_key'),
    workerId: text('worker_id'),
    heartbeatAt: timestamp('heartbeat_at', { withTimezone: true }),
    cancelRequestedAt: timestamp('cancel_requested_at', { withTimezone: true }),
    /** Milliseconds, as JavaScript dates and list cursors carry them: a cursor then names a row exactly. */
    createdAt: timestamp('created_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
    startedAt: timestamp('started_at', { withTimezone: true }),
    finishedAt: timestamp('finished_at', { withTimezone: true }),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index('jobs_created_by_created_at_idx').on(t.createdBy, t.createdAt.desc(), t.id.desc()),
    index('jobs_created_at_idx').on(t.createdAt.desc(), t.id.desc()),
    index('jobs_running_heartbeat_idx').on(t.heartbeatAt).where(sql`${t.state} = 'RUNNING'`),
    // The metrics gauge counts jobs not yet ended at every scrape; this keeps it off the job history.
    index('jobs_active_state_type_idx').on(t.state, t.type).where(sql`${t.state} in ('QUEUED', 'RUNNING')`),
    uniqueIndex('jobs_idempotency_idx').on(t.createdBy, t.type, t.idempotencyKey),
  ],
);

/** Every transition and progress step, numbered per job (1, 2, 3, ...). */
export const jobEvents = pgTable(
  'job_events',
  {
    jobId: uuid('job_id')
      .notNull()
      .references(() => jobs.id, { onDelete: 'cascade' }),
    seq: integer('seq').notNull(),
    /** STATE (a transition) or PROGRESS. */
    kind: text('kind').$type<'STATE' | 'PROGRESS'>().notNull(),
    state: jobStateEnum('state').$type<JobState>().notNull(),
    attempt: integer('attempt').notNull(),
    /** Counters and error as of this event. */
    payload: jsonb('payload').$type<EventPayload>().notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.jobId, t.seq] })],
);

export type JobRow = typeof jobs.$inferSelect;
export type JobEventRow = typeof jobEvents.$inferSelect;
