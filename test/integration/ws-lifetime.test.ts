import jwt from 'jsonwebtoken';
import { createClient } from 'graphql-ws';
import { beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { CreateClientDocument, IssueTokenDocument, RevokeClientDocument } from '../../src/sdk/client';
import { JWT_SECRET, createTestDatabase, startTestApp, type TestApp } from '../helpers/app';

// Small bounds so the limits are reached quickly: one connection per client, 64 KiB of unsent bytes.
const SETTINGS = {
  SLUICE_WS_MAX_CONNECTIONS_PER_CLIENT: '1',
  SLUICE_WS_MAX_SUBSCRIPTIONS_PER_CONNECTION: '100',
  SLUICE_WS_MAX_BUFFERED_BYTES: String(64 * 1024),
};

let a: TestApp;
let b: TestApp;
beforeAll(async () => {
  // Two instances on one database, as behind a load balancer.
  const shared = await createTestDatabase();
  a = await startTestApp(SETTINGS, { databaseUrl: shared.url });
  b = await startTestApp(SETTINGS, { databaseUrl: shared.url });
});

const wsUrl = (t: TestApp) => `${t.url.replace(/^http/, 'ws')}/graphql`;
const heartbeat = (intervalMs: number, count: number) => ({ query: `subscription { heartbeat(intervalMs: ${intervalMs}, count: ${count}) { seq at } }` });

let n = 0;
/** A new client with `roles` created on `t`; returns its id and a token. */
async function newClient(t: TestApp, roles: Array<'VIEWER' | 'INGESTOR' | 'ADMIN'> = ['VIEWER']) {
  const clientId = `ws-${++n}-${Date.now()}`;
  const { createClient: created } = await t.admin.request(CreateClientDocument, { input: { clientId, name: clientId, roles } });
  const { issueToken } = await t.anon.request(IssueTokenDocument, { clientId, clientSecret: created.clientSecret });
  return { clientId, token: issueToken.accessToken };
}

interface Beat {
  seq: number;
  at: number;
  receivedAt: number;
}

/** Subscribes to heartbeats through a real graphql-ws client; records every event and how the socket closed. */
function watchBeats(t: TestApp, token: string, intervalMs: number, count: number) {
  const beats: Beat[] = [];
  let onClosed!: (c: { code: number; reason: string; at: number }) => void;
  const closed = new Promise<{ code: number; reason: string; at: number }>((r) => (onClosed = r));
  let onFirst!: () => void;
  const first = new Promise<void>((r) => (onFirst = r));
  const client = createClient({
    url: wsUrl(t),
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${token}` },
    retryAttempts: 0,
    on: { closed: (e) => onClosed({ code: (e as { code: number }).code, reason: (e as { reason: string }).reason, at: Date.now() }) },
  });
  client.subscribe<{ heartbeat: { seq: number; at: string } }>(heartbeat(intervalMs, count), {
    next: (r) => {
      if (r.data) beats.push({ seq: r.data.heartbeat.seq, at: Date.parse(r.data.heartbeat.at), receivedAt: Date.now() });
      onFirst();
    },
    error: () => undefined,
    complete: () => undefined,
  });
  return { beats, closed, first, dispose: () => client.dispose() };
}

/** Opens a raw graphql-transport-ws socket and sends connection_init; resolves on ack or close. */
function handshake(t: TestApp, token: string): Promise<{ ws: WebSocket; acked: boolean; code?: number; reason?: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl(t), 'graphql-transport-ws');
    ws.on('open', () => ws.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } })));
    ws.on('message', (data) => {
      if (JSON.parse(String(data)).type === 'connection_ack') resolve({ ws, acked: true });
    });
    ws.on('close', (code, reason) => resolve({ ws, acked: false, code, reason: reason.toString() }));
    ws.on('error', reject);
  });
}

const closeRaw = (ws: WebSocket) =>
  new Promise<void>((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) return resolve();
    ws.once('close', () => resolve());
    ws.close();
  });

describe('a subscription lives only as long as its token', () => {
  it('closes with 4401 at the token expiry and delivers no event after it', async () => {
    const { clientId } = await newClient(a);
    // A short-lived token signed with the service's secret (issueToken's TTL has a 60 s minimum).
    const exp = Math.floor(Date.now() / 1000) + 3;
    const token = jwt.sign({ roles: ['VIEWER'], exp }, JWT_SECRET, { algorithm: 'HS256', issuer: 'sluice', audience: 'sluice-api', subject: clientId });
    const sub = watchBeats(a, token, 100, 1000);
    const closed = await sub.closed;
    await sub.dispose();
    expect(closed, JSON.stringify(closed)).toMatchObject({ code: 4401 });
    expect(closed.reason).toMatch(/expired/i);
    // Closed at the expiry (not before, and within a second or so after).
    expect(closed.at).toBeGreaterThanOrEqual(exp * 1000 - 50);
    expect(closed.at).toBeLessThan(exp * 1000 + 2000);
    expect(sub.beats.length).toBeGreaterThan(5);
    // Every delivered event was produced before the expiry.
    for (const beat of sub.beats) expect(beat.at).toBeLessThanOrEqual(exp * 1000);
  });

  // Revoked on instance A; subscribed on A itself, or on B (the revocation travels by NOTIFY).
  it.each([
    ['the same instance', () => a],
    ['another instance on the same database', () => b],
  ])('closes with 4403 within seconds of revokeClient, subscribed on %s', async (_where, on) => {
    const { clientId, token } = await newClient(a);
    const sub = watchBeats(on(), token, 50, 1000);
    await sub.first;
    const revokedAt = Date.now();
    await a.admin.request(RevokeClientDocument, { clientId });
    const closed = await sub.closed;
    await sub.dispose();
    expect(closed.code, JSON.stringify(closed)).toBe(4403);
    expect(closed.reason).toMatch(/revoked/i);
    expect(closed.at - revokedAt).toBeLessThan(5000);
    expect(sub.beats.filter((x) => x.receivedAt > closed.at)).toEqual([]);
    // Its token is refused from then on, over WebSocket too.
    const again = await handshake(on(), token);
    expect(again.acked).toBe(false);
    expect(again.code).toBe(4403);
  });

  it('re-checks its connected clients when its LISTEN connection comes back, closing those revoked meanwhile', async () => {
    const { clientId, token } = await newClient(a);
    const sub = watchBeats(b, token, 50, 1000);
    await sub.first;
    // A revocation whose notification never arrived (committed without NOTIFY, as if sent while B's
    // listener was disconnected); then B's listening connection is dropped and reconnects.
    await b.database.sql`update api_clients set revoked_at = now() where client_id = ${clientId}`;
    const droppedAt = Date.now();
    await b.database.sql`select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and query ilike 'listen%'`;
    const closed = await sub.closed;
    await sub.dispose();
    expect(closed.code, JSON.stringify(closed)).toBe(4403);
    expect(closed.at - droppedAt).toBeLessThan(10_000);
  });
});

describe('messages only a server sends', () => {
  // graphql-ws's server threw for them and the connection closed 4500 "Internal server error",
  // logged as the service's own failure (found by sending random protocol messages).
  for (const type of ['connection_ack', 'next', 'error']) {
    it(`a client's ${type} closes its connection with 4400 (the protocol's answer), not 4500`, async () => {
      const { token } = await newClient(a);
      const { ws, acked } = await handshake(a, token);
      expect(acked).toBe(true);
      const closed = new Promise<{ code: number; reason: string }>((resolve) =>
        ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
      );
      ws.send(JSON.stringify(type === 'connection_ack' ? { type } : { type, id: '1', payload: type === 'next' ? { data: {} } : [{ message: 'x' }] }));
      const { code, reason } = await closed;
      expect({ code, reason }).toEqual({ code: 4400, reason: `Invalid message received: a client may not send ${type}` });
    });
  }
});

describe('connection limits', () => {
  it('refuses a connection beyond the per-client cap with 4429 and accepts one again when a slot frees', async () => {
    const { token } = await newClient(a);
    const first = await handshake(a, token);
    expect(first.acked).toBe(true);
    const second = await handshake(a, token);
    expect(second.acked, JSON.stringify(second)).toBe(false);
    expect(second.code).toBe(4429);
    expect(second.reason).toMatch(/Too many connections/);
    // Another client is not affected, and the cap is per instance.
    const other = await newClient(a);
    const third = await handshake(a, other.token);
    expect(third.acked).toBe(true);
    const onB = await handshake(b, token);
    expect(onB.acked).toBe(true);
    await closeRaw(first.ws);
    const later = await handshake(a, token);
    expect(later.acked).toBe(true);
    await Promise.all([closeRaw(third.ws), closeRaw(onB.ws), closeRaw(later.ws)]);
  });

  it('refuses a handshake beyond SLUICE_WS_MAX_PENDING_CONNECTIONS sockets still without connection_init with a JSON 503, and takes one again once they are acknowledged', async () => {
    const t = await startTestApp({ SLUICE_WS_MAX_PENDING_CONNECTIONS: '2' });
    const { token } = await newClient(t);
    const opened = () =>
      new Promise<{ ws: WebSocket; status: number; body: string }>((resolve, reject) => {
        const ws = new WebSocket(wsUrl(t), 'graphql-transport-ws');
        ws.on('open', () => resolve({ ws, status: 101, body: '' }));
        ws.on('unexpected-response', (_req, res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c));
          res.on('end', () => resolve({ ws, status: res.statusCode ?? 0, body }));
        });
        ws.on('error', reject);
      });
    const [p1, p2] = [await opened(), await opened()];
    expect([p1.status, p2.status]).toEqual([101, 101]);
    const refused = await opened();
    expect(refused.status).toBe(503);
    expect(JSON.parse(refused.body).errors[0].extensions.code).toBe('SERVICE_UNAVAILABLE');
    // Acknowledged connections do not count: once one of the two has a token, a new one opens.
    const acked = new Promise<void>((resolve) => p1.ws.on('message', (d) => JSON.parse(String(d)).type === 'connection_ack' && resolve()));
    p1.ws.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } }));
    await acked;
    const again = await opened();
    expect(again.status).toBe(101);
    await Promise.all([closeRaw(p1.ws), closeRaw(p2.ws), closeRaw(again.ws)]);
  });

  it('refuses a subscription beyond the per-connection limit with BAD_REQUEST and keeps the others', async () => {
    const { token } = await newClient(a);
    const { ws, acked } = await handshake(a, token);
    expect(acked).toBe(true);
    const messages: Array<{ id?: string; type: string; payload?: unknown }> = [];
    ws.on('message', (data) => messages.push(JSON.parse(String(data))));
    // 100 quiet subscriptions (one beat a minute), then one more.
    for (let i = 1; i <= 101; i++) ws.send(JSON.stringify({ id: String(i), type: 'subscribe', payload: heartbeat(60_000, 1) }));
    const deadline = Date.now() + 10_000;
    while (!messages.some((m) => m.type === 'error') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const errors = messages.filter((m) => m.type === 'error');
    expect(errors, JSON.stringify(messages)).toHaveLength(1);
    expect(errors[0]).toMatchObject({ id: '101', payload: [{ extensions: { code: 'BAD_REQUEST' } }] });
    expect(JSON.stringify(errors[0])).toMatch(/at most 100/);
    // Completing one frees its place.
    ws.send(JSON.stringify({ id: '1', type: 'complete' }));
    ws.send(JSON.stringify({ id: '102', type: 'subscribe', payload: { query: '{ serviceInfo { version } }' } }));
    while (!messages.some((m) => m.id === '102' && m.type === 'complete') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(
      messages.filter((m) => m.id === '102').map((m) => m.type),
      JSON.stringify(messages),
    ).toEqual(['next', 'complete']);
    expect(ws.readyState).toBe(WebSocket.OPEN);
    await closeRaw(ws);
  });

  it('still delivers one result larger than the bound to a client that reads', async () => {
    const { token } = await newClient(a);
    const client = createClient({ url: wsUrl(a), webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${token}` }, retryAttempts: 0 });
    const query =
      '{ __schema { types { name kind description fields { name description type { name kind ofType { name kind } } args { name description type { name kind ofType { name kind } } } } } } }';
    const results = [];
    for await (const r of client.iterate({ query })) results.push(r);
    await client.dispose();
    expect(results).toHaveLength(1);
    expect(JSON.stringify(results[0]).length).toBeGreaterThan(64 * 1024);
  });

  it('closes a consumer that stops reading once its unsent bytes pass the bound, without growing the server', async () => {
    const { token } = await newClient(a);
    const slow = await handshake(a, token);
    expect(slow.acked).toBe(true);
    const ws = slow.ws;
    let received = 0;
    let closed: { code: number; reason: string } | undefined;
    ws.on('message', () => received++);
    ws.on('close', (code, reason) => (closed = { code, reason: reason.toString() }));
    // Many beats: 100 subscriptions x 100 per second; then stop reading.
    for (let i = 1; i <= 100; i++) ws.send(JSON.stringify({ id: String(i), type: 'subscribe', payload: heartbeat(10, 1000) }));
    (ws as unknown as { _socket: { pause(): void; resume(): void } })._socket.pause();
    const heapBefore = process.memoryUsage().heapUsed;
    // The paused socket holds the client's only slot (cap 1) until the server drops it.
    const deadline = Date.now() + 30_000;
    let probe: Awaited<ReturnType<typeof handshake>> | undefined;
    let heapPeak = heapBefore;
    while (Date.now() < deadline) {
      probe = await handshake(a, token);
      heapPeak = Math.max(heapPeak, process.memoryUsage().heapUsed);
      if (probe.acked) break;
      expect(probe.code, JSON.stringify(probe)).toBe(4429);
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(probe?.acked, 'the slow socket was never dropped').toBe(true);
    await closeRaw(probe!.ws);
    expect(heapPeak - heapBefore).toBeLessThan(64 * 1024 * 1024);
    // Reading again, the client finds what the network held, then the end of the connection.
    (ws as unknown as { _socket: { resume(): void } })._socket.resume();
    await new Promise<void>((resolve) => (closed ? resolve() : ws.once('close', () => resolve())));
    expect([1013, 1006], JSON.stringify(closed)).toContain(closed!.code);
    // Far fewer than the 100,000 beats the subscriptions would have produced.
    expect(received).toBeLessThan(100_000);
  }, 60_000);
});
