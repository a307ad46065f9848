import type { ApolloServerPlugin } from '@apollo/server';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RequestHandler } from 'express';
import { ACCESS_LOG_KEY, type Logger } from '../shared/logger';

/** What is known of one HTTP request when it ends: the access line's fields. */
export interface RequestRecord {
  method: string;
  /** The path without its query string: signed-URL tokens travel in the query and stay out of logs. */
  path: string;
  /** Matched route pattern (`/files/:id/errors.csv`, `/graphql`), or `(other)`: bounded, for metrics. */
  route: string;
  /** GraphQL operation name, once the document has been parsed and the operation chosen. */
  operation?: string;
  /** The authenticated client, once its token has been verified. */
  clientId?: string;
  status: number;
  durationMs: number;
  /** The client went away before the response was complete. */
  aborted: boolean;
}

/** What handlers learn about a request for its access line (operation, client). */
export type AccessNotes = Pick<RequestRecord, 'operation' | 'clientId'>;

/**
 * Each request's notes, found from the request itself: passed explicitly rather than through an
 * AsyncLocalStorage, whose async hooks (Node 20) would tax every promise of the process, the
 * WebSocket deliveries included, for one or two fields of the HTTP access line.
 */
const notesByRequest = new WeakMap<object, AccessNotes>();

/** Longest path and operation name written to a line; a hostile client cannot make lines huge. */
const MAX_FIELD_CHARS = 200;

function clip(s: string): string {
  return s.length > MAX_FIELD_CHARS ? `${s.slice(0, MAX_FIELD_CHARS)}...` : s;
}

/** The notes of `req` (an HTTP request that went through accessLog), or undefined. */
export function accessNotesOf(req: object): AccessNotes | undefined {
  return notesByRequest.get(req);
}

/** Records the operation Apollo chose (named in the document, not the client's claim) in the context's access notes. */
export const accessLogPlugin: ApolloServerPlugin<{ accessNotes?: AccessNotes }> = {
  async requestDidStart() {
    return {
      async didResolveOperation(rc) {
        const notes = rc.contextValue.accessNotes;
        if (rc.operationName && notes) notes.operation = clip(rc.operationName);
      },
    };
  },
};

/** Routes mounted with app.use have no req.route; named here so metrics labels stay bounded. */
const MOUNTED_ROUTES = ['/graphql'];

function routeOf(req: Parameters<RequestHandler>[0], path: string): string {
  const pattern = (req.route as { path?: unknown } | undefined)?.path;
  if (typeof pattern === 'string') return pattern;
  return MOUNTED_ROUTES.find((r) => path === r || path.startsWith(`${r}/`)) ?? '(other)';
}

/** What an access line is written with: the logger and who else sees each record (metrics). */
export interface AccessLogSink {
  log: Logger;
  observers: Array<(r: RequestRecord) => void>;
}

/**
 * Starts the access record of one request (node:http or express alike): its notes are found
 * from `req` (accessNotesOf) until the response closes, when the line is written and the
 * observers called. `route` names the route when no express route will (the GraphQL JSON lane).
 */
export function startAccessRecord(
  sink: AccessLogSink,
  req: IncomingMessage & { originalUrl?: string; route?: unknown },
  res: ServerResponse,
  route?: string,
): void {
  const started = process.hrtime.bigint();
  const notes: AccessNotes = {};
  notesByRequest.set(req, notes);
  res.once('close', () => {
    const url = req.originalUrl || req.url || '/';
    const path = clip(url.split(/[?#]/, 1)[0] || '/');
    const record: RequestRecord = {
      method: req.method ?? 'GET',
      path,
      route: route ?? routeOf(req as Parameters<RequestHandler>[0], path),
      ...notes,
      status: res.statusCode,
      durationMs: Math.round(Number(process.hrtime.bigint() - started) / 1e4) / 100,
      aborted: !res.writableFinished,
    };
    const who = record.clientId ? ` client=${record.clientId}` : '';
    const op = record.operation ? ` ${record.operation}` : '';
    sink.log.info(
      { [ACCESS_LOG_KEY]: record },
      `${record.method} ${record.path}${op} ${record.status} ${record.durationMs} ms${who}${record.aborted ? ' (aborted)' : ''}`,
    );
    for (const observe of sink.observers) observe(record);
  });
}

/**
 * One line per HTTP request when it ends (`http.method`, `http.path`, `http.operation`,
 * `http.status`, `http.durationMs`, `http.clientId`), then `observers` (metrics). Must be the first
 * middleware, so later handlers find the request's notes (accessNotesOf) and fill them in.
 * Never logged: headers (Authorization), the query string (signed-URL tokens), bodies.
 */
export function accessLog(sink: AccessLogSink): RequestHandler {
  return (req, res, next) => {
    startAccessRecord(sink, req, res);
    next();
  };
}
