import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CreateClientDocument,
  CreateWebhookDocument,
  DeleteWebhookDocument,
  IssueTokenDocument,
  RegisterSpecDocument,
  UploadFileDocument,
  WebhookDeliveriesDocument,
  WebhooksDocument,
  type SluiceClient,
  type WebhookDeliveriesQuery,
} from '../../src/sdk/client';
import { codeOf, createTestDatabase, startTestApp, type TestApp } from '../helpers/app';
import { collectJobEvents, FAST_JOBS } from '../helpers/jobs';

/** The receiver-side check, as the README documents it for Node. */
function verifySluiceSignature(secret: string, rawBody: string, header: string, toleranceSeconds = 300): boolean {
  const parts = Object.fromEntries(header.split(',').map((p) => p.split('=')));
  const t = Number(parts.t);
  if (!Number.isInteger(t) || Math.abs(Date.now() / 1000 - t) > toleranceSeconds) return false;
  const expected = crypto.createHmac('sha256', secret).update(`${t}.${rawBody}`).digest('hex');
  const got = Buffer.from(parts.v1 ?? '', 'utf8');
  return got.length === expected.length && crypto.timingSafeEqual(got, Buffer.from(expected, 'utf8'));
}

interface Received {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

type Behaviour = (res: http.ServerResponse) => void;

/** A real HTTP receiver on 127.0.0.1: each path answers with its scripted behaviours in turn, then 200. */
class Receiver {
  readonly received: Received[] = [];
  private readonly scripts = new Map<string, Behaviour[]>();
  private server!: http.Server;
  url = '';

  async start(): Promise<void> {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const path = req.url ?? '/';
        this.received.push({ path, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
        const next = this.scripts.get(path)?.shift();
        if (next) next(res);
        else res.writeHead(200, { 'content-type': 'text/plain' }).end('thanks');
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  script(path: string, ...behaviours: Behaviour[]): string {
    this.scripts.set(path, behaviours);
    return `${this.url}${path}`;
  }

  at(path: string): Received[] {
    return this.received.filter((r) => r.path === path);
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

const spec = {
  program: 'hooks',
  input: {
    type: 'object',
    properties: { school_id: { type: 'string', shouldNotNull: true }, present: { type: 'integer' } },
    required: ['school_id'],
  },
};

const WEBHOOK_ENV = {
  ...FAST_JOBS,
  SLUICE_WEBHOOK_ALLOW_PRIVATE_ADDRESSES: 'true',
  SLUICE_WEBHOOK_RETRY_DELAY_SECONDS: '1',
  SLUICE_WEBHOOK_MAX_ATTEMPTS: '3',
  SLUICE_WEBHOOK_TIMEOUT_MS: '1000',
  SLUICE_WEBHOOK_RESPONSE_MAX_BYTES: '100',
};

let t: TestApp;
const receiver = new Receiver();

beforeAll(async () => {
  await receiver.start();
  t = await startTestApp(WEBHOOK_ENV);
  await t.admin.request(RegisterSpecDocument, { kind: 'EVENT', spec });
});

afterAll(async () => {
  await receiver.stop();
});

async function runJob(client: SluiceClient, csv = 'school_id,present\nS1,3\nS2,4\n') {
  const { uploadFile } = await client.upload(
    UploadFileDocument,
    { program: 'hooks', spec: 'hooks', file: null },
    { file: { body: csv, filename: 'hooks.csv', contentType: 'text/csv' } },
  );
  const events = await collectJobEvents(client, uploadFile.job.id, { afterSeq: 0 });
  return { jobId: uploadFile.job.id, fileId: uploadFile.file.id, state: events.at(-1)!.state };
}

/** Polls until `check` returns a value (generous bound: retries back off for seconds). */
async function until<T>(what: string, check: () => Promise<T | undefined> | T | undefined, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

type Delivery = WebhookDeliveriesQuery['webhookDeliveries'][number];

async function deliveries(client: SluiceClient, webhookId: string): Promise<Delivery[]> {
  const { webhookDeliveries } = await client.request(WebhookDeliveriesDocument, { webhookId });
  return [...webhookDeliveries].sort((a, b) => a.attempt - b.attempt);
}

describe('webhooks', () => {
  it('a job that succeeds delivers one signed POST that verifies with the secret; other clients get nothing', async () => {
    const owner = await t.clientWith(['INGESTOR']);
    const other = await t.clientWith(['INGESTOR']);
    const { createWebhook } = await owner.request(CreateWebhookDocument, { input: { url: receiver.script('/succeeds'), description: 'frontend' } });
    expect(createWebhook.secret).toMatch(/^whsec_/);
    expect(createWebhook.webhook.events).toEqual(['JOB_SUCCEEDED', 'JOB_SUCCEEDED_WITH_ERRORS', 'JOB_FAILED', 'JOB_CANCELLED']);
    await other.request(CreateWebhookDocument, { input: { url: receiver.script('/other') } });

    const job = await runJob(owner);
    expect(job.state).toBe('SUCCEEDED');
    const [post] = await until('the delivery', () => (receiver.at('/succeeds').length ? receiver.at('/succeeds') : undefined));
    const body = post!.body;
    const signature = post!.headers['sluice-signature'] as string;
    expect(signature).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    expect(verifySluiceSignature(createWebhook.secret, body, signature)).toBe(true);
    expect(verifySluiceSignature('whsec_wrong', body, signature)).toBe(false);
    expect(verifySluiceSignature(createWebhook.secret, body.replace('SUCCEEDED', 'FAILED'), signature)).toBe(false);
    const payload = JSON.parse(body);
    expect(payload).toMatchObject({
      type: 'JOB_SUCCEEDED',
      webhookId: createWebhook.webhook.id,
      data: { job: { id: job.jobId, state: 'SUCCEEDED', fileId: job.fileId, succeeded: 2, failed: 0 } },
    });
    expect(post!.headers['sluice-event-id']).toBe(payload.id);
    expect(post!.headers['sluice-event-type']).toBe('JOB_SUCCEEDED');
    expect(post!.headers['content-type']).toBe('application/json');

    const ds = await until('the recorded attempt', async () => {
      const d = await deliveries(owner, createWebhook.webhook.id);
      return d.length ? d : undefined;
    });
    expect(ds).toHaveLength(1);
    expect(ds[0]).toMatchObject({
      eventId: payload.id,
      jobId: job.jobId,
      eventType: 'JOB_SUCCEEDED',
      eventState: 'DELIVERED',
      attempt: 1,
      ok: true,
      statusCode: 200,
      error: null,
      responseBody: 'thanks',
    });
    // Only terminal events by default (no QUEUED, no RUNNING), and only the owner's jobs.
    await new Promise((r) => setTimeout(r, 1500));
    expect(receiver.at('/succeeds')).toHaveLength(1);
    expect(receiver.at('/other')).toHaveLength(0);
  });

  it('a receiver failing twice (500) then succeeding gets 3 attempts with the same event id, visible in webhookDeliveries', async () => {
    const client = await t.clientWith(['INGESTOR']);
    const fail = (res: http.ServerResponse) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`boom ${'x'.repeat(10_000)}`);
    const { createWebhook } = await client.request(CreateWebhookDocument, { input: { url: receiver.script('/flaky', fail, fail), events: ['JOB_SUCCEEDED'] } });
    const job = await runJob(client);
    const ds = await until('three attempts', async () => {
      const d = await deliveries(client, createWebhook.webhook.id);
      return d.length >= 3 ? d : undefined;
    });
    const posts = receiver.at('/flaky');
    expect(posts).toHaveLength(3);
    const ids = new Set(posts.map((p) => p.headers['sluice-event-id']));
    expect(ids.size).toBe(1);
    // The body is the same on every attempt; each attempt is signed afresh and verifies.
    expect(new Set(posts.map((p) => p.body)).size).toBe(1);
    for (const p of posts) expect(verifySluiceSignature(createWebhook.secret, p.body, p.headers['sluice-signature'] as string)).toBe(true);
    expect(ds.map((d) => [d.attempt, d.statusCode, d.ok, d.error?.code ?? null])).toEqual([
      [1, 500, false, 'WEBHOOK_HTTP_ERROR'],
      [2, 500, false, 'WEBHOOK_HTTP_ERROR'],
      [3, 200, true, null],
    ]);
    expect(ds.every((d) => d.eventId === [...ids][0] && d.jobId === job.jobId && d.eventState === 'DELIVERED')).toBe(true);
    // The response body is read only up to SLUICE_WEBHOOK_RESPONSE_MAX_BYTES.
    expect(ds[0]!.responseBody).toBe(`boom ${'x'.repeat(95)}`);
    await new Promise((r) => setTimeout(r, 1500));
    expect(receiver.at('/flaky')).toHaveLength(3);
  });

  it('gives up after SLUICE_WEBHOOK_MAX_ATTEMPTS and does not follow redirects', async () => {
    const client = await t.clientWith(['INGESTOR']);
    const redirect = (res: http.ServerResponse) => res.writeHead(302, { location: `${receiver.url}/elsewhere` }).end();
    const { createWebhook } = await client.request(CreateWebhookDocument, {
      input: { url: receiver.script('/redirects', redirect, redirect, redirect, redirect) },
    });
    await runJob(client);
    const ds = await until('three attempts', async () => {
      const d = await deliveries(client, createWebhook.webhook.id);
      return d.length >= 3 && d.every((x) => x.eventState === 'FAILED') ? d : undefined;
    });
    expect(ds.map((d) => [d.attempt, d.statusCode, d.error?.code])).toEqual([
      [1, 302, 'WEBHOOK_HTTP_ERROR'],
      [2, 302, 'WEBHOOK_HTTP_ERROR'],
      [3, 302, 'WEBHOOK_HTTP_ERROR'],
    ]);
    expect(ds[0]!.error!.message).toContain('redirects are not followed');
    await new Promise((r) => setTimeout(r, 2500));
    expect(receiver.at('/redirects')).toHaveLength(3);
    expect(receiver.at('/elsewhere')).toHaveLength(0);
  });

  it('a slow receiver times out and is retried', async () => {
    const client = await t.clientWith(['INGESTOR']);
    // Answers after 3 s, beyond SLUICE_WEBHOOK_TIMEOUT_MS (1 s).
    const slow = (res: http.ServerResponse) => void setTimeout(() => (res.destroyed ? undefined : res.writeHead(200).end('late')), 3000);
    const { createWebhook } = await client.request(CreateWebhookDocument, { input: { url: receiver.script('/slow', slow) } });
    await runJob(client);
    const ds = await until('a delivered retry', async () => {
      const d = await deliveries(client, createWebhook.webhook.id);
      return d.some((x) => x.ok) ? d : undefined;
    });
    expect(ds.map((d) => [d.attempt, d.statusCode, d.ok, d.error?.code ?? null])).toEqual([
      [1, null, false, 'WEBHOOK_TIMEOUT'],
      [2, 200, true, null],
    ]);
    expect(ds[0]!.durationMs).toBeGreaterThanOrEqual(900);
    expect(new Set(receiver.at('/slow').map((p) => p.headers['sluice-event-id'])).size).toBe(1);
  });

  it('events selects transitions; allJobs is ADMIN-only and receives every client’s jobs', async () => {
    const client = await t.clientWith(['INGESTOR']);
    const denied = await client.raw(CreateWebhookDocument, { input: { url: receiver.script('/nope'), allJobs: true } });
    expect(codeOf(denied.body), JSON.stringify(denied.body)).toBe('FORBIDDEN');
    const {
      createWebhook: { webhook: all },
    } = await t.admin.request(CreateWebhookDocument, { input: { url: receiver.script('/admin-all'), events: ['JOB_RUNNING'], allJobs: true } });
    const {
      createWebhook: { webhook: mine },
    } = await client.request(CreateWebhookDocument, { input: { url: receiver.script('/every'), events: ['JOB_QUEUED', 'JOB_RUNNING', 'JOB_SUCCEEDED'] } });
    const job = await runJob(client);
    const mineTypes = await until('three events', () => {
      const got = receiver.at('/every').filter((p) => JSON.parse(p.body).data.job.id === job.jobId);
      return got.length >= 3 ? got.map((p) => JSON.parse(p.body).type as string).sort() : undefined;
    });
    expect(mineTypes).toEqual(['JOB_QUEUED', 'JOB_RUNNING', 'JOB_SUCCEEDED']);
    await until('the admin’s event', () => (receiver.at('/admin-all').some((p) => JSON.parse(p.body).data.job.id === job.jobId) ? true : undefined));

    // Visibility: own webhooks only, every one for ADMIN; another client's id is NOT_FOUND.
    const { webhooks } = await client.request(WebhooksDocument);
    expect(webhooks.map((w) => w.id)).toEqual([mine.id]);
    const { webhooks: adminSees } = await t.admin.request(WebhooksDocument);
    expect(adminSees.map((w) => w.id)).toEqual(expect.arrayContaining([mine.id, all.id]));
    const foreign = await client.raw(WebhookDeliveriesDocument, { webhookId: all.id });
    expect(codeOf(foreign.body)).toBe('NOT_FOUND');
    const foreignDelete = await client.raw(DeleteWebhookDocument, { id: all.id });
    expect(codeOf(foreignDelete.body)).toBe('NOT_FOUND');

    // Deleted: no more deliveries.
    await client.request(DeleteWebhookDocument, { id: mine.id });
    const before = receiver.at('/every').length;
    await runJob(client);
    await new Promise((r) => setTimeout(r, 1500));
    expect(receiver.at('/every')).toHaveLength(before);
    const gone = await client.raw(WebhookDeliveriesDocument, { webhookId: mine.id });
    expect(codeOf(gone.body)).toBe('NOT_FOUND');
  });

  it('refuses bad input with BAD_USER_INPUT and a reason', async () => {
    const client = await t.clientWith(['INGESTOR']);
    for (const [url, reason] of [
      ['not a url', 'BAD_URL'],
      ['ftp://example.org/x', 'BAD_URL'],
      ['http://user:pw@127.0.0.1/x', 'BAD_URL'],
      [`http://127.0.0.1/${'a'.repeat(3000)}`, 'BAD_URL'],
      ['http://no-such-host.invalid/x', 'UNRESOLVABLE'],
    ] as const) {
      const r = await client.raw(CreateWebhookDocument, { input: { url } });
      expect(codeOf(r.body), `${url}: ${JSON.stringify(r.body)}`).toBe('BAD_USER_INPUT');
      expect(r.body.errors![0]!.extensions!['reason'], url).toBe(reason);
    }
    const empty = await client.raw(CreateWebhookDocument, { input: { url: receiver.script('/x'), events: [] } });
    expect(codeOf(empty.body)).toBe('BAD_USER_INPUT');
    const wrongEnum = await client.raw(CreateWebhookDocument, { input: { url: receiver.script('/x'), events: ['JOB_EXPLODED' as never] } });
    expect(codeOf(wrongEnum.body)).toBe('BAD_USER_INPUT');
    const long = await client.raw(CreateWebhookDocument, { input: { url: receiver.script('/x'), description: 'd'.repeat(501) } });
    expect(codeOf(long.body)).toBe('BAD_USER_INPUT');
    const badId = await client.raw(WebhookDeliveriesDocument, { webhookId: 'nope' });
    expect(codeOf(badId.body)).toBe('NOT_FOUND');
    const viewer = await t.clientWith(['VIEWER']);
    const forbidden = await viewer.raw(CreateWebhookDocument, { input: { url: receiver.script('/x') } });
    expect(codeOf(forbidden.body)).toBe('FORBIDDEN');
  });
});

describe('webhooks without SLUICE_WEBHOOK_ALLOW_PRIVATE_ADDRESSES', () => {
  let strict: TestApp;
  beforeAll(async () => {
    strict = await startTestApp({ ...WEBHOOK_ENV, SLUICE_WEBHOOK_ALLOW_PRIVATE_ADDRESSES: 'false' });
    await strict.admin.request(RegisterSpecDocument, { kind: 'EVENT', spec });
  });

  it('refuses private, loopback and link-local targets at createWebhook', async () => {
    const client = await strict.clientWith(['INGESTOR']);
    for (const url of [
      receiver.script('/private'),
      'http://localhost:1/x',
      'http://[::1]/x',
      'http://[::ffff:127.0.0.1]/x',
      'http://10.1.2.3/x',
      'http://169.254.169.254/latest/meta-data',
      'http://0.0.0.0/x',
    ]) {
      const r = await client.raw(CreateWebhookDocument, { input: { url } });
      expect(codeOf(r.body), `${url}: ${JSON.stringify(r.body)}`).toBe('BAD_USER_INPUT');
      expect(r.body.errors![0]!.extensions!['reason'], url).toBe('ADDRESS_REFUSED');
    }
  });

  it('refuses a private address at delivery too (the address connected to is checked), without retrying', async () => {
    // A webhook stored before the setting was turned off: create it where private targets are
    // allowed, then copy its row (the secret is sealed with the same key) into this deployment.
    const clientId = `strict-${Date.now()}`;
    const { createClient } = await strict.admin.request(CreateClientDocument, { input: { clientId, name: clientId, roles: ['INGESTOR'] } });
    const { issueToken } = await strict.anon.request(IssueTokenDocument, { clientId, clientSecret: createClient.clientSecret });
    const client = strict.anon.withToken(issueToken.accessToken);
    const lenient = await t.clientWith(['INGESTOR']);
    // A name, not a literal address: refused by the lookup at connect time.
    const url = receiver.script('/refused-at-delivery').replace('127.0.0.1', 'localhost');
    const { createWebhook } = await lenient.request(CreateWebhookDocument, { input: { url } });
    const [row] = await t.database.sql`select * from webhooks where id = ${createWebhook.webhook.id}`;
    await strict.database.sql`
      insert into webhooks (id, client_id, url, events, description, all_jobs, secret_ciphertext)
      values (${row!['id'] as string}, ${clientId}, ${row!['url'] as string}, ${row!['events'] as string[]}, null, false, ${row!['secret_ciphertext'] as string})`;
    try {
      await runJobOn(client);
      const ds = await until('the refused attempt', async () => {
        const d = await deliveries(client, createWebhook.webhook.id);
        return d.length ? d : undefined;
      });
      expect(ds).toHaveLength(1);
      expect(ds[0]).toMatchObject({ attempt: 1, ok: false, statusCode: null, eventState: 'FAILED', error: { code: 'WEBHOOK_ADDRESS_REFUSED' } });
      await new Promise((r) => setTimeout(r, 2500));
      expect(receiver.at('/refused-at-delivery')).toHaveLength(0);
      expect(await deliveries(client, createWebhook.webhook.id)).toHaveLength(1);
    } finally {
      await client.close();
    }
  });

  async function runJobOn(client: SluiceClient) {
    const { uploadFile } = await client.upload(
      UploadFileDocument,
      { program: 'hooks', spec: 'hooks', file: null },
      { file: { body: 'school_id,present\nS1,1\n', filename: 'hooks.csv', contentType: 'text/csv' } },
    );
    await collectJobEvents(client, uploadFile.job.id, { afterSeq: 0 });
  }
});

describe('webhook deliveries across a restart', () => {
  it('an event whose first attempt failed is delivered by the next process (the queue is in PostgreSQL)', async () => {
    const { url: databaseUrl } = await createTestDatabase();
    const first = await startTestApp(WEBHOOK_ENV, { databaseUrl });
    await first.admin.request(RegisterSpecDocument, { kind: 'EVENT', spec });
    const clientId = `restart-${Date.now()}`;
    const { createClient } = await first.admin.request(CreateClientDocument, { input: { clientId, name: clientId, roles: ['INGESTOR'] } });
    const login = async (app: TestApp) =>
      app.anon.withToken((await app.anon.request(IssueTokenDocument, { clientId, clientSecret: createClient.clientSecret })).issueToken.accessToken);
    const before = await login(first);
    const fail = (res: http.ServerResponse) => res.writeHead(503).end('down for maintenance');
    const { createWebhook } = await before.request(CreateWebhookDocument, { input: { url: receiver.script('/restart', fail) } });
    await runJob(before);
    await until('the failed first attempt', async () => ((await deliveries(before, createWebhook.webhook.id)).length ? true : undefined));
    await before.close();
    await first.app.dispose();

    const second = await startTestApp(WEBHOOK_ENV, { databaseUrl });
    const after = await login(second);
    try {
      const ds = await until('the retry by the new process', async () => {
        const d = await deliveries(after, createWebhook.webhook.id);
        return d.some((x) => x.ok) ? d : undefined;
      });
      expect(ds.map((d) => [d.attempt, d.statusCode])).toEqual([
        [1, 503],
        [2, 200],
      ]);
      const posts = receiver.at('/restart');
      expect(posts).toHaveLength(2);
      expect(posts[0]!.headers['sluice-event-id']).toBe(posts[1]!.headers['sluice-event-id']);
      expect(verifySluiceSignature(createWebhook.secret, posts[1]!.body, posts[1]!.headers['sluice-signature'] as string)).toBe(true);
    } finally {
      await after.close();
    }
  });

  it('the history of settled events is kept SLUICE_WEBHOOK_HISTORY_DAYS, then swept by the workers; PENDING events and recent ones stay', async () => {
    const owner = await t.clientWith(['INGESTOR']);
    const { createWebhook } = await owner.request(CreateWebhookDocument, { input: { url: receiver.script('/history') } });
    const hookId = createWebhook.webhook.id;
    await runJob(owner);
    await until('the first delivery', async () => ((await deliveries(owner, hookId)).some((d) => d.ok) ? true : undefined));
    // That event is 31 days old now; an old event never delivered (PENDING) must survive any age.
    await t.database.sql`update webhook_events set created_at = now() - interval '31 days' where webhook_id = ${hookId}`;
    const oldPendingJob = crypto.randomUUID();
    await t.database.sql`
      insert into webhook_events (webhook_id, job_id, seq, type, payload, created_at)
      values (${hookId}, ${oldPendingJob}, 1, 'JOB_SUCCEEDED', '{}'::jsonb, now() - interval '90 days')`;
    const recent = await runJob(owner);
    await until('the recent delivery', async () => ((await deliveries(owner, hookId)).filter((d) => d.ok).length >= 2 ? true : undefined));

    // A process whose sweeps run every 200 ms (the default is hourly), on the same database.
    const sweeper = await startTestApp(
      { ...WEBHOOK_ENV, SLUICE_ORPHAN_SWEEP_INTERVAL_MS: '200', SLUICE_WEBHOOK_HISTORY_DAYS: '30' },
      { databaseUrl: t.env['DATABASE_URL'] },
    );
    const left = await until('the sweep', async () => {
      const ds = await deliveries(owner, hookId);
      return ds.length === 1 ? ds : undefined;
    });
    expect(left[0]).toMatchObject({ jobId: recent.jobId, ok: true });
    const rows = await t.database.sql<
      { job_id: string; state: string }[]
    >`select job_id, state from webhook_events where webhook_id = ${hookId} order by created_at`;
    expect(rows.map((r) => [r.job_id, r.state])).toEqual([
      [oldPendingJob, 'PENDING'],
      [recent.jobId, 'DELIVERED'],
    ]);
    const [{ n }] = (await t.database
      .sql`select count(*)::int as n from webhook_deliveries d left join webhook_events e on e.id = d.event_id where d.webhook_id = ${hookId} and e.id is null`) as unknown as [
      { n: number },
    ];
    expect(n).toBe(0);
    // Called directly, nothing older is left to delete.
    expect(await sweeper.app.services.webhooks.sweepHistory()).toBe(0);
  });
});
