// Raw HTTP/1.1 requests to every route (the downloads, signed-URL uploads, probes, pages,
// /graphql by GET) with random methods (CONNECT included), paths, ids, credentials and headers
// (Upgrade offers, Expect, malformed lines), some half-closed after the request: no answer may be a
// 5xx or INTERNAL_SERVER_ERROR, every request is answered, and a 4xx from the API or the HTTP
// edges carries a JSON error code (the pages' own 404 aside).
// Usage: SLUICE_URL=… SLUICE_CLIENT_ID=… SLUICE_CLIENT_SECRET=… node scripts/fuzz/routes.mjs [seed] [count]
import net from 'node:net';
import { adminToken, BASE, COUNT, GRAPHQL, random, report } from './lib.mjs';

const token = await adminToken();
const files = await fetch(GRAPHQL, {
  method: 'POST',
  headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
  body: JSON.stringify({ query: '{ files(first: 5) { nodes { id } } }' }),
})
  .then((r) => r.json())
  .then((j) => j.data.files.nodes.map((n) => n.id));
const { rnd, pick } = random();
const url = new URL(BASE);
const id = () => pick([...files, 'x', '%00', '..%2f..%2fetc%2fpasswd', '00000000-0000-0000-0000-000000000000', 'a'.repeat(300), '%E0%A4%A']);
const path = () =>
  pick([
    `/files/${id()}/errors.csv`,
    `/files/${id()}/valid.csv`,
    `/uploads/${id()}`,
    `/uploads/${id()}?token=abc&expires=1`,
    '/healthz',
    '/readyz',
    '/metrics',
    '/graphql',
    '/',
    '/jobs',
    `/jobs/${id()}`,
    '/playground',
    '/static/../../package.json',
    '/%2e%2e/%2e%2e/etc/passwd',
    '//graphql',
    '/graphql?query={__typename}',
    `/graphql?query=${encodeURIComponent('{ files(first: 1) { nodes { id } } }')}`,
    '/x'.repeat(500),
  ]);
const out = report('routes');
const statuses = {};
for (let i = 0; i < COUNT; i++) {
  const method = pick(['GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'PATCH', 'TRACE', 'CONNECT', 'FOO']);
  const p = path();
  const headers = [`Host: ${url.host}`, 'Connection: close'];
  if (rnd() < 0.6) headers.push(`Authorization: ${pick([`Bearer ${token}`, 'Bearer x', 'Basic abc', `Bearer ${token}x`, 'Bearer'])}`);
  if (rnd() < 0.5)
    headers.push(`Content-Type: ${pick(['application/json', 'text/csv', 'multipart/form-data; boundary=x', 'application/json; charset=utf-16', '*/*'])}`);
  if (rnd() < 0.3) headers.push(`Accept: ${pick(['text/event-stream', 'application/graphql-response+json', 'text/html', '*/*', 'x'])}`);
  if (rnd() < 0.2) headers.push(`Range: bytes=${pick(['0-10', '-5', '99999999-', 'x'])}`);
  if (rnd() < 0.2) headers.push(`Content-Encoding: ${pick(['gzip', 'br', 'x'])}`);
  if (rnd() < 0.1) headers.push(`X-Forwarded-For: ${pick(['1.2.3.4', 'x', '::1, 1.1.1.1'])}`);
  if (rnd() < 0.15) {
    headers.push(`Upgrade: ${pick(['h2c', 'websocket', 'WebSocket', 'TLS/1.0', 'x, websocket'])}`);
    // `close` kept: the connection must end after the answer for this loop to read it.
    headers[1] = pick(['Connection: Upgrade, close', 'Connection: Upgrade, HTTP2-Settings, close', 'Connection: close, Upgrade']);
    if (rnd() < 0.5) headers.push('Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13');
  }
  if (rnd() < 0.05) headers.push(`Expect: ${pick(['100-continue', 'tea', ''])}`);
  if (rnd() < 0.03) headers.push(pick(['Bad Header: x', 'X-Ctl: a\x01b', 'Transfer-Encoding: chunked', `X-Big: ${'a'.repeat(20_000)}`]));
  const halfClose = rnd() < 0.2;
  const body =
    rnd() < 0.5
      ? Buffer.from(pick(['{"query":"{ __typename }"}', 'date,school_id,present\n01/03/23,s1,3\n', '\x1f\x8b\x08\x00garbage', '{', '']))
      : Buffer.alloc(0);
  if (body.length || rnd() < 0.5) headers.push(`Content-Length: ${body.length}`);
  const r = await new Promise((resolve) => {
    const s = net.connect(Number(url.port || 80), url.hostname);
    let got = '';
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ status: 'timeout', got });
    }, 8000);
    s.on('data', (c) => {
      got += c;
      // A WebSocket handshake that succeeded is answered: this side hangs up (the socket would wait for its close).
      if (got.startsWith('HTTP/1.1 101') && got.includes('\r\n\r\n')) s.destroy();
    });
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ status: got.split('\r\n')[0].split(' ')[1] ?? 'none', got });
    });
    const bytes = Buffer.concat([Buffer.from(`${method} ${p} HTTP/1.1\r\n${headers.join('\r\n')}\r\n\r\n`), body]);
    // Half-closed sometimes: the answer must still come (http-edges.ts).
    if (halfClose) s.end(bytes);
    else s.write(bytes);
  });
  statuses[r.status] = (statuses[r.status] ?? 0) + 1;
  const unanswered = r.status === 'timeout' || r.status === 'none';
  // A 4xx says why in JSON with a code, except a page route's plain 404 (and HEAD, which has no body).
  const status = Number(r.status);
  const jsonCode = /"code":"[A-Z_]+"/.test(r.got);
  const plainAllowed = r.got.includes('text/html') || method === 'HEAD';
  const uncoded = status >= 400 && status < 500 && !jsonCode && !plainAllowed;
  if (unanswered || uncoded || status >= 500 || r.got.includes('INTERNAL_SERVER_ERROR'))
    out.bad(`${method} ${p.slice(0, 80)} ${headers.slice(2).join(' | ').slice(0, 200)} => ${r.got.slice(0, 200).replace(/\r\n/g, ' | ')}`);
}
await out.done(COUNT, `answers ${JSON.stringify(statuses)}`);
