import type postgres from 'postgres';
import type { Sql } from '../../db/client';
import type { Tx } from '../../db/tx';

export interface WebhookRecord {
  id: string;
  clientId: string;
  url: string;
  events: string[];
  description: string | null;
  allJobs: boolean;
  secretCiphertext: string;
  createdAt: Date;
}

export type EventState = 'PENDING' | 'DELIVERED' | 'FAILED';

/** An event with what its delivery needs. */
export interface PendingEvent {
  id: string;
  webhookId: string;
  type: string;
  payload: unknown;
  state: EventState;
  attempts: number;
  url: string;
  secretCiphertext: string;
}

export interface DeliveryRecord {
  id: string;
  eventId: string;
  eventType: string;
  jobId: string;
  eventState: EventState;
  attempt: number;
  ok: boolean;
  statusCode: number | null;
  durationMs: number;
  errorCode: string | null;
  errorMessage: string | null;
  responseBody: string | null;
  createdAt: Date;
}

type Row = Record<string, unknown>;

function toWebhook(r: Row): WebhookRecord {
  return {
    id: r['id'] as string,
    clientId: r['client_id'] as string,
    url: r['url'] as string,
    events: r['events'] as string[],
    description: (r['description'] as string | null) ?? null,
    allJobs: r['all_jobs'] as boolean,
    secretCiphertext: r['secret_ciphertext'] as string,
    createdAt: r['created_at'] as Date,
  };
}

/** SQL for webhooks, their outbox events and delivery attempts. */
export class WebhooksStore {
  constructor(private readonly sql: Sql) {}

  async insert(v: Omit<WebhookRecord, 'createdAt'>, maxPerClient: number): Promise<WebhookRecord | undefined> {
    return this.sql.begin(async (tx) => {
      // Serialises creations per client so two at once cannot both pass the count.
      await tx`select pg_advisory_xact_lock(7284, hashtext(${v.clientId}))`;
      const [{ n }] = (await tx`select count(*)::int as n from webhooks where client_id = ${v.clientId}`) as unknown as [{ n: number }];
      if (n >= maxPerClient) return undefined;
      const [row] = await tx`
        insert into webhooks (id, client_id, url, events, description, all_jobs, secret_ciphertext)
        values (${v.id}, ${v.clientId}, ${v.url}, ${v.events}, ${v.description}, ${v.allJobs}, ${v.secretCiphertext})
        returning *`;
      return toWebhook(row!);
    }) as Promise<WebhookRecord | undefined>;
  }

  async get(id: string): Promise<WebhookRecord | undefined> {
    const [row] = await this.sql`select * from webhooks where id = ${id}`;
    return row ? toWebhook(row) : undefined;
  }

  /** Newest first; every client's when `clientId` is undefined. */
  async list(clientId: string | undefined, limit: number): Promise<WebhookRecord[]> {
    const rows = clientId
      ? await this.sql`select * from webhooks where client_id = ${clientId} order by created_at desc, id desc limit ${limit}`
      : await this.sql`select * from webhooks order by created_at desc, id desc limit ${limit}`;
    return rows.map(toWebhook);
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
    const rows = await tx`
      select w.id from webhooks w
      join api_clients c on c.client_id = w.client_id and c.revoked_at is null
      where ${type} = any(w.events)
        and (w.client_id = ${jobOwner} or (w.all_jobs and 'ADMIN' = any(c.roles)))`;
    return rows.map((r) => ({ id: r['id'] as string }));
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
    const [r] = await this.sql`
      select e.id, e.webhook_id, e.type, e.payload, e.state, e.attempts, w.url, w.secret_ciphertext
      from webhook_events e join webhooks w on w.id = e.webhook_id
      where e.id = ${id}`;
    if (!r) return undefined;
    return {
      id: r['id'] as string,
      webhookId: r['webhook_id'] as string,
      type: r['type'] as string,
      payload: r['payload'],
      state: r['state'] as EventState,
      attempts: r['attempts'] as number,
      url: r['url'] as string,
      secretCiphertext: r['secret_ciphertext'] as string,
    };
  }

  /**
   * Stores one attempt and the event's new state together. The attempt number comes from the
   * row's counter, so two overlapping attempts (a message redelivered after expiry) never share one.
   */
  async recordAttempt(
    eventId: string,
    webhookId: string,
    maxAttempts: number,
    o: { ok: boolean; permanent: boolean; statusCode: number | null; durationMs: number; errorCode: string | null; errorMessage: string | null; responseBody: string | null },
  ): Promise<{ attempt: number; state: EventState } | undefined> {
    return this.sql.begin(async (tx) => {
      const [ev] = await tx`
        update webhook_events set attempts = attempts + 1,
          state = case when ${o.ok} then 'DELIVERED' when ${o.permanent} or attempts + 1 >= ${maxAttempts} then 'FAILED' else state end,
          delivered_at = case when ${o.ok} then now() else delivered_at end
        where id = ${eventId} and state = 'PENDING'
        returning attempts, state`;
      if (!ev) return undefined;
      const attempt = ev['attempts'] as number;
      await tx`
        insert into webhook_deliveries (event_id, webhook_id, attempt, ok, status_code, duration_ms, error_code, error_message, response_body)
        values (${eventId}, ${webhookId}, ${attempt}, ${o.ok}, ${o.statusCode}, ${o.durationMs}, ${o.errorCode}, ${o.errorMessage}, ${o.responseBody})`;
      return { attempt, state: ev['state'] as EventState };
    }) as Promise<{ attempt: number; state: EventState } | undefined>;
  }

  /** Attempts of a webhook's events, newest first. */
  async deliveries(webhookId: string, limit: number): Promise<DeliveryRecord[]> {
    const rows = await this.sql`
      select d.*, e.type as event_type, e.job_id, e.state as event_state
      from webhook_deliveries d join webhook_events e on e.id = d.event_id
      where d.webhook_id = ${webhookId}
      order by d.created_at desc, d.attempt desc
      limit ${limit}`;
    return rows.map((r) => ({
      id: r['id'] as string,
      eventId: r['event_id'] as string,
      eventType: r['event_type'] as string,
      jobId: r['job_id'] as string,
      eventState: r['event_state'] as EventState,
      attempt: r['attempt'] as number,
      ok: r['ok'] as boolean,
      statusCode: (r['status_code'] as number | null) ?? null,
      durationMs: r['duration_ms'] as number,
      errorCode: (r['error_code'] as string | null) ?? null,
      errorMessage: (r['error_message'] as string | null) ?? null,
      responseBody: (r['response_body'] as string | null) ?? null,
      createdAt: r['created_at'] as Date,
    }));
  }
}
