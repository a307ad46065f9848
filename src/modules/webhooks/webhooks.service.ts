import dns from 'node:dns/promises';
import net from 'node:net';
import { randomUUID } from 'node:crypto';
import type { Viewer } from '../../shared/auth';
import { isPrivateAddress } from '../../shared/address-guard';
import { isUuid } from '../../shared/cursor';
import { BadInputError, ConflictError, ForbiddenError, NotFoundError } from '../../shared/errors';
import type { Logger } from '../../shared/logger';
import { hasRole, Role } from '../../shared/roles';
import type { JobQueue } from '../../jobs/queue';
import { JobState } from '../../jobs/state';
import type { Tx } from '../../db/tx';
import type { Job } from '../../jobs/store';
import { literalHostRefusal, PERMANENT_ERRORS, DeliveryErrorCode, sendWebhook, type SendOutcome } from './webhook-sender';
import { EVENT_ID_HEADER, EVENT_TYPE_HEADER, generateSigningSecret, SecretBox, SIGNATURE_HEADER, signatureHeader } from './webhook-signature';
import type { DeliveryRecord, WebhookRecord, WebhooksStore } from './webhooks.store';
export type { DeliveryRecord, WebhookRecord } from './webhooks.store';

export const WEBHOOK_QUEUE = 'sluice-webhooks';
const MAX_URL_LENGTH = 2048;
const MAX_DESCRIPTION_LENGTH = 500;
const MAX_PAGE = 100;

/** `JOB_<state>` for every job state; the terminal four are the default subscription. */
export const WEBHOOK_EVENT_TYPES = Object.values(JobState).map((s) => `JOB_${s}`);
export const DEFAULT_WEBHOOK_EVENTS = ['JOB_SUCCEEDED', 'JOB_SUCCEEDED_WITH_ERRORS', 'JOB_FAILED', 'JOB_CANCELLED'];

export interface WebhooksConfig {
  allowPrivateAddresses: boolean;
  timeoutMs: number;
  maxAttempts: number;
  retryDelaySeconds: number;
  maxResponseBytes: number;
  maxPerClient: number;
  /** Key material for SecretBox. */
  secretKey: string;
  /** Settled events (and their attempts) older than this many days are deleted by sweepHistory. */
  historyDays: number;
}

/** Events one statement of the history sweep deletes (short transactions, bounded locks). */
const HISTORY_SWEEP_BATCH = 1000;

interface DeliveryMessage {
  eventId: string;
}

/** Why createWebhook refused a URL (extensions.reason with BAD_USER_INPUT). */
export enum WebhookUrlReason {
  BAD_URL = 'BAD_URL',
  ADDRESS_REFUSED = 'ADDRESS_REFUSED',
  UNRESOLVABLE = 'UNRESOLVABLE',
}

/**
 * Webhook rules: ownership (a client's own; ADMIN sees and deletes all), the address guard, the
 * outbox (an event row and a pg-boss message written in the job transition's transaction), and
 * signed delivery with retries by pg-boss.
 */
export class WebhooksService {
  private readonly box: SecretBox;

  constructor(
    private readonly store: WebhooksStore,
    private readonly queue: JobQueue,
    private readonly log: Logger,
    private readonly config: WebhooksConfig,
  ) {
    this.box = new SecretBox(config.secretKey);
  }

  /**
   * Deletes the delivery history (webhook_events DELIVERED or FAILED, with their attempts) older
   * than `historyDays`, in batches; events still PENDING are kept. Without it every job
   * transition would leave rows (and up to SLUICE_WEBHOOK_RESPONSE_MAX_BYTES of response per
   * attempt) for good. Returns how many events were deleted.
   */
  async sweepHistory(now = new Date()): Promise<number> {
    const cutoff = new Date(now.getTime() - this.config.historyDays * 86_400_000);
    let total = 0;
    for (;;) {
      const n = await this.store.deleteSettledBefore(cutoff, HISTORY_SWEEP_BATCH);
      total += n;
      if (n < HISTORY_SWEEP_BATCH) break;
    }
    if (total > 0) this.log.info({ events: total, before: cutoff.toISOString() }, 'webhook delivery history swept');
    return total;
  }

  /** Creates the delivery queue (every role sends to it). */
  async start(): Promise<void> {
    await this.queue.ensureQueue(WEBHOOK_QUEUE, {
      // A few beyond maxAttempts: an attempt lost to a crash is redelivered but never recorded, and
      // Sluice's own counter (not pg-boss's) decides when an event is given up.
      retryLimit: this.config.maxAttempts + 2,
      retryDelaySeconds: this.config.retryDelaySeconds,
      retryBackoff: true,
      expireInSeconds: Math.ceil(this.config.timeoutMs / 1000) + 60,
    });
  }

  /** Starts delivery pollers (worker roles). */
  async work(concurrency: number): Promise<void> {
    await this.queue.workOn<DeliveryMessage>(WEBHOOK_QUEUE, concurrency, (m) => this.deliver(m.eventId));
  }

  private canSee(viewer: Viewer, w: WebhookRecord): boolean {
    return hasRole(viewer.roles, Role.ADMIN) || w.clientId === viewer.clientId;
  }

  async get(viewer: Viewer, id: string): Promise<WebhookRecord> {
    if (!isUuid(id)) throw new NotFoundError('Webhook', id);
    const w = await this.store.get(id);
    if (!w || !this.canSee(viewer, w)) throw new NotFoundError('Webhook', id);
    return w;
  }

  private async checkUrl(raw: string): Promise<string> {
    const bad = (message: string, reason: WebhookUrlReason) => new BadInputError(message, { field: 'url', reason });
    if (raw.length > MAX_URL_LENGTH) throw bad(`url is ${raw.length} characters, more than the limit of ${MAX_URL_LENGTH}`, WebhookUrlReason.BAD_URL);
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw bad(`url ${JSON.stringify(raw.slice(0, 100))} is not a URL`, WebhookUrlReason.BAD_URL);
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw bad(`url must be http or https, got ${url.protocol}`, WebhookUrlReason.BAD_URL);
    if (url.username || url.password) throw bad('url must not carry credentials; authenticate deliveries by their signature', WebhookUrlReason.BAD_URL);
    if (url.hash) throw bad('url must not have a #fragment', WebhookUrlReason.BAD_URL);
    const allow = this.config.allowPrivateAddresses;
    const literal = literalHostRefusal(url, allow);
    if (literal) throw bad(`url ${literal}; set SLUICE_WEBHOOK_ALLOW_PRIVATE_ADDRESSES=true to allow it`, WebhookUrlReason.ADDRESS_REFUSED);
    const host = url.hostname.replace(/^\[|\]$/g, '');
    if (!net.isIP(host)) {
      // Early feedback only: every delivery checks the address it connects to again.
      let addresses: Array<{ address: string }>;
      try {
        addresses = await dns.lookup(host, { all: true });
      } catch (err) {
        throw bad(`url host ${host} does not resolve (${(err as NodeJS.ErrnoException).code ?? 'error'})`, WebhookUrlReason.UNRESOLVABLE);
      }
      const priv = addresses.find((a) => isPrivateAddress(a.address));
      if (priv && !allow) {
        throw bad(
          `url host ${host} resolves to ${priv.address}, a private or reserved address; set SLUICE_WEBHOOK_ALLOW_PRIVATE_ADDRESSES=true to allow it`,
          WebhookUrlReason.ADDRESS_REFUSED,
        );
      }
    }
    return url.href;
  }

  /** Creates a webhook; the signing secret is returned here and never again. */
  async create(
    viewer: Viewer,
    input: { url: string; events: string[] | null; description: string | null; allJobs: boolean },
  ): Promise<{ webhook: WebhookRecord; secret: string }> {
    if (input.allJobs && !hasRole(viewer.roles, Role.ADMIN))
      throw new ForbiddenError('allJobs needs the ADMIN role: other clients’ jobs are visible to ADMIN only');
    const events = input.events ?? DEFAULT_WEBHOOK_EVENTS;
    if (events.length === 0) throw new BadInputError('events must name at least one event type', { field: 'events' });
    const unknown = events.find((e) => !WEBHOOK_EVENT_TYPES.includes(e));
    if (unknown) throw new BadInputError(`events: unknown event type ${JSON.stringify(unknown)}`, { field: 'events' });
    if (input.description != null && input.description.length > MAX_DESCRIPTION_LENGTH) {
      throw new BadInputError(`description is ${input.description.length} characters, more than the limit of ${MAX_DESCRIPTION_LENGTH}`, {
        field: 'description',
      });
    }
    const url = await this.checkUrl(input.url);
    const id = randomUUID();
    const secret = generateSigningSecret();
    const webhook = await this.store.insert(
      {
        id,
        clientId: viewer.clientId,
        url,
        events: [...new Set(events)],
        description: input.description ?? null,
        allJobs: input.allJobs,
        secretCiphertext: this.box.seal(id, secret),
      },
      this.config.maxPerClient,
    );
    if (!webhook) {
      throw new ConflictError(`A client may have at most ${this.config.maxPerClient} webhooks (SLUICE_WEBHOOK_MAX_PER_CLIENT); delete one first`, {
        limit: this.config.maxPerClient,
      });
    }
    this.log.info({ webhookId: id, by: viewer.clientId, host: new URL(url).host }, 'webhook created');
    return { webhook, secret };
  }

  async list(viewer: Viewer): Promise<WebhookRecord[]> {
    return this.store.list(hasRole(viewer.roles, Role.ADMIN) ? undefined : viewer.clientId, 1000);
  }

  /** Deletes a webhook with its events and attempts; pending deliveries are dropped. */
  async delete(viewer: Viewer, id: string): Promise<WebhookRecord> {
    const w = await this.get(viewer, id);
    await this.store.delete(id);
    this.log.info({ webhookId: id, by: viewer.clientId }, 'webhook deleted');
    return w;
  }

  async deliveries(viewer: Viewer, webhookId: string, first: number): Promise<DeliveryRecord[]> {
    if (!Number.isInteger(first) || first < 1 || first > MAX_PAGE) throw new BadInputError(`first must be 1-${MAX_PAGE}, got ${first}`, { field: 'first' });
    await this.get(viewer, webhookId);
    return this.store.deliveries(webhookId, first);
  }

  /**
   * Outbox: called inside the transaction that stores a job's STATE event. The event rows and their
   * pg-boss messages commit with the transition or not at all, so each transition is delivered at
   * least once, and never for a transition that rolled back.
   */
  async enqueueForTransition(tx: Tx, job: Job): Promise<void> {
    const type = `JOB_${job.state}`;
    const targets = await this.store.matching(tx, job.createdBy, type);
    for (const { id: webhookId } of targets) {
      const id = randomUUID();
      const input = job.input as { fileId?: unknown } | null;
      const payload = {
        id,
        type,
        createdAt: new Date().toISOString(),
        webhookId,
        data: {
          job: {
            id: job.id,
            type: job.type,
            state: job.state,
            seq: job.lastSeq,
            attempt: job.attempt,
            fileId: typeof input?.fileId === 'string' ? input.fileId : null,
            createdBy: job.createdBy,
            total: job.total,
            processed: job.processed,
            succeeded: job.succeeded,
            failed: job.failed,
            error: job.error,
            createdAt: job.createdAt.toISOString(),
            finishedAt: job.finishedAt?.toISOString() ?? null,
          },
        },
      };
      if (await this.store.insertEvent(tx, { id, webhookId, jobId: job.id, seq: job.lastSeq, type, payload })) {
        await this.queue.sendIn(tx, WEBHOOK_QUEUE, { eventId: id } satisfies DeliveryMessage);
      }
    }
  }

  /**
   * One delivery attempt of an event. Throws when the attempt failed and attempts remain, so that
   * pg-boss schedules the next one with backoff; returns when delivered or given up.
   */
  async deliver(eventId: string): Promise<void> {
    const ev = await this.store.pendingEvent(eventId);
    // Deleted webhook, or a redelivered message for an event already settled.
    if (!ev || ev.state !== 'PENDING') return;
    // The body is the stored payload, byte for byte the same on every attempt.
    const body = JSON.stringify(ev.payload);
    const secret = this.box.open(ev.webhookId, ev.secretCiphertext);
    let outcome: SendOutcome;
    if (secret === undefined) {
      outcome = {
        ok: false,
        statusCode: null,
        durationMs: 0,
        errorCode: DeliveryErrorCode.WEBHOOK_SECRET_UNREADABLE,
        errorMessage:
          'The signing secret cannot be decrypted: SLUICE_WEBHOOK_SECRET_KEY (or the JWT secret it defaults to) changed since the webhook was created; create the webhook again',
        responseBody: null,
      };
    } else {
      const t = Math.floor(Date.now() / 1000);
      outcome = await sendWebhook(
        ev.url,
        body,
        { [SIGNATURE_HEADER]: signatureHeader(secret, body, t), [EVENT_ID_HEADER]: ev.id, [EVENT_TYPE_HEADER]: ev.type },
        { timeoutMs: this.config.timeoutMs, maxResponseBytes: this.config.maxResponseBytes, allowPrivateAddresses: this.config.allowPrivateAddresses },
      );
    }
    const permanent = outcome.errorCode !== null && PERMANENT_ERRORS.has(outcome.errorCode);
    const recorded = await this.store.recordAttempt(ev.id, ev.webhookId, this.config.maxAttempts, { ...outcome, permanent });
    if (!recorded) return;
    this.log.info(
      {
        webhookId: ev.webhookId,
        eventId,
        attempt: recorded.attempt,
        ok: outcome.ok,
        status: outcome.statusCode,
        code: outcome.errorCode,
        state: recorded.state,
      },
      'webhook delivery attempt',
    );
    if (recorded.state === 'PENDING') throw new Error(`webhook delivery attempt ${recorded.attempt} failed: ${outcome.errorCode}`);
  }
}
