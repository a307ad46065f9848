import http from 'node:http';
import { ApolloServer, type ApolloServerPlugin } from '@apollo/server';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { ApolloServerPluginCacheControlDisabled, ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { expressMiddleware } from '@as-integrations/express5';
import express, { type ErrorRequestHandler, type RequestHandler } from 'express';
import type { GraphQLSchema } from 'graphql';
import type { Services } from '../services';
import { bearerToken } from '../shared/auth';
import { ErrorCode, SluiceError } from '../shared/errors';
import { type AccessLogSink, accessLog, accessLogPlugin, accessNotesOf } from './access-log';
import { GRAPHQL_JSON_LIMIT_BYTES, graphqlJsonLane } from './graphql-json';
import type { Context } from './context';
import { errorReportRoute, validRowsRoute } from './downloads';
import { formatError } from './errors';
import { METRICS_PATH, metricsRoute } from './metrics';
import type { Limits } from './limits';
import { refuseHttpSubscriptions } from './plugins/refuse-http-subscriptions';
import { refuseNul } from './plugins/refuse-nul';
import { multipartUploads } from './multipart';
import { closeUnfinishedBodyAfterAnswer, guardUploadBody } from './request-body';
import { webRoutes } from './web';
import { handleHttpEdges } from './http-edges';

export const GRAPHQL_PATH = '/graphql';

/**
 * `cache-control: no-store` on every GraphQL answer: what Apollo's cache-control plugin sent here
 * (no field has a cache hint, so every operation was uncacheable), without that plugin's hook on
 * every resolved field (which also made Apollo wrap every resolver of the schema).
 */
const noStore: ApolloServerPlugin<Context> = {
  async requestDidStart() {
    return {
      async willSendResponse({ response }) {
        response.http.headers.set('cache-control', 'no-store');
      },
    };
  },
};

/** Resolves the viewer from `Authorization: Bearer`. A bad token is remembered, not thrown, so
 * public operations (issueToken) still work; protected ones report the precise reason. The
 * request's access line records the authenticated client (and, through the context, the operation). */
export async function httpContext(services: Services, req: Pick<express.Request, 'headers'>, remoteAddress?: string): Promise<Context> {
  const log = services.log;
  const accessNotes = accessNotesOf(req);
  try {
    const token = bearerToken(req.headers.authorization);
    if (!token) return { viewer: null, remoteAddress, services, log, accessNotes };
    const viewer = await services.clients.authenticate(token);
    if (accessNotes) accessNotes.clientId = viewer.clientId;
    return { viewer, remoteAddress, services, log, accessNotes };
  } catch (err) {
    if (err instanceof SluiceError) return { viewer: null, authError: err, remoteAddress, services, log, accessNotes };
    throw err;
  }
}

function jsonError(res: express.Response, status: number, code: ErrorCode, message: string): void {
  res.status(status).json({ errors: [{ message, extensions: { code } }] });
}

/**
 * Apollo's CSRF prevention rejects multipart requests without a preflight header, but only after
 * graphql-upload has started reading the body. Checking first keeps unwanted uploads off the wire.
 */
const requirePreflightForUploads: RequestHandler = (req, res, next) => {
  if (req.is('multipart/form-data') && !req.headers['apollo-require-preflight'] && !req.headers['x-apollo-operation-name']) {
    closeUnfinishedBodyAfterAnswer(req, res);
    jsonError(res, 400, ErrorCode.BAD_REQUEST, 'Multipart uploads need a non-empty "apollo-require-preflight" header (CSRF prevention)');
    return;
  }
  next();
};

/** HTTP status of an upload refused with each code. */
const UPLOAD_STATUS: Partial<Record<ErrorCode, number>> = {
  [ErrorCode.BAD_REQUEST]: 400,
  [ErrorCode.BAD_USER_INPUT]: 400,
  [ErrorCode.FORBIDDEN]: 403,
  [ErrorCode.NOT_FOUND]: 404,
  [ErrorCode.CONFLICT]: 409,
  [ErrorCode.PAYLOAD_TOO_LARGE]: 413,
  [ErrorCode.RATE_LIMITED]: 429,
  [ErrorCode.REQUEST_TIMEOUT]: 408,
  [ErrorCode.STORAGE_FULL]: 507,
};

export interface HttpServer {
  server: http.Server;
  apollo: ApolloServer<Context>;
  /** Extra drain steps (the WebSocket server) run when Apollo stops. */
  onDrain: Array<() => Promise<void>>;
  /** Where the WebSocket handshakes on GRAPHQL_PATH go (http-edges.ts); every other upgrade is ignored. */
  upgrades: ReturnType<typeof handleHttpEdges>;
}

export async function createHttpServer(schema: GraphQLSchema, services: Services, limits: Limits): Promise<HttpServer> {
  const { env, log } = services;
  const app = express();
  app.disable('x-powered-by');
  // req.ip (rate limits) is the socket's address unless the operator declares proxies in front.
  app.set('trust proxy', env.SLUICE_TRUST_PROXY_HOPS || false);
  // The GraphQL JSON lane (graphql-json.ts) answers plain JSON POSTs to /graphql; express the rest.
  let lane: ((req: http.IncomingMessage, res: http.ServerResponse) => boolean) | null = null;
  const server = http.createServer((req, res) => {
    if (lane?.(req, res)) return;
    app(req, res);
  });
  // Why longer than Node's 5 s: a client (or a load balancer, whose idle timeouts are typically
  // 60 s) that reuses a keep-alive connection the server is closing gets ECONNRESET or a 502;
  // the server must be the side that waits longer. The header timeout must exceed it.
  server.keepAliveTimeout = env.SLUICE_HTTP_KEEP_ALIVE_TIMEOUT_MS;
  server.headersTimeout = env.SLUICE_HTTP_KEEP_ALIVE_TIMEOUT_MS + 1000;
  // Upgrades (only WebSocket handshakes on GRAPHQL_PATH are), CONNECT, parser errors, Expect, half-closes.
  const upgrades = handleHttpEdges(server, GRAPHQL_PATH);
  const onDrain: Array<() => Promise<void>> = [];
  const startedAt = Date.now();
  const access: AccessLogSink = { log, observers: [(r) => services.metrics.observeRequest(r)] };
  app.use(accessLog(access));
  if (services.metrics.enabled && env.SLUICE_METRICS_PORT === undefined) app.get(METRICS_PATH, metricsRoute(services.metrics));

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok', role: env.SLUICE_ROLE, uptimeSeconds: Math.round((Date.now() - startedAt) / 1000) });
  });
  app.get('/readyz', async (_req, res) => {
    const started = Date.now();
    try {
      await Promise.race([
        services.database.sql`select 1`,
        new Promise((_, reject) => setTimeout(() => reject(new Error('timeout after 2000 ms')), 2000).unref()),
      ]);
      res.json({ status: 'ready', database: 'ok', latencyMs: Date.now() - started });
    } catch (err) {
      log.warn({ err }, 'readiness check failed');
      res.status(503).json({ status: 'unavailable', database: 'unreachable' });
    }
  });

  const apollo = new ApolloServer<Context>({
    schema,
    introspection: env.SLUICE_INTROSPECTION,
    csrfPrevention: true,
    includeStacktraceInErrorResponses: false,
    allowBatchedHttpRequests: false,
    // Why: src/main.ts owns the termination signals (App.dispose drains everything in order);
    // Apollo's own handler, added at start, swallowed a SIGTERM that came before main's.
    stopOnTerminationSignals: false,
    validationRules: limits.validationRules,
    parseOptions: { maxTokens: limits.maxTokens },
    formatError: (formatted, error) => formatError(log, formatted, error),
    logger: {
      debug: (m) => log.debug(m),
      info: (m) => log.info(m),
      warn: (m) => log.warn(m),
      error: (m) => log.error(m),
    },
    plugins: [
      ...limits.plugins,
      refuseHttpSubscriptions(GRAPHQL_PATH),
      refuseNul(),
      accessLogPlugin,
      ApolloServerPluginDrainHttpServer({ httpServer: server, stopGracePeriodMillis: env.SLUICE_SHUTDOWN_TIMEOUT_MS }),
      {
        async serverWillStart() {
          return {
            async drainServer() {
              for (const drain of onDrain) await drain();
            },
          };
        },
      },
      // GraphiQL, bundled and served from local files, replaces Apollo's CDN-hosted landing page.
      ApolloServerPluginLandingPageDisabled(),
      ApolloServerPluginCacheControlDisabled(),
      noStore,
    ],
  });
  await apollo.start();

  app.get('/files/:id/errors.csv', errorReportRoute(services));
  app.get('/files/:id/valid.csv', validRowsRoute(services));
  app.use(webRoutes({ playground: env.SLUICE_PLAYGROUND }));

  app.use(
    GRAPHQL_PATH,
    requirePreflightForUploads,
    multipartUploads({ maxFileBytes: env.SLUICE_MAX_FILE_SIZE_BYTES, maxFiles: env.SLUICE_MAX_FILES, idleTimeoutMs: env.SLUICE_UPLOAD_IDLE_TIMEOUT_MS }),
    express.json({ limit: GRAPHQL_JSON_LIMIT_BYTES }),
    // body-parser leaves `req.body` unset for a request it finds complete already (no body, and the
    // client's end read meanwhile: a half-closed client), and Apollo's express adapter then
    // answers 500 in text/html ("req.body is not set"); there is no body to read, so it is none.
    (req: express.Request, _res: express.Response, next: express.NextFunction) => {
      if (!Reflect.has(req, 'body')) Reflect.set(req, 'body', undefined);
      next();
    },
    expressMiddleware(apollo, {
      context: async ({ req }) => httpContext(services, req, req.ip),
    }),
  );
  if (env.SLUICE_GRAPHQL_JSON_LANE) {
    lane = graphqlJsonLane({
      apollo,
      path: GRAPHQL_PATH,
      context: (req, remoteAddress) => httpContext(services, req, remoteAddress),
      trustProxyHops: env.SLUICE_TRUST_PROXY_HOPS,
      access,
      log,
    });
  }

  // Sluice's own signed upload URLs (when storage cannot presign): the body streams to storage.
  app.put('/uploads/:fileId', async (req, res) => {
    const token = typeof req.query['token'] === 'string' ? req.query['token'] : undefined;
    const length = req.headers['content-length'];
    const contentLength = length !== undefined && /^\d{1,15}$/.test(length) ? Number(length) : undefined;
    try {
      const body = guardUploadBody(req, res, env.SLUICE_UPLOAD_IDLE_TIMEOUT_MS);
      const file = await services.signedUploads.receiveUpload(String(req.params['fileId']), token, body, contentLength, req.ip);
      res.json({ fileId: file.id, state: file.uploadState, size: file.size, sha256: file.sha256 });
    } catch (err) {
      const e = err instanceof SluiceError ? err : new SluiceError(ErrorCode.INTERNAL_SERVER_ERROR, 'Internal server error');
      if (!(err instanceof SluiceError)) log.error({ err }, 'upload failed');
      const { http: _http, ...extensions } = e.extensions;
      if (typeof extensions['retryAfterSeconds'] === 'number') res.set('retry-after', String(extensions['retryAfterSeconds']));
      res.status(UPLOAD_STATUS[e.code] ?? 500).json({ errors: [{ message: e.message, extensions }] });
    }
  });

  app.use((_req, res) => jsonError(res, 404, ErrorCode.NOT_FOUND, 'No such route; GraphQL is served at /graphql'));
  const onError: ErrorRequestHandler = (err, _req, res, _next) => {
    const status = typeof err?.status === 'number' ? err.status : typeof err?.statusCode === 'number' ? err.statusCode : 500;
    if (status === 413) {
      jsonError(res, 413, ErrorCode.PAYLOAD_TOO_LARGE, String(err.message ?? 'Request too large'));
    } else if (status >= 400 && status < 500) {
      jsonError(res, status, ErrorCode.BAD_REQUEST, String(err.message ?? 'Bad request'));
    } else {
      log.error({ err }, 'unhandled HTTP error');
      jsonError(res, 500, ErrorCode.INTERNAL_SERVER_ERROR, 'Internal server error');
    }
  };
  app.use(onError);

  return { server, apollo, onDrain, upgrades };
}
