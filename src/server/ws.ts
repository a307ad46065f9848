import type http from 'node:http';
import {
  GraphQLError,
  getOperationAST,
  parse,
  specifiedRules,
  validate,
  type DocumentNode,
  type ExecutionArgs,
  type GraphQLSchema,
} from 'graphql';
import { CloseCode } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import type { Services } from '../services';
import type { Viewer } from '../shared/auth';
import { ErrorCode, SluiceError } from '../shared/errors';
import type { Context } from './context';
import { formatError } from './errors';
import { GRAPHQL_PATH } from './http';
import type { Limits } from './limits';

/** Close codes Sluice uses beyond graphql-ws's own. */
export const WsCloseCode = {
  /** No token in connectionParams, or it expired during the connection. */
  Unauthorized: CloseCode.Unauthorized, // 4401
  /** A token was presented and refused: forged, wrong audience, revoked client. */
  Forbidden: CloseCode.Forbidden, // 4403
} as const;

type ConnExtra = {
  viewer?: Viewer;
};

function tokenFrom(params: Readonly<Record<string, unknown>> | undefined): string | undefined {
  const raw = params?.['authorization'] ?? params?.['Authorization'] ?? params?.['token'];
  if (typeof raw !== 'string' || raw.trim() === '') return undefined;
  return raw.replace(/^Bearer\s+/i, '').trim();
}

/**
 * graphql-ws on the HTTP server's port and path. Authenticates once at connection_init, re-checks
 * expiry per operation, and applies the same validation limits and error masking as HTTP.
 * Returns dispose(), which closes every socket with 1001 (going away).
 */
export function attachWebSocketServer(
  server: http.Server,
  schema: GraphQLSchema,
  services: Services,
  limits: Limits,
): { dispose(): Promise<void> } {
  const { log } = services;
  const wss = new WebSocketServer({ server, path: GRAPHQL_PATH, maxPayload: 1024 * 1024 });
  const rules = [...specifiedRules, ...limits.validationRules];
  // Acknowledged connections, for the open-subscriptions gauge (streaming operations of each).
  const connections = new Set<{ subscriptions: Record<string, unknown> }>();
  services.metrics.countSubscriptionsWith(() => {
    let open = 0;
    for (const c of connections) for (const s of Object.values(c.subscriptions)) if (s) open++;
    return open;
  });

  const serverHandle = useServer<Record<string, unknown>, ConnExtra>(
    {
      schema,
      connectionInitWaitTimeout: 10_000,
      onConnect: async (ctx) => {
        const token = tokenFrom(ctx.connectionParams);
        if (!token) {
          ctx.extra.socket.close(WsCloseCode.Unauthorized, 'Unauthorized: connectionParams.authorization is required');
          return false;
        }
        try {
          ctx.extra.viewer = await services.clients.authenticate(token);
          connections.add(ctx);
          return true;
        } catch (err) {
          if (!(err instanceof SluiceError)) throw err;
          // Returning false makes graphql-ws close with 4403 Forbidden.
          return false;
        }
      },
      onSubscribe: (ctx, _id, payload) => {
        const viewer = ctx.extra.viewer;
        if (!viewer || viewer.exp * 1000 <= Date.now()) {
          ctx.extra.socket.close(WsCloseCode.Unauthorized, 'Unauthorized: token expired');
          return [new SluiceError(ErrorCode.UNAUTHENTICATED, 'Token expired')];
        }
        let document: DocumentNode;
        try {
          document = parse(payload.query, { maxTokens: limits.maxTokens });
        } catch (err) {
          return [new SluiceError(ErrorCode.GRAPHQL_PARSE_FAILED, err instanceof Error ? err.message : 'Syntax error')];
        }
        const errors = validate(schema, document, rules);
        if (errors.length) {
          return errors.map((e) => new SluiceError(ErrorCode.GRAPHQL_VALIDATION_FAILED, e.message));
        }
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
        return args;
      },
      onClose: (ctx) => {
        connections.delete(ctx);
      },
      onNext: (_ctx, _id, _payload, _args, result) => {
        if (!result.errors?.length) return;
        return { ...result, errors: result.errors.map((e) => formatError(log, e.toJSON(), e)) };
      },
      onError: (_ctx, _id, _payload, errors) => errors.map((e) => formatError(log, e instanceof GraphQLError ? e.toJSON() : { message: String(e) }, e)),
    },
    wss,
  );

  return {
    async dispose() {
      for (const client of wss.clients) client.close(1001, 'Server shutting down');
      await serverHandle.dispose();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}
