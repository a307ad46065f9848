import { sql } from 'drizzle-orm';
import { boolean, index, integer, jsonb, pgTable, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core';

/** Where a webhook event's delivery stands. */
export type EventState = 'PENDING' | 'DELIVERED' | 'FAILED';

/**
 * A client's HTTPS endpoint for job transitions. The signing secret must be readable to sign, so
 * it cannot be hashed: it is stored AES-256-GCM encrypted under a key that lives outside the
 * database (SLUICE_WEBHOOK_SECRET_KEY, or one derived from the JWT secret), so a database dump
 * alone does not let anyone forge deliveries.
 */
export const webhooks = pgTable(
  'webhooks',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    /** The client that created it; it fires for that client's jobs. */
    clientId: text('client_id').notNull(),
    url: text('url').notNull(),
    /** Job event types (JOB_SUCCEEDED, ...) it receives. */
    events: text('events').array().notNull(),
    description: text('description'),
    /** Every client's jobs, not only its owner's; only while the owner holds ADMIN. */
    allJobs: boolean('all_jobs').notNull().default(false),
    /** `v1.<iv b64url>.<ciphertext+tag b64url>`. */
    secretCiphertext: text('secret_ciphertext').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
  },
  (t) => [index('webhooks_client_idx').on(t.clientId, t.createdAt.desc())],
);

/**
 * One job transition for one webhook: the outbox row, written in the transition's transaction.
 * Its id is the `Sluice-Event-Id` header, the same on every attempt; the body is fixed here.
 */
export const webhookEvents = pgTable(
  'webhook_events',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    webhookId: uuid('webhook_id')
      .notNull()
      .references(() => webhooks.id, { onDelete: 'cascade' }),
    jobId: uuid('job_id').notNull(),
    seq: integer('seq').notNull(),
    type: text('type').notNull(),
    payload: jsonb('payload').notNull(),
    /** PENDING, DELIVERED or FAILED (attempts used up, or a permanent refusal). */
    state: text('state').notNull().default('PENDING').$type<EventState>(),
    attempts: integer('attempts').notNull().default(0),
    createdAt: timestamp('created_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
    deliveredAt: timestamp('delivered_at', { withTimezone: true }),
  },
  (t) => [
    uniqueIndex('webhook_events_once_idx').on(t.webhookId, t.jobId, t.seq),
    index('webhook_events_webhook_idx').on(t.webhookId, t.createdAt.desc()),
    // The history sweep: settled events by age (PENDING ones are never swept).
    index('webhook_events_settled_idx').on(t.createdAt).where(sql`${t.state} <> 'PENDING'`),
  ],
);

/** Every delivery attempt of an event: what was sent when, and what came back. */
export const webhookDeliveries = pgTable(
  'webhook_deliveries',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    eventId: uuid('event_id')
      .notNull()
      .references(() => webhookEvents.id, { onDelete: 'cascade' }),
    webhookId: uuid('webhook_id').notNull(),
    attempt: integer('attempt').notNull(),
    ok: boolean('ok').notNull(),
    statusCode: integer('status_code'),
    durationMs: integer('duration_ms').notNull(),
    errorCode: text('error_code'),
    errorMessage: text('error_message'),
    /** The first SLUICE_WEBHOOK_RESPONSE_MAX_BYTES of the response body, as text. */
    responseBody: text('response_body'),
    createdAt: timestamp('created_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
  },
  (t) => [index('webhook_deliveries_webhook_idx').on(t.webhookId, t.createdAt.desc()), index('webhook_deliveries_event_idx').on(t.eventId)],
);
