import type { IncomingMessage, ServerResponse } from 'node:http';
import { type ApolloServer, HeaderMap } from '@apollo/server';
import { ErrorCode } from '../shared/errors';
import type { Logger } from '../shared/logger';
import { type AccessLogSink, startAccessRecord } from './access-log';
import type { Context } from './context';

/**
 * The GraphQL JSON lane: a `POST /graphql` with a plain JSON body (what the SDK, the CLI, GraphiQL
 * and curl send for every query and mutation but uploads) goes from node:http straight to Apollo,
 * without express's router and body parser. Why: measured on 2 cores, express 5 costs about
 * 150 us of CPU per request before any GraphQL work (a `/healthz` answer: ~80 us on node:http,
 * ~240 us through express, client included), a quarter of an authenticated `files(first: 10)`
 * read, on the event loop that an import's upload also needs.
 *
 * The lane takes only what it answers exactly as the express path does, decided from the headers
 * before a byte of the body is read: anything else (another method, path or media type, a
 * charset other than UTF-8, a Content-Encoding, no or a too large Content-Length, multipart
 * uploads) goes to express untouched. What the lane does itself is what express did for these
 * requests: the access line and request metrics, `req.ip` behind SLUICE_TRUST_PROXY_HOPS proxies,
 * the 2 MiB body limit, body-parser's strict JSON (an object or array, else 400 BAD_REQUEST), and
 * Apollo's answer (CSRF prevention, errors, cache-control) written as it comes.
 */

/** The longest JSON body taken (express.json({ limit: '2mb' }) before; the fallback keeps it too). */
export const GRAPHQL_JSON_LIMIT_BYTES = 2 * 1024 * 1024;

export interface GraphqlJsonLaneOptions {
  apollo: ApolloServer<Context>;
  path: string;
  context: (req: IncomingMessage, remoteAddress: string | undefined) => Promise<Context>;
  /** Proxies whose X-Forwarded-For is trusted (express's `trust proxy` hop count; 0: the socket's address). */
  trustProxyHops: number;
  access: AccessLogSink;
  log: Logger;
}

/** `application/json`, alone or with a UTF-8 charset (any case, optional spaces). */
const PLAIN_JSON = /^application\/json\s*(?:;\s*charset\s*=\s*"?utf-8"?\s*)?$/i;

/**
 * Whether the lane answers `req` (decided from the request line and headers alone). Exported for
 * the tests, which check that everything else reaches express.
 */
export function takesRequest(req: IncomingMessage, path: string): boolean {
  if (req.method !== 'POST') return false;
  const url = req.url ?? '';
  if (url !== path && !url.startsWith(`${path}?`)) return false;
  const h = req.headers;
  if (!PLAIN_JSON.test(h['content-type'] ?? '')) return false;
  const encoding = h['content-encoding'];
  if (encoding !== undefined && encoding.toLowerCase() !== 'identity') return false;
  if (h['transfer-encoding'] !== undefined) return false;
  const length = h['content-length'];
  if (length === undefined || !/^\d{1,8}$/.test(length)) return false;
  const n = Number(length);
  return n > 0 && n <= GRAPHQL_JSON_LIMIT_BYTES;
}

/**
 * The client's address as express computes `req.ip` with `trust proxy` set to a hop count
 * (proxy-addr): the socket's address, then X-Forwarded-For from the right, stopping at the first
 * untrusted hop.
 */
export function clientAddress(req: IncomingMessage, trustProxyHops: number): string | undefined {
  const socketAddress = req.socket.remoteAddress;
  if (trustProxyHops <= 0) return socketAddress;
  const header = req.headers['x-forwarded-for'];
  const chain = [socketAddress, ...forwardedFromRight(Array.isArray(header) ? header.join(', ') : (header ?? ''))];
  return chain[Math.min(trustProxyHops, chain.length - 1)];
}

/** X-Forwarded-For's addresses, nearest hop first, split as the `forwarded` package does (spaces trimmed, empty entries skipped). */
function forwardedFromRight(header: string): string[] {
  const list: string[] = [];
  let end = header.length;
  let start = header.length;
  for (let i = header.length - 1; i >= 0; i--) {
    const c = header.charCodeAt(i);
    if (c === 0x20) {
      if (start === end) start = end = i;
    } else if (c === 0x2c) {
      if (start !== end) list.push(header.substring(start, end));
      start = end = i;
    } else start = i;
  }
  if (start !== end) list.push(header.substring(start, end));
  return list;
}

/** A JSON error answer on a node:http response (`headers`: more to send, e.g. `connection: close`). */
export function sendJsonError(res: ServerResponse, status: number, code: ErrorCode, message: string, headers: Record<string, string> = {}): void {
  const body = JSON.stringify({ errors: [{ message, extensions: { code } }] });
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

const FIRST_NON_WHITESPACE = /^[\x20\x09\x0a\x0d]*([^\x20\x09\x0a\x0d]|$)/;

/**
 * body-parser's strict JSON (express.json's default), with its error messages: an empty body is
 * `{}`, and a body that is not an object or an array is refused with the SyntaxError JSON.parse
 * would give at its first character.
 */
export function parseStrictJson(body: string): unknown {
  if (body.length === 0) return {};
  if (body[0] !== '{' && body[0] !== '[') {
    const first = FIRST_NON_WHITESPACE.exec(body)?.[1] || undefined;
    if (first !== '{' && first !== '[') {
      const index = first === undefined ? -1 : body.indexOf(first);
      const partial = index === -1 ? '' : body.slice(0, index) + '#'.repeat(body.length - index);
      try {
        JSON.parse(partial);
      } catch (err) {
        throw new SyntaxError((err as Error).message.replace(/#+/g, (p) => body.substring(index, index + p.length)));
      }
      throw new SyntaxError('strict violation');
    }
  }
  return JSON.parse(body);
}

/**
 * The lane's handler: returns false (having touched nothing) when express should take the request.
 */
export function graphqlJsonLane(opts: GraphqlJsonLaneOptions): (req: IncomingMessage, res: ServerResponse) => boolean {
  const { apollo, path, log } = opts;
  return (req, res) => {
    if (!takesRequest(req, path)) return false;
    startAccessRecord(opts.access, req, res, path);
    const expected = Number(req.headers['content-length']);
    const chunks: Buffer[] = [];
    let received = 0;
    const onData = (chunk: Buffer) => {
      received += chunk.length;
      // More than announced: not a body this lane (or HTTP) would take.
      if (received > expected) {
        req.off('data', onData);
        req.off('end', onEnd);
        res.shouldKeepAlive = false;
        sendJsonError(res, 400, ErrorCode.BAD_REQUEST, 'request size did not match content length');
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      if (received !== expected) {
        if (!res.headersSent) sendJsonError(res, 400, ErrorCode.BAD_REQUEST, 'request size did not match content length');
        return;
      }
      const text = (chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, received)).toString('utf8');
      let body: unknown;
      try {
        // A byte order mark is dropped, as body-parser's decoding drops it.
        body = parseStrictJson(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
      } catch (err) {
        sendJsonError(res, 400, ErrorCode.BAD_REQUEST, err instanceof Error ? err.message : 'Bad request');
        return;
      }
      answer(req, res, body).catch((err: unknown) => {
        log.error({ err }, 'unhandled HTTP error');
        if (!res.headersSent) sendJsonError(res, 500, ErrorCode.INTERNAL_SERVER_ERROR, 'Internal server error');
        else res.destroy();
      });
    };
    req.on('data', onData);
    req.once('end', onEnd);
    return true;
  };

  async function answer(req: IncomingMessage, res: ServerResponse, body: unknown): Promise<void> {
    const headers = new HeaderMap();
    for (const [key, value] of Object.entries(req.headers)) {
      if (value !== undefined) headers.set(key, Array.isArray(value) ? value.join(', ') : value);
    }
    const url = req.url ?? path;
    const q = url.indexOf('?');
    const remoteAddress = clientAddress(req, opts.trustProxyHops);
    const response = await apollo.executeHTTPGraphQLRequest({
      httpGraphQLRequest: { method: 'POST', headers, search: q === -1 ? '' : url.slice(q), body },
      context: () => opts.context(req, remoteAddress),
    });
    if (res.destroyed) return;
    for (const [key, value] of response.headers) res.setHeader(key, value);
    res.statusCode = response.status ?? 200;
    if (response.body.kind === 'complete') {
      res.setHeader('content-length', Buffer.byteLength(response.body.string));
      res.end(response.body.string);
      return;
    }
    for await (const chunk of response.body.asyncIterator) res.write(chunk);
    res.end();
  }
}
