import type http from 'node:http';
import type { Duplex } from 'node:stream';
import { ErrorCode } from '../shared/errors';
import { sendJsonError } from './graphql-json';

/**
 * What Sluice's HTTP servers answer outside their routes: requests that ask to switch protocols,
 * CONNECT, requests Node's parser refuses, and `Expect` values other than 100-continue. Each gets
 * a JSON answer with a stable code, as every other refusal does; Node's own answers to them are a
 * bare status line (400, 431, 408, 417) or, for CONNECT, a closed connection. And a client that
 * half-closes after its request still gets the answer.
 *
 * Upgrades. Node hands every request that carries `Connection: upgrade` and an `Upgrade` header to
 * the server's 'upgrade' listeners once there is one (graphql-ws's WebSocket server is one),
 * whatever the path or the protocol asked for; `ws` then refused anything that was not its own
 * handshake with a text/html 400 or 405. So `curl --http2 http://…/healthz`, which offers
 * `Upgrade: h2c`, was refused (400 "Invalid Upgrade header"), and a GraphQL POST offering h2c got
 * 405. A server may ignore an upgrade it does not want and answer in HTTP/1.1 (RFC 9110 §7.8):
 * only a WebSocket handshake (GET, `Upgrade: websocket`) on the GraphQL path goes to the
 * WebSocket server, and any other request is served as if it had not asked, by the same routes.
 */

/** Receives the WebSocket handshakes on the GraphQL path (the WebSocketServer's handleUpgrade). */
export type WebSocketUpgrade = (req: http.IncomingMessage, socket: Duplex, head: Buffer) => void;

/** Whether `req` is a WebSocket handshake for `path`: GET, `Upgrade: websocket`, that path (any query). */
export function isWebSocketHandshake(req: http.IncomingMessage, path: string): boolean {
  if (req.method !== 'GET') return false;
  const url = req.url ?? '';
  const q = url.indexOf('?');
  if ((q === -1 ? url : url.slice(0, q)) !== path) return false;
  const upgrade = req.headers.upgrade;
  return typeof upgrade === 'string' && upgrade.split(',').some((p) => p.trim().toLowerCase() === 'websocket');
}

/**
 * The request's head as it came, without what asks for the upgrade: the `Upgrade` header and the
 * `upgrade` token of `Connection` (the header goes when nothing else is left in it). Names,
 * values and order are kept byte for byte (Node gave them to us as latin1), so the framing headers
 * (Content-Length, Transfer-Encoding) say what they said.
 */
export function headWithoutUpgrade(req: http.IncomingMessage): Buffer {
  const lines = [`${req.method ?? 'GET'} ${req.url ?? '/'} HTTP/${req.httpVersion}`];
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    const lower = name.toLowerCase();
    if (lower === 'upgrade') continue;
    if (lower === 'connection') {
      const kept = value
        .split(',')
        .map((t) => t.trim())
        .filter((t) => t !== '' && t.toLowerCase() !== 'upgrade');
      if (kept.length > 0) lines.push(`${name}: ${kept.join(', ')}`);
      continue;
    }
    lines.push(`${name}: ${value}`);
  }
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
}

/**
 * Writes `answer` (rawJsonError) on a raw socket and closes it once written. The server's sockets
 * allow half-open connections, so it does not wait for the peer's end; a peer gone already is no error.
 */
export function answerAndClose(socket: Duplex, answer: string): void {
  socket.on('error', () => undefined);
  socket.end(answer);
  socket.once('finish', () => socket.destroy());
}

/** The JSON answer to a CONNECT (Sluice is not a proxy), on the raw socket; the connection then closes. */
function refuseConnect(socket: Duplex): void {
  answerAndClose(
    socket,
    rawJsonError(405, 'Method Not Allowed', ErrorCode.BAD_HTTP_METHOD, 'CONNECT is not supported: Sluice is not a proxy', 'Allow: GET, HEAD, POST\r\n'),
  );
}

/** A JSON error answer as raw bytes, for a socket no ServerResponse writes to; it says the connection closes. */
export function rawJsonError(status: number, reason: string, code: ErrorCode, message: string, extraHeaders = ''): string {
  const body = JSON.stringify({ errors: [{ message, extensions: { code } }] });
  return `HTTP/1.1 ${status} ${reason}\r\n${extraHeaders}Content-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
}

/** What a request the parser refused is told, by Node's error code (Node's own choice of status, with a body). */
function clientErrorAnswer(code: string | undefined): string {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return rawJsonError(431, 'Request Header Fields Too Large', ErrorCode.PAYLOAD_TOO_LARGE, 'The request line and headers exceed 16 KiB');
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return rawJsonError(413, 'Payload Too Large', ErrorCode.PAYLOAD_TOO_LARGE, 'The chunk extensions exceed 16 KiB');
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return rawJsonError(408, 'Request Timeout', ErrorCode.REQUEST_TIMEOUT, 'The request did not arrive in time');
    default:
      return rawJsonError(400, 'Bad Request', ErrorCode.BAD_REQUEST, 'The request is not valid HTTP/1.1');
  }
}

/**
 * A request Node's parser refused (malformed, too large a head, both Content-Length and
 * Transfer-Encoding, a timeout): answered as Node would, with a JSON body, unless a response is
 * already on its way on that connection (then only closed, so no answer is corrupted), and the
 * connection closed once the answer is written.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  // Node's own condition for answering: nothing of an in-flight response written yet.
  const inFlight = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (err.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) {
    socket.destroy();
    return;
  }
  answerAndClose(socket, clientErrorAnswer(err.code));
}

/**
 * Installs this file's handling on `server`. `websocketPath`: where WebSocket handshakes go to
 * the handler set with `acceptWebSockets` (until one is set, every upgrade is ignored). A request that is not
 * served by an upgrade is given back to `server` on the same socket, its head without the upgrade
 * and the bytes Node read after it (`head`: the body's start, or further pipelined requests) in
 * front, so it meets the server's usual parser, limits and routes.
 */
export function handleHttpEdges(server: http.Server, websocketPath: string | null = null): { acceptWebSockets(upgrade: WebSocketUpgrade): void } {
  let websockets: WebSocketUpgrade | null = null;
  // A client that half-closes after its request (`shutdown(SHUT_WR)`: `printf … | nc -N`, some
  // HTTP/1.0 tools) gets its answer, then the connection closes. Node's default ends the socket
  // at the client's end, so every answer that was not written in the same tick (a database read,
  // any GraphQL operation) was dropped unanswered. Node's own switch for it (undocumented; see
  // socketOnEnd in Node's _http_server.js): the in-flight response is marked the connection's last.
  (server as http.Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
  server.on('connect', (_req: http.IncomingMessage, socket: Duplex) => refuseConnect(socket));
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    if (websockets !== null && websocketPath !== null && isWebSocketHandshake(req, websocketPath)) {
      websockets(req, socket, head);
      return;
    }
    // A client gone meanwhile (reset while the head was read) has nothing left to answer.
    if (socket.destroyed) return;
    socket.unshift(head.length > 0 ? Buffer.concat([headWithoutUpgrade(req), head]) : headWithoutUpgrade(req));
    server.emit('connection', socket);
  });
  server.on('clientError', answerClientError);
  // `Expect` other than 100-continue (Node answers those itself): 417, and the body is not read.
  server.on('checkExpectation', (_req: http.IncomingMessage, res: http.ServerResponse) =>
    sendJsonError(res, 417, ErrorCode.BAD_REQUEST, 'Only "Expect: 100-continue" is supported', { connection: 'close' }),
  );
  return {
    acceptWebSockets(upgrade) {
      websockets = upgrade;
    },
  };
}
