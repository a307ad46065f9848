import { print } from 'graphql';
import { createClient } from 'graphql-ws';
import jwt from 'jsonwebtoken';
import { beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { CancelJobDocument, type JobEventFieldsFragment, JobEventsDocument, JobUpdatedDocument, RunDiagnosticJobDocument } from '../../src/sdk/client';
import { JWT_SECRET, startTestApp, type TestApp } from '../helpers/app';
import { FAST_JOBS } from '../helpers/jobs';

// Every step of a diagnostic job is stored as its own event; 64 KiB of unsent bytes per socket.
let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ ...FAST_JOBS, SLUICE_JOB_PROGRESS_INTERVAL_MS: '0', SLUICE_WS_MAX_BUFFERED_BYTES: String(64 * 1024) });
});

const wsUrl = () => `${t.url.replace(/^http/, 'ws')}/graphql`;
const JOB_UPDATED = print(JobUpdatedDocument);
const FEW_FIELDS = 'subscription Few($id: ID!, $afterSeq: Int) { jobUpdated(id: $id, afterSeq: $afterSeq) { seq kind } }';

interface Message {
  id?: string;
  type: string;
  payload?: { data?: { jobUpdated: Record<string, unknown> }; errors?: unknown };
}

/** A raw graphql-transport-ws socket, acknowledged; every message it receives is kept. */
async function openRaw(token: string): Promise<{ ws: WebSocket; messages: Message[]; closed: Promise<{ code: number; reason: string }> }> {
  const ws = new WebSocket(wsUrl(), 'graphql-transport-ws');
  const messages: Message[] = [];
  const closed = new Promise<{ code: number; reason: string }>((r) => ws.on('close', (code, reason) => r({ code, reason: reason.toString() })));
  await new Promise<void>((resolve, reject) => {
    ws.once('error', reject);
    ws.once('open', () => ws.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } })));
    ws.on('message', (data) => {
      const m = JSON.parse(String(data)) as Message;
      if (m.type === 'connection_ack') return resolve();
      messages.push(m);
    });
  });
  return { ws, messages, closed };
}

const send = (ws: WebSocket, m: Record<string, unknown>) => ws.send(JSON.stringify(m));

async function until(what: string, check: () => boolean, timeoutMs = 30_000): Promise<void> {
  const started = Date.now();
  while (!check()) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function storedEvents(id: string): Promise<JobEventFieldsFragment[]> {
  const { job } = await t.admin.request(JobEventsDocument, { id, afterSeq: 0, first: 1000 });
  return job.events;
}

describe('jobUpdated over graphql-ws', () => {
  it('gives each subscription on a socket its own id and selection, every event once and in order, then complete; a completed one gets nothing more', async () => {
    const { ws, messages } = await openRaw(t.admin.options.token!);
    const { runDiagnosticJob: job } = await t.admin.request(RunDiagnosticJobDocument, { input: { to: 30, stepMs: 50 } });
    // a and b share a document and variables (one execution), c selects fewer fields, d unsubscribes early.
    send(ws, { id: 'a', type: 'subscribe', payload: { query: JOB_UPDATED, variables: { id: job.id, afterSeq: 0 } } });
    send(ws, { id: 'b', type: 'subscribe', payload: { query: JOB_UPDATED, variables: { id: job.id, afterSeq: 0 } } });
    send(ws, { id: 'c', type: 'subscribe', payload: { query: FEW_FIELDS, variables: { id: job.id, afterSeq: 0 } } });
    send(ws, { id: 'd', type: 'subscribe', payload: { query: JOB_UPDATED, variables: { id: job.id } } });
    await until('the SNAPSHOT of d', () => messages.some((m) => m.id === 'd'));
    send(ws, { id: 'd', type: 'complete' });
    const completed = (id: string) => messages.some((m) => m.id === id && m.type === 'complete');
    await until('a, b and c to complete', () => completed('a') && completed('b') && completed('c'));
    ws.close();

    const all = await storedEvents(job.id);
    expect(all.at(-1)).toMatchObject({ state: 'SUCCEEDED', terminal: true });
    expect(all.length).toBeGreaterThan(20);
    const of = (id: string) => messages.filter((m) => m.id === id);
    for (const id of ['a', 'b', 'c', 'd']) {
      for (const m of of(id).slice(0, -1)) expect(m.type, JSON.stringify(m)).toBe('next');
    }
    const events = (id: string) => of(id).flatMap((m) => (m.type === 'next' ? [m.payload!.data!.jobUpdated] : []));
    expect(events('a')).toEqual(all);
    expect(events('b')).toEqual(all);
    expect(events('c')).toEqual(all.map(({ seq, kind }) => ({ seq, kind })));
    // Each ends with exactly one complete, right after its terminal event.
    for (const id of ['a', 'b', 'c']) {
      expect(of(id).at(-1)).toEqual({ id, type: 'complete' });
      expect(of(id).filter((m) => m.type === 'complete')).toHaveLength(1);
    }
    // d: its SNAPSHOT, perhaps an event or two sent before its complete arrived, never the end.
    const [snapshot, ...live] = events('d');
    expect(snapshot).toMatchObject({ kind: 'SNAPSHOT' });
    expect(live).toEqual(all.filter((e) => e.seq > (snapshot!['seq'] as number)).slice(0, live.length));
    expect(live.length).toBeLessThan(all.length / 2);
    expect(completed('d')).toBe(false);
  });

  it('closes a jobUpdated subscriber with 4401 at its token expiry and delivers no event stored after it', async () => {
    const clientId = `expiring-${Date.now()}`;
    await t.clientWith(['ADMIN'], clientId);
    const exp = Math.floor(Date.now() / 1000) + 3;
    const token = jwt.sign({ roles: ['ADMIN'], exp }, JWT_SECRET, { algorithm: 'HS256', issuer: 'sluice', audience: 'sluice-api', subject: clientId });
    const { runDiagnosticJob: job } = await t.admin.request(RunDiagnosticJobDocument, { input: { to: 400, stepMs: 50 } });
    const events: JobEventFieldsFragment[] = [];
    let onClosed!: (c: { code: number; reason: string }) => void;
    const closed = new Promise<{ code: number; reason: string }>((r) => (onClosed = r));
    const client = createClient({
      url: wsUrl(),
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${token}` },
      retryAttempts: 0,
      on: { closed: (e) => onClosed({ code: (e as { code: number }).code, reason: (e as { reason: string }).reason }) },
    });
    client.subscribe<{ jobUpdated: JobEventFieldsFragment }>(
      { query: JOB_UPDATED, variables: { id: job.id } },
      { next: (r) => void (r.data && events.push(r.data.jobUpdated)), error: () => undefined, complete: () => undefined },
    );
    const c = await closed;
    await client.dispose();
    await t.admin.request(CancelJobDocument, { id: job.id });
    expect(c.code, JSON.stringify(c)).toBe(4401);
    expect(events.length).toBeGreaterThan(5);
    for (const e of events.slice(1)) expect(Date.parse(e.at)).toBeLessThanOrEqual(exp * 1000);
  });

  it('closes a jobUpdated consumer that stops reading once its unsent bytes pass the bound', async () => {
    const { runDiagnosticJob: job } = await t.admin.request(RunDiagnosticJobDocument, { input: { to: 900, stepMs: 0 } });
    let all: JobEventFieldsFragment[] = [];
    await (async () => {
      for (let i = 0; i < 300; i++) {
        all = await storedEvents(job.id);
        if (all.at(-1)?.terminal) return;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error('the job did not finish');
    })();
    const { ws, messages, closed } = await openRaw(t.admin.options.token!);
    // 50 replays of every event (megabytes), and the client reads none of them.
    (ws as unknown as { _socket: { pause(): void; resume(): void } })._socket.pause();
    for (let i = 1; i <= 50; i++) send(ws, { id: String(i), type: 'subscribe', payload: { query: JOB_UPDATED, variables: { id: job.id, afterSeq: 0 } } });
    await new Promise((r) => setTimeout(r, 3000));
    (ws as unknown as { _socket: { resume(): void } })._socket.resume();
    const c = await closed;
    expect([1013, 1006], JSON.stringify(c)).toContain(c.code);
    const nexts = messages.filter((m) => m.type === 'next').length;
    expect(nexts).toBeGreaterThan(0);
    expect(nexts).toBeLessThan(50 * all.length);
    // The service carries on: a new subscriber gets the whole job.
    const again = await openRaw(t.admin.options.token!);
    send(again.ws, { id: 'x', type: 'subscribe', payload: { query: FEW_FIELDS, variables: { id: job.id, afterSeq: 0 } } });
    await until('x to complete', () => again.messages.some((m) => m.type === 'complete'));
    again.ws.close();
    expect(again.messages.filter((m) => m.type === 'next')).toHaveLength(all.length);
  }, 60_000);
});
