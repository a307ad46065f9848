// graphql-transport-ws connections that send random protocol messages (valid, malformed, out of
// order, server-only): none may be closed 4500 or 1011 or get INTERNAL_SERVER_ERROR.
// Usage: SLUICE_URL=… SLUICE_CLIENT_ID=… SLUICE_CLIENT_SECRET=… node scripts/fuzz/ws.mjs [seed] [count]
import WebSocket from 'ws';
import { adminToken, BASE, COUNT, random, report } from './lib.mjs';

const token = await adminToken();
const { rnd, pick } = random();
const queries = [
  'subscription { jobUpdated(id: "00000000-0000-0000-0000-000000000000") { __typename } }',
  'subscription ($id: ID!) { jobUpdated(id: $id, afterSeq: 0) { terminal } }',
  '{ __typename }',
  'query { files(first: 10) { nodes { id } } }',
  'mutation { runDiagnosticJob(input: { to: 3, stepMs: 10 }) { id } }',
  'subscription { jobUpdated(id: "x") { __typename } } subscription B { jobUpdated(id: "y") { __typename } }',
  '{',
  'subscription { __typename }',
  'subscription { jobUpdated(id: "a") { ...F } } fragment F on JobUpdate { ...F }',
  'x'.repeat(20000),
];
const message = () =>
  pick([
    () =>
      JSON.stringify({
        type: 'connection_init',
        payload: pick([{ authorization: `Bearer ${token}` }, {}, null, 'x', [1], { authorization: 5 }, { authorization: 'Bearer a.b.c' }]),
      }),
    () =>
      JSON.stringify({
        type: 'subscribe',
        id: pick(['1', '2', '', 'x'.repeat(3000), 5, null]),
        payload: { query: pick(queries), variables: pick([{}, { id: 'x' }, null, 'str', { id: { a: 1 } }]), operationName: pick([undefined, 'B', 5]) },
      }),
    () => JSON.stringify({ type: 'complete', id: pick(['1', '2', 'zz', 7]) }),
    () => JSON.stringify({ type: pick(['ping', 'pong']), payload: pick([undefined, {}, 'x']) }),
    () =>
      JSON.stringify(
        pick([
          { type: 'connection_ack' },
          { type: 'next', id: '1', payload: { data: {} } },
          { type: 'error', id: '1', payload: [{ message: 'x' }] },
          { type: 'nope' },
          { type: 5 },
        ]),
      ),
    () => pick(['', '{', 'null', '[]', '"x"', '\u0000', Buffer.alloc(100, 0xff).toString('latin1')]),
    () => JSON.stringify({ type: 'subscribe', id: '1', payload: pick([null, 5, 'x', { query: 5 }]) }),
  ])();

const out = report('ws');
const closes = {};
for (let i = 0; i < COUNT; i++) {
  const protocol = rnd() < 0.9 ? 'graphql-transport-ws' : pick(['graphql-ws', undefined]);
  const r = await new Promise((resolve) => {
    const ws = new WebSocket(`${BASE.replace(/^http/, 'ws')}/graphql`, protocol);
    const got = [];
    const timer = setTimeout(() => {
      ws.terminate();
      resolve({ code: 'open', got });
    }, 1500);
    ws.on('open', () => {
      if (rnd() < 0.8) ws.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } }));
      const n = 1 + Math.floor(rnd() * 6);
      setTimeout(() => {
        for (let k = 0; k < n; k++) if (ws.readyState === WebSocket.OPEN) ws.send(message());
      }, 30);
    });
    ws.on('message', (d) => got.push(String(d).slice(0, 300)));
    ws.on('close', (code, reason) => {
      clearTimeout(timer);
      resolve({ code, reason: String(reason), got });
    });
    ws.on('error', (e) => {
      clearTimeout(timer);
      resolve({ code: `error ${e.message}`, got });
    });
  });
  closes[r.code] = (closes[r.code] ?? 0) + 1;
  if (r.code === 4500 || r.code === 1011 || r.got.some((g) => g.includes('INTERNAL_SERVER_ERROR')))
    out.bad(`${r.code} ${r.reason ?? ''} ${r.got.join(' ').slice(0, 300)}`);
}
await out.done(COUNT, `closes ${JSON.stringify(closes)}`);
