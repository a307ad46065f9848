import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { GraphQLError, getOperationAST, specifiedRules, type ExecutionArgs, type ExecutionResult, type GraphQLSchema } from 'graphql';
import { CloseCode, handleProtocols, makeServer } from 'graphql-ws';
import { WebSocket, WebSocketServer } from 'ws';
import type { ClientRevoked } from '../modules/clients/clients.store';
import type { Services } from '../services';
import type { Viewer } from '../shared/auth';
import { checkedVariables, documentHasNul, nulError, nulPath } from './plugins/refuse-nul';
import { ErrorCode, SluiceError } from '../shared/errors';
import type { Logger } from '../shared/logger';
import { MiB } from '../shared/units';
import type { Context } from './context';
import { formatError } from './errors';
import { type DirectSink, DocumentCache, sharedSubscribe } from './shared-execution';
import { GRAPHQL_PATH, type HttpServer } from './http';
import { answerAndClose, rawJsonError } from './http-edges';
import type { Limits } from './limits';

/** Close codes Sluice sends, beyond the protocol errors graphql-ws sends itself. */
export const WsCloseCode = {
  /** Going away: the server is shutting down. */
  GoingAway: 1001,
  /** Slow consumer: more than SLUICE_WS_MAX_BUFFERED_BYTES written and not taken by the network. Reconnect and resume (`afterSeq`). */
  SlowConsumer: 1013,
  /** No token in connectionParams, or the token reached its `exp` while connected. */
  Unauthorized: CloseCode.Unauthorized, // 4401
  /** A token was presented and refused (forged, wrong audience, revoked client), or the client was revoked while connected. */
  Forbidden: CloseCode.Forbidden, // 4403
  /** The client already holds SLUICE_WS_MAX_CONNECTIONS_PER_CLIENT connections on this instance. */
  TooManyConnections: 4429,
  /** Unexpected server error (logged). */
  InternalServerError: CloseCode.InternalServerError, // 4500
} as const;

export interface WsOptions {
  /** Authenticated connections one client may hold on this instance. */
  maxConnectionsPerClient: number;
  /**
   * Connections not acknowledged yet (connection_init not done, at most 10 s each) this instance
   * holds; a handshake beyond them gets 503. Why: they cost memory and a file descriptor before
   * any token is checked, so without a bound anyone could hold the descriptors every client needs.
   */
  maxPendingConnections: number;
  /** Operations running at once on one connection; the next one is refused with BAD_REQUEST. */
  maxSubscriptionsPerConnection: number;
  /** Bytes written to a socket and not yet taken by the network before it is closed as a slow consumer. */
  maxBufferedBytes: number;
  /**
   * Revocations committed on any instance (LISTEN/NOTIFY). `null`: the listener reconnected and
   * may have missed some, so every connected client is checked again.
   */
  revocations: { on(listener: (message: ClientRevoked | null) => void): () => void };
  /** Ping interval; a socket that does not answer within the next interval is dropped. Default 12 s. */
  keepAliveMs?: number;
}

/**
 * Subscription fields whose events are executed once for all subscriptions with the same
 * document and variables (see sharedSubscribe): their result depends on the event alone.
 */
const SHARED_EXECUTION_FIELDS: ReadonlySet<string> = new Set(['jobUpdated']);

/** How long a close frame may wait (behind a slow consumer's unsent bytes, or at shutdown) before the socket is dropped. */
const CLOSE_GRACE_MS = 2000;
/** setTimeout's largest delay; later expiries re-arm. */
const MAX_TIMER_MS = 2 ** 31 - 1;

type ConnExtra = { conn: Connection };

/** The connections of each client on this instance, for the per-client cap and for revocation. */
class Registry {
  private readonly byClient = new Map<string, Set<Connection>>();

  count(clientId: string): number {
    return this.byClient.get(clientId)?.size ?? 0;
  }

  add(conn: Connection, clientId: string): void {
    let set = this.byClient.get(clientId);
    if (!set) {
      set = new Set();
      this.byClient.set(clientId, set);
    }
    set.add(conn);
  }

  remove(conn: Connection): void {
    const clientId = conn.viewer?.clientId;
    if (clientId === undefined) return;
    const set = this.byClient.get(clientId);
    set?.delete(conn);
    if (set?.size === 0) this.byClient.delete(clientId);
  }

  of(clientId: string): Connection[] {
    return [...(this.byClient.get(clientId) ?? [])];
  }

  clientIds(): string[] {
    return [...this.byClient.keys()];
  }
}

/**
 * One graphql-ws socket: bounded send buffer, keepalive, token expiry timer. Closing it ends its
 * subscriptions at once (they are returned before the close handshake completes), so nothing is
 * delivered after the decision to close.
 */
class Connection {
  viewer?: Viewer;
  closing = false;
  /** graphql-ws's cleanup: returns every subscription. Set right after the socket is opened. */
  onRelease?: (code: number, reason: string) => void;
  private released = false;
  private expiryTimer?: NodeJS.Timeout;
  private pingTimer?: NodeJS.Timeout;
  private pongTimer?: NodeJS.Timeout;
  private dropTimer?: NodeJS.Timeout;

  constructor(
    readonly socket: WebSocket,
    private readonly registry: Registry,
    private readonly maxBufferedBytes: number,
    private readonly log: Logger,
    keepAliveMs: number,
  ) {
    if (keepAliveMs > 0 && Number.isFinite(keepAliveMs)) {
      this.pingTimer = setInterval(() => {
        if (socket.readyState !== WebSocket.OPEN || this.pongTimer) return;
        // A client that does not read (or a dead link) never answers: drop it.
        this.pongTimer = setTimeout(() => socket.terminate(), keepAliveMs);
        socket.once('pong', () => {
          clearTimeout(this.pongTimer);
          this.pongTimer = undefined;
        });
        socket.ping();
      }, keepAliveMs);
    }
  }

  /** The viewer's token has reached its `exp`. */
  get expired(): boolean {
    return this.viewer !== undefined && this.viewer.exp * 1000 <= Date.now();
  }

  /**
   * Writes without waiting for the network. The backlog is measured before the write, so one
   * message larger than the bound still goes to a client that keeps up; a client whose backlog
   * already passes the bound is closed instead of queueing more.
   */
  send(data: string): void {
    if (this.closing || this.socket.readyState !== WebSocket.OPEN) return;
    const buffered = this.socket.bufferedAmount;
    if (buffered > this.maxBufferedBytes) {
      this.log.warn({ clientId: this.viewer?.clientId, buffered, limit: this.maxBufferedBytes }, 'closing a slow WebSocket consumer');
      this.close(WsCloseCode.SlowConsumer, 'Slow consumer: too many unsent bytes');
      // A client that does not read will not read the close frame either: free its buffer.
      this.dropTimer = setTimeout(() => this.socket.terminate(), CLOSE_GRACE_MS);
      this.dropTimer.unref();
      return;
    }
    this.socket.send(data);
  }

  /**
   * Several messages in one write to the network (one syscall instead of one each), each still
   * checked against the backlog bound. ws corks the TCP socket around each frame; corking it
   * around all of them holds the frames until the last one.
   */
  sendAll(messages: readonly string[]): void {
    if (messages.length === 1) {
      this.send(messages[0]!);
      return;
    }
    // ws's own handle on the TCP socket (it corks it per frame the same way).
    const tcp = (this.socket as unknown as { _socket?: net.Socket })._socket;
    tcp?.cork();
    try {
      for (const m of messages) this.send(m);
    } finally {
      tcp?.uncork();
    }
  }

  close(code: number, reason: string): void {
    if (this.closing) return;
    this.closing = true;
    try {
      this.socket.close(code, reason);
    } catch (err) {
      this.log.warn({ err, code }, 'WebSocket close failed; dropping the socket');
      this.socket.terminate();
    }
    this.release(code, reason);
  }

  /** Closes with 4401 when the token reaches its `exp` (re-armed for expiries beyond one timer). */
  armExpiry(): void {
    const tick = () => {
      if (!this.viewer || this.closing) return;
      const ms = this.viewer.exp * 1000 - Date.now();
      if (ms <= 0) return this.close(WsCloseCode.Unauthorized, 'Unauthorized: token expired');
      this.expiryTimer = setTimeout(tick, Math.min(ms, MAX_TIMER_MS));
      this.expiryTimer.unref();
    };
    tick();
  }

  /** The socket closed (or we decided to close it): stop timers, leave the registry, end subscriptions. */
  release(code: number, reason: string): void {
    if (this.released) return;
    this.released = true;
    this.closing = true;
    clearTimeout(this.expiryTimer);
    clearInterval(this.pingTimer);
    clearTimeout(this.pongTimer);
    this.registry.remove(this);
    this.onRelease?.(code, reason);
  }

  /** The socket is gone for good. */
  closed(code: number, reason: string): void {
    clearTimeout(this.dropTimer);
    this.release(code, reason);
  }
}

function tokenFrom(params: Readonly<Record<string, unknown>> | undefined): string | undefined {
  const raw = params?.['authorization'] ?? params?.['Authorization'] ?? params?.['token'];
  if (typeof raw !== 'string' || raw.trim() === '') return undefined;
  return raw.replace(/^Bearer\s+/i, '').trim();
}

/** Message types of graphql-transport-ws that only the server sends. */
const SERVER_ONLY_TYPES = new Set(['connection_ack', 'next', 'error']);

/**
 * The type of a message that is valid graphql-transport-ws but only ever sent by a server, else
 * null. graphql-ws's server (6.x) throws a plain error for those, which would read as its own
 * failure (4500); the protocol answers anything a client may not send with 4400. Read only on
 * that error's path.
 */
function serverOnlyType(text: string): string | null {
  try {
    const message = JSON.parse(text) as { type?: unknown } | null;
    return typeof message?.type === 'string' && SERVER_ONLY_TYPES.has(message.type) ? message.type : null;
  } catch {
    return null;
  }
}

/**
 * graphql-ws on the HTTP server's port and path, through a thin adapter over `ws` (modelled on
 * graphql-ws's own `use/ws`) that bounds each socket's send buffer. Authenticates at
 * connection_init, closes at the token's expiry and on revocation (any instance), caps the
 * connections per client, and applies the same validation limits and error masking as HTTP.
 * Returns dispose(), which closes every socket with 1001 (going away).
 */
export function attachWebSocketServer(
  upgrades: Pick<HttpServer['upgrades'], 'acceptWebSockets'>,
  schema: GraphQLSchema,
  services: Services,
  limits: Limits,
  opts: WsOptions,
): { dispose(): Promise<void> } {
  const { log } = services;
  const keepAliveMs = opts.keepAliveMs ?? 12_000;
  // noServer: the HTTP server hands over only the handshakes on GRAPHQL_PATH (see http-edges.ts).
  const wss = new WebSocketServer({ noServer: true, path: GRAPHQL_PATH, maxPayload: 1 * MiB, handleProtocols });
  // A broken handshake (no or a bad key, another version, a malformed subprotocol list) is told
  // in JSON with a code, as every other refusal; ws itself answers those in text/html.
  wss.on('wsClientError', (err: Error, socket: Duplex) => {
    const method = err.message === 'Invalid HTTP method';
    const version = err.message.includes('Sec-WebSocket-Version') ? 'Sec-WebSocket-Version: 13, 8\r\n' : '';
    const code = method ? ErrorCode.BAD_HTTP_METHOD : ErrorCode.BAD_REQUEST;
    answerAndClose(
      socket,
      rawJsonError(method ? 405 : 400, method ? 'Method Not Allowed' : 'Bad Request', code, `WebSocket handshake refused: ${err.message}`, version),
    );
  });
  let handshaking = 0;
  upgrades.acceptWebSockets((req, socket, head) => {
    if (open.size - acknowledged.size + handshaking >= opts.maxPendingConnections) {
      answerAndClose(
        socket,
        rawJsonError(
          503,
          'Service Unavailable',
          ErrorCode.SERVICE_UNAVAILABLE,
          'Too many WebSocket connections are waiting for connection_init; retry shortly',
          'Retry-After: 1\r\n',
        ),
      );
      return;
    }
    handshaking++;
    let counted = true;
    const done = () => {
      if (counted) handshaking--;
      counted = false;
    };
    socket.once('close', done);
    wss.handleUpgrade(req, socket, head, (ws) => {
      done();
      wss.emit('connection', ws, req);
    });
  });
  const documents = new DocumentCache(schema, [...specifiedRules, ...limits.validationRules], limits.maxTokens);
  const registry = new Registry();
  const open = new Set<Connection>();
  // Acknowledged connections' graphql-ws contexts, for the open-subscriptions gauge.
  const acknowledged = new Map<Connection, { subscriptions: Record<string, unknown> }>();
  services.metrics.countSubscriptionsWith(() => {
    let n = 0;
    for (const c of acknowledged.values()) for (const s of Object.values(c.subscriptions)) if (s) n++;
    return n;
  });

  const closeClient = (clientId: string) => {
    const conns = registry.of(clientId);
    for (const conn of conns) conn.close(WsCloseCode.Forbidden, 'Forbidden: client revoked');
    if (conns.length) log.info({ clientId, sockets: conns.length }, 'closed the WebSockets of a revoked client');
  };
  const offRevocations = opts.revocations.on((message) => {
    if (message) return closeClient(message.clientId);
    void (async () => {
      for (const clientId of registry.clientIds()) {
        try {
          await services.clients.assertActive(clientId);
        } catch (err) {
          if (err instanceof SluiceError) closeClient(clientId);
          else log.warn({ err, clientId }, 'could not re-check a connected client');
        }
      }
    })();
  });

  const withErrors = (result: ExecutionResult) =>
    result.errors?.length ? { ...result, errors: result.errors.map((e) => formatError(log, e.toJSON(), e)) } : undefined;
  // Shared subscriptions write their events to the connection themselves (see DirectSink); the
  // same checks as onNext run on each write.
  const sinks = new WeakMap<ExecutionArgs, DirectSink>();
  const directSink = (conn: Connection, subscriptions: Record<string, unknown>, id: string): DirectSink => ({
    id,
    write: (messages, last) => {
      if (conn.expired) return void conn.close(WsCloseCode.Unauthorized, 'Unauthorized: token expired');
      if (last && id in subscriptions) {
        // The end goes out with the last event; graphql-ws sends `complete` only for a subscription it still holds.
        delete subscriptions[id];
        messages.push(`{"id":${JSON.stringify(id)},"type":"complete"}`);
      }
      conn.sendAll(messages);
    },
    withErrors: (result) => withErrors(result) ?? result,
  });

  const gql = makeServer<Record<string, unknown>, ConnExtra>({
    schema,
    subscribe: sharedSubscribe(SHARED_EXECUTION_FIELDS, { sinkOf: (args) => sinks.get(args) }),
    connectionInitWaitTimeout: 10_000,
    onConnect: async (ctx) => {
      const { conn } = ctx.extra;
      const token = tokenFrom(ctx.connectionParams);
      if (!token) {
        conn.close(WsCloseCode.Unauthorized, 'Unauthorized: connectionParams.authorization is required');
        return false;
      }
      let viewer: Viewer;
      try {
        viewer = services.clients.verify(token);
      } catch (err) {
        if (!(err instanceof SluiceError)) throw err;
        // Returning false makes graphql-ws close with 4403 Forbidden.
        return false;
      }
      if (registry.count(viewer.clientId) >= opts.maxConnectionsPerClient) {
        conn.close(WsCloseCode.TooManyConnections, 'Too many connections');
        return false;
      }
      // Registered before the database check, so a revocation notified meanwhile closes it too.
      conn.viewer = viewer;
      registry.add(conn, viewer.clientId);
      try {
        await services.clients.assertActive(viewer.clientId);
      } catch (err) {
        if (!(err instanceof SluiceError)) throw err;
        return false;
      }
      if (conn.closing) return false;
      conn.armExpiry();
      acknowledged.set(conn, ctx);
      return true;
    },
    onSubscribe: (ctx, id, payload) => {
      const { conn } = ctx.extra;
      const viewer = conn.viewer;
      if (!viewer || conn.expired) {
        conn.close(WsCloseCode.Unauthorized, 'Unauthorized: token expired');
        return [new SluiceError(ErrorCode.UNAUTHENTICATED, 'Token expired')];
      }
      // graphql-ws has already registered this one, so more than the limit means one too many.
      if (Object.keys(ctx.subscriptions).length > opts.maxSubscriptionsPerConnection) {
        return [new SluiceError(ErrorCode.BAD_REQUEST, `Too many subscriptions: at most ${opts.maxSubscriptionsPerConnection} run at once on one connection`)];
      }
      const parsed = documents.get(payload.query);
      if ('syntaxError' in parsed) return [new SluiceError(ErrorCode.GRAPHQL_PARSE_FAILED, parsed.syntaxError)];
      if ('validationErrors' in parsed) {
        return parsed.validationErrors.map((e) => new SluiceError(ErrorCode.GRAPHQL_VALIDATION_FAILED, e.message));
      }
      const { document } = parsed;
      const nulAt =
        nulPath(checkedVariables(getOperationAST(document, payload.operationName ?? undefined), payload.variables ?? {})) ??
        (documentHasNul(document) ? 'a string in the query' : null);
      if (nulAt) return [nulError(nulAt)];
      if (!getOperationAST(document, payload.operationName ?? undefined)) {
        return [new SluiceError(ErrorCode.OPERATION_RESOLUTION_FAILURE, 'Operation not found in the document')];
      }
      const contextValue: Context = { viewer, services, log };
      const args: ExecutionArgs = {
        schema,
        document,
        operationName: payload.operationName,
        variableValues: payload.variables,
        contextValue,
      };
      sinks.set(args, directSink(conn, ctx.subscriptions as Record<string, unknown>, id));
      return args;
    },
    onNext: (ctx, _id, _payload, _args, result) => {
      // The timer closes at expiry; this catches an event produced in the same instant.
      const { conn } = ctx.extra;
      if (conn.expired) conn.close(WsCloseCode.Unauthorized, 'Unauthorized: token expired');
      return withErrors(result);
    },
    onError: (_ctx, _id, _payload, errors) => errors.map((e) => formatError(log, e instanceof GraphQLError ? e.toJSON() : { message: String(e) }, e)),
  });

  wss.on('connection', (socket) => {
    const conn = new Connection(socket, registry, opts.maxBufferedBytes, log, keepAliveMs);
    open.add(conn);
    // ws closes the socket itself on protocol errors (bad frames, oversized messages); log only.
    socket.on('error', (err) => log.debug({ err }, 'WebSocket error'));
    const cleanup = gql.opened(
      {
        protocol: socket.protocol,
        send: (data) => conn.send(data),
        close: (code, reason) => conn.close(code ?? WsCloseCode.InternalServerError, reason ?? ''),
        onMessage: (cb) =>
          socket.on('message', async (data) => {
            if (conn.closing) return;
            const text = String(data);
            try {
              await cb(text);
            } catch (err) {
              // A message only a server sends (graphql-ws throws for it): the client's mistake, 4400 as the protocol says.
              const type = serverOnlyType(text);
              if (type !== null) {
                log.info({ type }, 'WebSocket client sent a server-only message');
                conn.close(CloseCode.BadRequest, `Invalid message received: a client may not send ${type}`);
                return;
              }
              log.error({ err }, 'WebSocket message handling failed');
              conn.close(WsCloseCode.InternalServerError, 'Internal server error');
            }
          }),
      },
      { conn },
    );
    conn.onRelease = (code, reason) => {
      cleanup(code, reason).catch((err: unknown) => log.warn({ err }, 'WebSocket cleanup failed'));
    };
    socket.once('close', (code, reason) => {
      open.delete(conn);
      acknowledged.delete(conn);
      conn.closed(code, String(reason));
    });
  });

  return {
    async dispose() {
      offRevocations();
      for (const conn of open) conn.close(WsCloseCode.GoingAway, 'Server shutting down');
      // A client that does not read would hold shutdown for ws's 30 s close timeout.
      const drop = setTimeout(() => {
        for (const socket of wss.clients) socket.terminate();
      }, CLOSE_GRACE_MS);
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      clearTimeout(drop);
    },
  };
}
