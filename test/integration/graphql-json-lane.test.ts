import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import express from 'express';
import { beforeAll, describe, expect, it } from 'vitest';
import { clientAddress, takesRequest } from '../../src/server/graphql-json';
import { startTestApp, type TestApp } from '../helpers/app';

/**
 * The GraphQL JSON lane (src/server/graphql-json.ts) answers plain JSON POSTs to /graphql without
 * express. Every request here is sent, byte for byte, to a service with the lane and to one
 * without it (SLUICE_GRAPHQL_JSON_LANE=false): the answers must be the same.
 */

let lane: TestApp;
let plain: TestApp;
let token: string;
beforeAll(async () => {
  [lane, plain] = await Promise.all([startTestApp(), startTestApp({ SLUICE_GRAPHQL_JSON_LANE: 'false' })]);
  token = lane.admin.options.token!;
});

interface Raw {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

/** One raw request: `headers` exactly as given (no content-length unless given or `chunked`). */
function send(
  base: string,
  opts: { method?: string; path?: string; headers: Record<string, string>; body?: Buffer | string; chunked?: boolean },
): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const url = new URL(opts.path ?? '/graphql', base);
    const body = opts.body === undefined ? undefined : Buffer.from(opts.body);
    const headers: Record<string, string> = { ...opts.headers };
    if (body && !opts.chunked && headers['content-length'] === undefined) headers['content-length'] = String(body.length);
    const req = http.request(url, { method: opts.method ?? 'POST', headers, agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(parts).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (body && opts.chunked) {
      req.write(body.subarray(0, 5));
      req.end(body.subarray(5));
    } else req.end(body);
  });
}

/** What must be the same on both paths: status, media type, caching, and the body (data; each error's code and message). */
function answer(r: Raw) {
  let body: unknown = r.text;
  try {
    const json = JSON.parse(r.text) as { data?: unknown; errors?: Array<{ message: string; extensions?: { code?: unknown } }> };
    body = { data: json.data, errors: json.errors?.map((e) => ({ code: e.extensions?.code, message: e.message })) };
  } catch {}
  return { status: r.status, type: r.headers['content-type'], cacheControl: r.headers['cache-control'], body };
}

const JSON_TYPE = { 'content-type': 'application/json' };
const query = (q: string, extra: Record<string, unknown> = {}) => JSON.stringify({ query: q, ...extra });

const cases: Array<{ name: string; req: () => Parameters<typeof send>[1]; expect: { status: number; code?: string } }> = [
  { name: 'a public query', req: () => ({ headers: JSON_TYPE, body: query('{ serviceInfo { version } }') }), expect: { status: 200 } },
  {
    name: 'an authenticated query with variables',
    req: () => ({
      headers: { ...JSON_TYPE, authorization: `Bearer ${token}` },
      body: query('query F($n: Int) { files(first: $n) { totalCount } }', { variables: { n: 1 } }),
    }),
    expect: { status: 200 },
  },
  {
    name: 'a query needing a token, without one',
    req: () => ({ headers: JSON_TYPE, body: query('{ files(first: 1) { totalCount } }') }),
    expect: { status: 200, code: 'UNAUTHENTICATED' },
  },
  {
    name: 'a forged token',
    req: () => ({ headers: { ...JSON_TYPE, authorization: 'Bearer x.y.z' }, body: query('{ files(first: 1) { totalCount } }') }),
    expect: { status: 200, code: 'UNAUTHENTICATED' },
  },
  {
    name: 'a charset named in the media type',
    req: () => ({ headers: { 'content-type': 'Application/JSON; Charset=UTF-8' }, body: query('{ __typename }') }),
    expect: { status: 200 },
  },
  { name: 'a query string on the path', req: () => ({ path: '/graphql?x=1', headers: JSON_TYPE, body: query('{ __typename }') }), expect: { status: 200 } },
  { name: 'a byte order mark before the JSON', req: () => ({ headers: JSON_TYPE, body: `\uFEFF${query('{ __typename }')}` }), expect: { status: 200 } },
  {
    name: 'a syntax error in the query',
    req: () => ({ headers: JSON_TYPE, body: query('{ serviceInfo {') }),
    expect: { status: 400, code: 'GRAPHQL_PARSE_FAILED' },
  },
  { name: 'JSON cut short', req: () => ({ headers: JSON_TYPE, body: '{"query": "{ __typename }"' }), expect: { status: 400, code: 'BAD_REQUEST' } },
  { name: 'a JSON string, not an object', req: () => ({ headers: JSON_TYPE, body: '"{ __typename }"' }), expect: { status: 400, code: 'BAD_REQUEST' } },
  { name: 'whitespace, then a number', req: () => ({ headers: JSON_TYPE, body: ' \n\t7' }), expect: { status: 400, code: 'BAD_REQUEST' } },
  { name: 'whitespace alone', req: () => ({ headers: JSON_TYPE, body: '   ' }), expect: { status: 400, code: 'BAD_REQUEST' } },
  { name: 'a JSON number', req: () => ({ headers: JSON_TYPE, body: '42' }), expect: { status: 400, code: 'BAD_REQUEST' } },
  { name: 'an empty object', req: () => ({ headers: JSON_TYPE, body: '{}' }), expect: { status: 400, code: 'BAD_REQUEST' } },
  { name: 'a batch (refused)', req: () => ({ headers: JSON_TYPE, body: `[${query('{ __typename }')}]` }), expect: { status: 400, code: 'BAD_REQUEST' } },
  {
    name: 'variables that are not an object',
    req: () => ({ headers: JSON_TYPE, body: query('{ __typename }', { variables: 'x' }) }),
    expect: { status: 400, code: 'BAD_REQUEST' },
  },
  { name: 'an empty body', req: () => ({ headers: { ...JSON_TYPE, 'content-length': '0' }, body: '' }), expect: { status: 400, code: 'BAD_REQUEST' } },
  { name: 'a chunked body (no length)', req: () => ({ headers: JSON_TYPE, body: query('{ __typename }'), chunked: true }), expect: { status: 200 } },
  {
    name: 'a gzip body',
    req: () => ({ headers: { ...JSON_TYPE, 'content-encoding': 'gzip' }, body: gzipSync(query('{ __typename }')) }),
    expect: { status: 200 },
  },
  {
    name: 'a Latin-1 charset',
    req: () => ({ headers: { 'content-type': 'application/json; charset=latin1' }, body: query('{ __typename }') }),
    expect: { status: 415, code: 'BAD_REQUEST' },
  },
  {
    name: 'text/plain (CSRF prevention)',
    req: () => ({ headers: { 'content-type': 'text/plain' }, body: query('{ __typename }') }),
    expect: { status: 400, code: 'BAD_REQUEST' },
  },
  {
    name: 'a body over 2 MiB',
    req: () => ({ headers: JSON_TYPE, body: query('{ __typename }', { pad: 'x'.repeat(2 * 1024 * 1024) }) }),
    expect: { status: 413, code: 'PAYLOAD_TOO_LARGE' },
  },
  {
    name: 'a NUL in a variable',
    req: () => ({ headers: JSON_TYPE, body: query('query Q($s: String) { __typename }', { variables: { s: 'a\u0000b' } }) }),
    expect: { status: 400, code: 'GRAPHQL_VALIDATION_FAILED' },
  },
];

describe('the GraphQL JSON lane', () => {
  it.each(cases)('answers $name as express does', async (c) => {
    const [a, b] = [await send(lane.url, c.req()), await send(plain.url, c.req())];
    expect(answer(a), a.text).toEqual(answer(b));
    expect(a.status, a.text).toBe(c.expect.status);
    if (c.expect.code) expect((JSON.parse(a.text) as { errors: Array<{ extensions: { code: string } }> }).errors[0]?.extensions.code).toBe(c.expect.code);
    if (c.expect.status === 200 && !c.expect.code) expect(JSON.parse(a.text)).toHaveProperty('data');
  });

  it('is the path a plain JSON POST takes (express would add an ETag; the lane does not)', async () => {
    const body = query('{ __typename }');
    const viaLane = await send(lane.url, { headers: JSON_TYPE, body });
    const viaExpress = await send(plain.url, { headers: JSON_TYPE, body });
    expect(viaLane.headers['etag']).toBeUndefined();
    expect(viaExpress.headers['etag']).toBeDefined();
    // What falls back to express there gets express's answer, ETag included.
    expect((await send(lane.url, { headers: JSON_TYPE, body, chunked: true })).headers['etag']).toBeDefined();
  });

  it('takes only POSTs to the path with a plain JSON body of a stated length within 2 MiB', () => {
    const req = (method: string, url: string, headers: Record<string, string>) => ({ method, url, headers }) as unknown as http.IncomingMessage;
    const ok = { 'content-type': 'application/json', 'content-length': '20' };
    expect(takesRequest(req('POST', '/graphql', ok), '/graphql')).toBe(true);
    expect(takesRequest(req('POST', '/graphql?a=1', ok), '/graphql')).toBe(true);
    expect(takesRequest(req('POST', '/graphql', { ...ok, 'content-type': 'application/json;charset="utf-8"' }), '/graphql')).toBe(true);
    expect(takesRequest(req('GET', '/graphql', ok), '/graphql')).toBe(false);
    expect(takesRequest(req('POST', '/graphqlx', ok), '/graphql')).toBe(false);
    expect(takesRequest(req('POST', '/graphql/', ok), '/graphql')).toBe(false);
    expect(takesRequest(req('POST', '/graphql', { ...ok, 'content-type': 'application/graphql-response+json' }), '/graphql')).toBe(false);
    expect(takesRequest(req('POST', '/graphql', { ...ok, 'content-type': 'multipart/form-data; boundary=x' }), '/graphql')).toBe(false);
    expect(takesRequest(req('POST', '/graphql', { ...ok, 'content-type': 'application/json; charset=utf-16' }), '/graphql')).toBe(false);
    expect(takesRequest(req('POST', '/graphql', { ...ok, 'content-encoding': 'br' }), '/graphql')).toBe(false);
    expect(takesRequest(req('POST', '/graphql', { ...ok, 'transfer-encoding': 'chunked' }), '/graphql')).toBe(false);
    expect(takesRequest(req('POST', '/graphql', { 'content-type': 'application/json' }), '/graphql')).toBe(false);
    expect(takesRequest(req('POST', '/graphql', { ...ok, 'content-length': '0' }), '/graphql')).toBe(false);
    expect(takesRequest(req('POST', '/graphql', { ...ok, 'content-length': String(2 * 1024 * 1024 + 1) }), '/graphql')).toBe(false);
    expect(takesRequest(req('POST', '/graphql', { ...ok, 'content-length': '1e3' }), '/graphql')).toBe(false);
  });

  it("finds the client's address as express's req.ip does, for every trusted hop count", async () => {
    const seen: Array<{ express: string | undefined; lane: string | undefined }> = [];
    for (const hops of [0, 1, 2, 5]) {
      const app = express();
      app.set('trust proxy', hops || false);
      app.get('/', (req, res) => {
        seen.push({ express: req.ip, lane: clientAddress(req, hops) });
        res.end();
      });
      const server = http.createServer(app);
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      try {
        for (const xff of [
          undefined,
          '203.0.113.7',
          '203.0.113.7, 198.51.100.2',
          ' 203.0.113.7 ,, 198.51.100.2,10.0.0.1',
          '203.0.113.7,\t198.51.100.2 ',
          '2001:db8::1, 198.51.100.2',
        ]) {
          await send(base, { method: 'GET', path: '/', headers: xff === undefined ? {} : { 'x-forwarded-for': xff } });
        }
      } finally {
        await new Promise((r) => server.close(r));
      }
    }
    expect(seen).toHaveLength(24);
    for (const s of seen) expect(s.lane).toBe(s.express);
    // Not trivially the socket's address: with hops, a forwarded address is chosen.
    expect(seen.some((s) => s.lane === '203.0.113.7')).toBe(true);
  });
});
