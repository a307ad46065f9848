import type postgres from 'postgres';
import type { Sql } from '../../db/client';
import { decoder } from '../../db/rows';
import { webhookDeliveries, webhookEvents, webhooks } from '../../db/schema';
import type { Tx } from '../../db/tx';

/** A webhooks row. */
export type WebhookRecord = typeof webhooks.$inferSelect;

import type { EventState } from '../../db/schema/webhooks';

export type { EventState };

type WebhookEventRow = typeof webhookEvents.$inferSelect;

/** An event with what its delivery needs. */
export type PendingEvent = Pick<WebhookEventRow, 'id' | 'webhookId' | 'type' | 'payload' | 'state' | 'attempts'> &
  Pick<WebhookRecord, 'url' | 'secretCiphertext'>;

/** Columns of the webhook's row joined to an event. */
type PendingEventExtras = { url: string; secret_ciphertext: string };

/** An attempt with its event's type, job and current state. */
export type DeliveryRecord = typeof webhookDeliveries.$inferSelect & { eventType: string; jobId: string; eventState: EventState };

/** Columns of the event joined to an attempt. */
type DeliveryExtras = { event_type: string; job_id: string; event_state: EventState };

const decodeWebhook = decoder(webhooks);
const decodeEvent = decoder(webhookEvents);
const decodeDelivery = decoder(webhookDeliveries);

/** SQL for webhooks, their outbox events and delivery attempts. */
export class WebhooksStore {
  constructor(private readonly sql: Sql) {}

  async insert(v: Omit<WebhookRecord, 'createdAt'>, maxPerClient: number): Promise<WebhookRecord | undefined> {
    return this.sql.begin(async (tx) => {
      // Serialises creations per client so two at once cannot both pass the count.
      await tx`select pg_advisory_xact_lock(7284, hashtext(${v.clientId}))`;
      const [count] = await tx<{ n: number }[]>`select count(*)::int as n from webhooks where client_id = ${v.clientId}`;
      if (count!.n >= maxPerClient) return undefined;
      const [row] = await tx`
        insert into webhooks (id, client_id, url, events, description, all_jobs, secret_ciphertext)
        values (${v.id}, ${v.clientId}, ${v.url}, ${v.events}, ${v.description}, ${v.allJobs}, ${v.secretCiphertext})
        returning *`;
      return decodeWebhook(row!);
    }) as Promise<WebhookRecord | undefined>;
  }

  async get(id: string): Promise<WebhookRecord | undefined> {
    const [row] = await this.sql`select * from webhooks where id = ${id}`;
    return row ? decodeWebhook(row) : undefined;
  }

  /** Newest first; every client's when `clientId` is undefined. */
  async list(clientId: string | undefined, limit: number): Promise<WebhookRecord[]> {
    const rows = clientId
      ? await this.sql`select * from webhooks where client_id = ${clientId} order by created_at desc, id desc limit ${limit}`
      : await this.sql`select * from webhooks order by created_at desc, id desc limit ${limit}`;
    return rows.map(decodeWebhook);
  }

  async delete(id: string): Promise<boolean> {
    const rows = await this.sql`delete from webhooks where id = ${id} returning id`;
    return rows.length > 0;
  }

  /**
   * Webhooks that receive `type` for a job of `jobOwner`: the owner's own, and those of ADMIN
   * clients created with allJobs. Roles and revocation are read now, not at creation, so a client
   * that loses ADMIN (or is revoked) stops receiving at once.
   */
  async matching(tx: Tx, jobOwner: string, type: string): Promise<Array<{ id: string }>> {
    const rows = await tx<{ id: string }[]>`
      select w.id from webhooks w
      join api_clients c on c.client_id = w.client_id and c.revoked_at is null
      where ${type} = any(w.events)
        and (w.client_id = ${jobOwner} or (w.all_jobs and 'ADMIN' = any(c.roles)))`;
    return rows.map((r) => ({ id: r.id }));
  }

  async insertEvent(tx: Tx, v: { id: string; webhookId: string; jobId: string; seq: number; type: string; payload: unknown }): Promise<boolean> {
    const rows = await tx`
      insert into webhook_events (id, webhook_id, job_id, seq, type, payload)
      values (${v.id}, ${v.webhookId}, ${v.jobId}, ${v.seq}, ${v.type}, ${tx.json(v.payload as postgres.JSONValue)})
      on conflict (webhook_id, job_id, seq) do nothing
      returning id`;
    return rows.length > 0;
  }

  async pendingEvent(id: string): Promise<PendingEvent | undefined> {
    const [r] = await this.sql<PendingEventExtras[]>`
      select e.id, e.webhook_id, e.type, e.payload, e.state, e.attempts, w.url, w.secret_ciphertext
      from webhook_events e join webhooks w on w.id = e.webhook_id
      where e.id = ${id}`;
    if (!r) return undefined;
    return { ...decodeEvent(r), url: r.url, secretCiphertext: r.secret_ciphertext };
  }

  /**
   * Stores one attempt and the event's new state together. The attempt number comes from the
   * row's counter, so two overlapping attempts (a message redelivered after expiry) never share one.
   */
  async recordAttempt(
    eventId: string,
    webhookId: string,
    maxAttempts: number,
    o: {
      ok: boolean;
      permanent: boolean;
      statusCode: number | null;
      durationMs: number;
      errorCode: string | null;
      errorMessage: string | null;
      responseBody: string | null;
    },
  ): Promise<{ attempt: number; state: EventState } | undefined> {
    return this.sql.begin(async (tx) => {
      const [ev] = await tx`
        update webhook_events set attempts = attempts + 1,
          state = case when ${o.ok} then 'DELIVERED' when ${o.permanent} or attempts + 1 >= ${maxAttempts} then 'FAILED' else state end,
          delivered_at = case when ${o.ok} then now() else delivered_at end
        where id = ${eventId} and state = 'PENDING'
        returning attempts, state`;
      if (!ev) return undefined;
      const { attempts: attempt, state } = decodeEvent(ev);
      await tx`
        insert into webhook_deliveries (event_id, webhook_id, attempt, ok, status_code, duration_ms, error_code, error_message, response_body)
        values (${eventId}, ${webhookId}, ${attempt}, ${o.ok}, ${o.statusCode}, ${o.durationMs}, ${o.errorCode}, ${o.errorMessage}, ${o.responseBody})`;
      return { attempt, state };
    }) as Promise<{ attempt: number; state: EventState } | undefined>;
  }

  /** Attempts of a webhook's events, newest first. */
  async deliveries(webhookId: string, limit: number): Promise<DeliveryRecord[]> {
    const rows = await this.sql<DeliveryExtras[]>`
      select d.*, e.type as event_type, e.job_id, e.state as event_state
      from webhook_deliveries d join webhook_events e on e.id = d.event_id
      where d.webhook_id = ${webhookId}
      order by d.created_at desc, d.attempt desc
      limit ${limit}`;
    return rows.map((r) => ({ ...decodeDelivery(r), eventType: r.event_type, jobId: r.job_id, eventState: r.event_state }));
  }

  /**
   * Deletes up to `batch` settled events (DELIVERED or FAILED) created before `cutoff`, with their
   * attempts (cascade); returns how many. PENDING events are kept whatever their age. Rows another
   * sweep holds are skipped, so two processes sweeping at once do not wait on each other.
   */
  async deleteSettledBefore(cutoff: Date, batch: number): Promise<number> {
    const rows = await this.sql`
      delete from webhook_events where id in (
        select id from webhook_events
        where state <> 'PENDING' and created_at < ${cutoff}
        order by created_at
        limit ${batch}
        for update skip locked)
      returning id`;
    return rows.length;
  }
}
