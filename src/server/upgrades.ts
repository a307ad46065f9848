import type http from 'node:http';
import type { Duplex } from 'node:stream';
import { ErrorCode } from '../shared/errors';

/**
 * Requests that ask to switch protocols, and CONNECT, on Sluice's HTTP servers.
 *
 * Why: Node hands every request that carries `Connection: upgrade` and an `Upgrade` header to the
 * server's 'upgrade' listeners once there is one (graphql-ws's WebSocket server is one), whatever
 * the path or the protocol asked for; `ws` then refused anything that was not its own handshake
 * with a text/html 400 or 405. So `curl --http2 http://…/healthz`, which offers `Upgrade: h2c`, was
 * refused (400 "Invalid Upgrade header"), and a GraphQL POST offering h2c got 405. A server may
 * ignore an upgrade it does not want and answer in HTTP/1.1 (RFC 9110 §7.8): now only a WebSocket
 * handshake (GET, `Upgrade: websocket`) on the GraphQL path goes to the WebSocket server, and any
 * other request is served as if it had not asked, by the same routes as every request. And a
 * CONNECT, which Node closes unanswered when nobody listens for it, gets a JSON 405.
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

/** The JSON answer to a CONNECT (Sluice is not a proxy), on the raw socket; the connection then closes. */
function refuseConnect(socket: Duplex): void {
  socket.on('error', () => undefined);
  const body = JSON.stringify({
    errors: [{ message: 'CONNECT is not supported: Sluice is not a proxy', extensions: { code: ErrorCode.BAD_HTTP_METHOD } }],
  });
  socket.end(
    `HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD, POST\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/**
 * Installs the upgrade and CONNECT handling on `server`. `websocketPath`: where WebSocket
 * handshakes go to the handler set with `acceptWebSockets` (none: every upgrade is ignored).
 * A request that is not served by an upgrade is given back to `server` on the same socket, its
 * head without the upgrade and the bytes Node read after it (`head`: the body's start, or further
 * pipelined requests) in front, so it meets the server's usual parser, limits and routes.
 */
export function handleUpgrades(server: http.Server, websocketPath: string | null = null): { acceptWebSockets(upgrade: WebSocketUpgrade | null): void } {
  let websockets: WebSocketUpgrade | null = null;
  server.on('connect', (_req: http.IncomingMessage, socket: Duplex) => refuseConnect(socket));
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    if (websockets !== null && websocketPath !== null && isWebSocketHandshake(req, websocketPath)) {
      websockets(req, socket, head);
      return;
    }
    socket.unshift(head.length > 0 ? Buffer.concat([headWithoutUpgrade(req), head]) : headWithoutUpgrade(req));
    server.emit('connection', socket);
  });
  return {
    acceptWebSockets(upgrade) {
      websockets = upgrade;
    },
  };
}
