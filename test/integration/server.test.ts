import http from 'node:http';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'graphql';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { HeartbeatDocument, IssueTokenDocument, MeDocument, ServiceInfoDocument } from '../../src/sdk/client';
import { ADMIN_ID, ADMIN_SECRET, codeOf, startTestApp, type TestApp } from '../helpers/app';
import { rawExchange, rawHttpRequest } from '../helpers/raw-http';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ SLUICE_MAX_ALIASES: '3', SLUICE_MAX_DEPTH: '2', SLUICE_MAX_TOKENS: '200' });
});

async function post(body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${t.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as { data?: unknown; errors?: Array<{ message: string; extensions?: Record<string, unknown> }> } };
}

describe('HTTP endpoints', () => {
  it('GET /healthz answers JSON while the process is up', async () => {
    const res = await fetch(`${t.url}/healthz`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
    expect(await res.json()).toMatchObject({ status: 'ok', role: 'all' });
  });

  it("keeps an idle keep-alive connection open past Node's 5 s default (clients and load balancers close first)", async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const get = () =>
      new Promise<{ reused: boolean; keepAlive: string | undefined }>((resolve, reject) => {
        const req = http.get(`${t.url}/healthz`, { agent }, (res) => {
          res.resume();
          res.on('end', () => resolve({ reused: req.reusedSocket, keepAlive: String(res.headers['keep-alive']) }));
        });
        req.on('error', reject);
      });
    try {
      const first = await get();
      expect(first.keepAlive).toBe('timeout=65');
      await new Promise((r) => setTimeout(r, 5500));
      // Reused only if the server did not close it at 5 s (an ECONNRESET race for clients that reuse late).
      expect(await get()).toMatchObject({ reused: true });
    } finally {
      agent.destroy();
    }
  });

  it('GET /readyz checks the database', async () => {
    const res = await fetch(`${t.url}/readyz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'ready', database: 'ok' });
  });

  it('unknown routes get a JSON 404 with a code', async () => {
    const res = await fetch(`${t.url}/nope`);
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ errors: [{ extensions: { code: 'NOT_FOUND' } }] });
  });

  it('serviceInfo lists the closed set of error codes', async () => {
    const { serviceInfo } = await t.anon.request(ServiceInfoDocument);
    expect(serviceInfo.errorCodes).toEqual(expect.arrayContaining(['UNAUTHENTICATED', 'FORBIDDEN', 'INTERNAL_SERVER_ERROR', 'BAD_USER_INPUT']));
    expect(serviceInfo.role).toBe('all');
  });
});

describe('errors', () => {
  it('refuses a subscription over HTTP with 400 BAD_REQUEST pointing to graphql-ws (GET: 405)', async () => {
    const query = 'subscription { heartbeat(intervalMs: 1000, count: 1) { seq } }';
    const auth = { authorization: `Bearer ${t.admin.options.token}` };
    const res = await post({ query }, auth);
    expect(res.status, JSON.stringify(res.body)).toBe(400);
    expect(res.body.data).toBeUndefined();
    expect(res.body.errors?.[0]?.extensions, JSON.stringify(res.body)).toEqual({ code: 'BAD_REQUEST' });
    expect(res.body.errors?.[0]?.message).toMatch(/graphql-ws/);
    const get = await fetch(`${t.url}/graphql?query=${encodeURIComponent(query)}`, {
      headers: { accept: 'application/json', ...auth, 'apollo-require-preflight': 'true' },
    });
    const body = (await get.json()) as { errors?: Array<{ extensions?: Record<string, unknown> }> };
    // Over GET, Apollo's own rule answers first: only queries (405 with the same code).
    expect(get.status, JSON.stringify(body)).toBe(405);
    expect(codeOf(body)).toBe('BAD_REQUEST');
    // Queries and mutations over HTTP are untouched.
    expect((await post({ query: '{ me { clientId } }' }, auth)).status).toBe(200);
  });

  it('syntax and validation errors carry stable codes', async () => {
    expect((await post({ query: '{ me { ' })).body.errors?.[0]?.extensions?.['code']).toBe('GRAPHQL_PARSE_FAILED');
    expect((await post({ query: '{ nope }' })).body.errors?.[0]?.extensions?.['code']).toBe('GRAPHQL_VALIDATION_FAILED');
  });

  it('masks unexpected failures as INTERNAL_SERVER_ERROR without leaking SQL or stack traces', async () => {
    // Break the table under the running service: the next query fails inside postgres.js.
    await t.database.sql`alter table api_clients rename to api_clients_away`;
    try {
      const res = await t.anon.raw(IssueTokenDocument, { clientId: ADMIN_ID, clientSecret: ADMIN_SECRET });
      const text = JSON.stringify(res.body);
      expect(codeOf(res.body), text).toBe('INTERNAL_SERVER_ERROR');
      expect(res.body.errors?.[0]?.message).toBe('Internal server error');
      expect(text).not.toMatch(/api_clients|relation|stack|at .*\.ts/);
    } finally {
      await t.database.sql`alter table api_clients_away rename to api_clients`;
    }
  });
});

describe('CSRF prevention and multipart', () => {
  it('refuses a multipart request without the apollo-require-preflight header', async () => {
    const form = new FormData();
    form.append('operations', JSON.stringify({ query: '{ serviceInfo { version } }', variables: {} }));
    form.append('map', '{}');
    const res = await fetch(`${t.url}/graphql`, { method: 'POST', body: form });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ errors: [{ extensions: { code: 'BAD_REQUEST' } }] });
  });

  it('accepts a multipart request with the header (processed by graphql-upload)', async () => {
    const form = new FormData();
    form.append('operations', JSON.stringify({ query: '{ serviceInfo { version } }', variables: {} }));
    form.append('map', '{}');
    const res = await fetch(`${t.url}/graphql`, { method: 'POST', body: form, headers: { 'apollo-require-preflight': 'true' } });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ data: { serviceInfo: { version: expect.any(String) } } });
  });

  it('rejects a GET mutation (CSRF: no side effects over GET)', async () => {
    const q = encodeURIComponent('mutation { issueToken(clientId: "a", clientSecret: "b") { accessToken } }');
    const res = await fetch(`${t.url}/graphql?query=${q}`, { headers: { 'apollo-require-preflight': 'true' } });
    expect(res.status).toBe(405);
  });
});

describe('query limits over HTTP', () => {
  it('refuses too many aliases', async () => {
    const res = await post({ query: '{ a: serviceInfo { version } b: serviceInfo { version } c: serviceInfo { version } d: serviceInfo { version } }' });
    expect(res.body.errors?.[0]?.extensions?.['code'], JSON.stringify(res.body)).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(res.body.data ?? null).toBeNull();
  });

  it('refuses queries deeper than the limit', async () => {
    const ok = await post({ query: '{ serviceInfo { version } }' });
    expect(ok.body.errors, JSON.stringify(ok.body)).toBeUndefined();
    const res = await post({ query: 'mutation { createClient(input: { name: "x", roles: [VIEWER] }) { client { id } } }' });
    expect(res.body.errors?.[0]?.extensions?.['code'], JSON.stringify(res.body)).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(res.body.errors?.[0]?.message).toMatch(/depth/i);
  });

  it('refuses documents over the token limit as a parse failure', async () => {
    const res = await post({ query: `{ ${'serviceInfo { version } '.repeat(60)} }` });
    expect(res.body.errors?.[0]?.extensions?.['code'], JSON.stringify(res.body)).toBe('GRAPHQL_PARSE_FAILED');
    expect(res.body.errors?.[0]?.message).toMatch(/200 tokens/);
  });

  it('serves introspection by default outside production', async () => {
    const res = await post({ query: '{ __schema { queryType { name } } }' });
    expect(res.body).toEqual({ data: { __schema: { queryType: { name: 'Query' } } } });
  });
});

describe('graphql-ws on the same path', () => {
  function closeOf(params: Record<string, unknown>): Promise<{ code: number; reason: string }> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`${t.url.replace('http', 'ws')}/graphql`, 'graphql-transport-ws');
      ws.on('open', () => ws.send(JSON.stringify({ type: 'connection_init', payload: params })));
      ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
      ws.on('error', reject);
    });
  }

  it('closes with 4401 when connectionParams carry no token', async () => {
    const { code, reason } = await closeOf({});
    expect(code).toBe(4401);
    expect(reason).toMatch(/Unauthorized/);
  });

  it('closes with 4403 when the token is refused', async () => {
    expect((await closeOf({ authorization: 'Bearer not.a.token' })).code).toBe(4403);
  });

  it('streams a subscription for a valid token and completes', async () => {
    const client = t.admin;
    const seqs: number[] = [];
    for await (const result of client.subscribe(HeartbeatDocument, { intervalMs: 20, count: 3 })) {
      expect(result.errors).toBeUndefined();
      seqs.push(result.data!.heartbeat.seq);
    }
    expect(seqs).toEqual([1, 2, 3]);
  });

  it('applies the same limits and error codes to WebSocket operations', async () => {
    const client = t.admin;
    const it1 = client.subscribe(HeartbeatDocument, { intervalMs: 1, count: 3 });
    const first = await it1.next();
    expect(first.value?.errors?.[0]?.extensions?.['code'], JSON.stringify(first.value)).toBe('BAD_USER_INPUT');
    // graphql-ws delivers request errors as an `error` message, which the client iterator throws.
    const rejected = async (doc: string) => {
      try {
        await client.subscribe(parse(doc) as never).next();
      } catch (errors) {
        return errors as Array<{ message: string; extensions?: { code?: string } }>;
      }
      throw new Error('expected the operation to be refused');
    };
    const limited = await rejected('{ a: serviceInfo { version } b: serviceInfo { version } c: serviceInfo { version } d: serviceInfo { version } }');
    expect(limited[0]?.extensions?.code, JSON.stringify(limited)).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(limited[0]?.message).toMatch(/Aliases limit of 3/);
    const raw = createClient({
      url: `${t.url.replace('http', 'ws')}/graphql`,
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${client.options.token}` },
    });
    const unparsable = await raw
      .iterate({ query: '{ serviceInfo { ' })
      .next()
      .then(
        () => [] as Array<{ extensions?: { code?: string } }>,
        (errors: Array<{ extensions?: { code?: string } }>) => errors,
      );
    await raw.dispose();
    expect(unparsable[0]?.extensions?.code, JSON.stringify(unparsable)).toBe('GRAPHQL_PARSE_FAILED');
    const single = client.subscribe(parse('{ serviceInfo { version } }') as never);
    const ok = await single.next();
    expect(ok.value).toMatchObject({ data: { serviceInfo: { version: expect.any(String) } } });
    const { me } = await client.request(MeDocument);
    expect(me.clientId).toBe(ADMIN_ID);
  });
});

describe('requests outside the routes: upgrades, CONNECT, malformed HTTP, Expect', () => {
  // What `curl --http2 http://…` sends: an offer to switch to cleartext HTTP/2.
  const h2c = { Host: 'sluice.test', Connection: 'Upgrade, HTTP2-Settings', Upgrade: 'h2c', 'HTTP2-Settings': 'AAMAAABkAAQCAAAAAAIAAAAA' };

  it('answers requests that offer an upgrade it does not serve (h2c) in HTTP/1.1: a body sent after the head, and the requests after them', async () => {
    const body = JSON.stringify({ query: '{ __typename }' });
    const head = rawHttpRequest('POST', '/graphql', { ...h2c, 'Content-Type': 'application/json', 'Content-Length': String(body.length) });
    const { responses, closed } = await rawExchange(
      t.url,
      [head, body, rawHttpRequest('GET', '/healthz', h2c), rawHttpRequest('GET', '/nope', { Host: 'sluice.test', Connection: 'close' })],
      { responses: 3, gapMs: 50 },
    );
    expect(responses.map((r) => r.status)).toEqual([200, 200, 404]);
    expect(JSON.parse(responses[0]!.body)).toEqual({ data: { __typename: 'Query' } });
    expect(JSON.parse(responses[1]!.body)).toMatchObject({ status: 'ok' });
    expect(codeOf(JSON.parse(responses[2]!.body))).toBe('NOT_FOUND');
    expect(closed).toBe(false);
  });

  it('takes WebSocket handshakes on the GraphQL path only: elsewhere the request is served as HTTP', async () => {
    const ws = {
      Host: 'sluice.test',
      Connection: 'Upgrade',
      Upgrade: 'websocket',
      'Sec-WebSocket-Version': '13',
      'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
    };
    const { responses } = await rawExchange(t.url, [rawHttpRequest('GET', '/healthz', ws)], { responses: 1 });
    expect(responses[0]?.status).toBe(200);
    expect(JSON.parse(responses[0]!.body)).toMatchObject({ status: 'ok' });
    // A POST cannot open a WebSocket: answered as the GraphQL request it is.
    const body = JSON.stringify({ query: '{ __typename }' });
    const post = await rawExchange(t.url, [rawHttpRequest('POST', '/graphql', { ...ws, 'Content-Type': 'application/json' }, body)], { responses: 1 });
    expect(JSON.parse(post.responses[0]!.body)).toEqual({ data: { __typename: 'Query' } });
    // And the handshake on /graphql is the WebSocket server's (101 Switching Protocols).
    const upgraded = await new Promise<number>((resolve, reject) => {
      const socket = new WebSocket(`${t.url.replace('http', 'ws')}/graphql`, 'graphql-transport-ws');
      socket.on('upgrade', (res) => {
        resolve(res.statusCode ?? 0);
        socket.terminate();
      });
      socket.on('error', reject);
    });
    expect(upgraded).toBe(101);
  });

  it.each([
    ['a request line that is not HTTP', 400, 'BAD_REQUEST', 'GARBAGE\r\n\r\n'],
    ['a control byte in the path', 400, 'BAD_REQUEST', 'GET /he\x01althz HTTP/1.1\r\nHost: x\r\n\r\n'],
    [
      'both Content-Length and Transfer-Encoding (smuggling)',
      400,
      'BAD_REQUEST',
      'POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    ],
    ['headers over 16 KiB', 431, 'PAYLOAD_TOO_LARGE', `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`],
  ])('answers %s with a JSON %i %s and closes the connection (it was a bare status line)', async (_what, status, code, bytes) => {
    const { responses, closed } = await rawExchange(t.url, [bytes], { responses: 2 });
    expect(responses).toHaveLength(1);
    expect(responses[0]?.status).toBe(status);
    expect(responses[0]?.headers['content-type']).toMatch(/application\/json/);
    expect(codeOf(JSON.parse(responses[0]!.body))).toBe(code);
    expect(closed).toBe(true);
  });

  it('answers a client that half-closes after its request (a database read, a GraphQL operation), then closes', async () => {
    const body = JSON.stringify({ query: '{ __typename }' });
    const readyz = await rawExchange(t.url, [rawHttpRequest('GET', '/readyz', { Host: 'x' })], { responses: 2, halfClose: true });
    expect(readyz.responses.map((r) => r.status)).toEqual([200]);
    expect(JSON.parse(readyz.responses[0]!.body)).toMatchObject({ status: 'ready' });
    expect(readyz.closed).toBe(true);
    const gql = await rawExchange(t.url, [rawHttpRequest('POST', '/graphql', { Host: 'x', 'Content-Type': 'application/json' }, body)], {
      responses: 2,
      halfClose: true,
    });
    expect(gql.responses.map((r) => JSON.parse(r.body))).toEqual([{ data: { __typename: 'Query' } }]);
    expect(gql.closed).toBe(true);
    // A request already complete when the JSON body parser runs (no body, the client's end read
    // meanwhile) is GraphQL's to answer, not a 500 from the Apollo adapter ("req.body is not set").
    const early = await rawExchange(t.url, [rawHttpRequest('GET', '/graphql', { Host: 'x', Authorization: 'Basic abc', 'Content-Length': '0' })], {
      responses: 2,
      halfClose: true,
    });
    expect(early.responses.map((r) => r.status)).toEqual([400]);
    expect(codeOf(JSON.parse(early.responses[0]!.body))).toBe('BAD_REQUEST');
  });

  it('answers an Expect other than 100-continue with a JSON 417, without reading the body', async () => {
    const head = rawHttpRequest('POST', '/graphql', { Host: 'x', Expect: 'tea', 'Content-Type': 'application/json', 'Content-Length': '1000000' });
    const { responses, closed } = await rawExchange(t.url, [head], { responses: 2 });
    expect(responses.map((r) => r.status)).toEqual([417]);
    expect(codeOf(JSON.parse(responses[0]!.body))).toBe('BAD_REQUEST');
    expect(closed).toBe(true);
  });

  it('answers a broken WebSocket handshake on /graphql (no key, another version) with a JSON 400 BAD_REQUEST (ws wrote text/html)', async () => {
    const base = { Host: 'x', Connection: 'Upgrade', Upgrade: 'websocket' };
    const noKey = await rawExchange(t.url, [rawHttpRequest('GET', '/graphql', { ...base, 'Sec-WebSocket-Version': '13' })], { responses: 2 });
    expect(noKey.responses.map((r) => r.status)).toEqual([400]);
    expect(codeOf(JSON.parse(noKey.responses[0]!.body))).toBe('BAD_REQUEST');
    expect(JSON.parse(noKey.responses[0]!.body).errors[0].message).toMatch(/Sec-WebSocket-Key/);
    const version = await rawExchange(
      t.url,
      [rawHttpRequest('GET', '/graphql', { ...base, 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version': '7' })],
      {
        responses: 2,
      },
    );
    expect(version.responses.map((r) => r.status)).toEqual([400]);
    expect(version.responses[0]?.headers['sec-websocket-version']).toBe('13, 8');
    expect(codeOf(JSON.parse(version.responses[0]!.body))).toBe('BAD_REQUEST');
    expect(version.closed).toBe(true);
  });

  it('answers CONNECT with a JSON 405 BAD_HTTP_METHOD and closes the connection (it is not a proxy)', async () => {
    const { responses, closed } = await rawExchange(t.url, ['CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n'], { responses: 2 });
    expect(responses[0]?.status).toBe(405);
    expect(responses[0]?.headers['content-type']).toMatch(/application\/json/);
    expect(codeOf(JSON.parse(responses[0]!.body))).toBe('BAD_HTTP_METHOD');
    expect(closed).toBe(true);
  });
});
