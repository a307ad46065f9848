import { randomBytes } from 'node:crypto';
import type postgres from 'postgres';
import { watchedSocketFactory } from './watched-socket';

/**
 * The options of every database connection of the service, without the pool and drizzle of
 * client.ts: a pipeline thread that writes its own COPY (ingest/pipeline-worker.ts) connects
 * with these too.
 */

/** Bounds on every database connection of the service (see the SLUICE_DB_* settings). */
export interface DbTimeouts {
  connectMs: number;
  statementMs: number;
  idleInTransactionMs: number;
  keepAliveMs: number;
  idleMs: number;
  maxLifetimeMs: number;
}

/** How long after its own statement timeout a server that has not answered is taken for unreachable. */
const NO_ANSWER_GRACE_MS = 2000;

/** A connection that has not answered a request for this long is dropped as half-open. */
export function noAnswerMs(t: DbTimeouts): number {
  return t.statementMs + NO_ANSWER_GRACE_MS;
}

/**
 * Session settings sent at login. The server-side keepalives let PostgreSQL end the session (and
 * release its locks) of a client that vanished; idle_in_transaction_session_timeout ends a
 * session that stopped half-way through a transaction.
 */
export function sessionParameters(t: DbTimeouts): Record<string, string> {
  const keepAliveS = Math.max(1, Math.round(t.keepAliveMs / 1000));
  return {
    statement_timeout: String(t.statementMs),
    idle_in_transaction_session_timeout: String(t.idleInTransactionMs),
    tcp_keepalives_idle: String(keepAliveS),
    tcp_keepalives_interval: String(Math.max(1, Math.ceil(keepAliveS / 3))),
    tcp_keepalives_count: '3',
  };
}

/** What a connection is opened with (its pool size apart). */
export interface ConnectionSettings {
  appName?: string;
  timeouts?: DbTimeouts;
}

/** postgres.js options for a connection of the service (see connect in client.ts). */
export function connectionOptions(opts: ConnectionSettings): postgres.Options<Record<string, never>> {
  const t = opts.timeouts;
  // Why a random suffix: the metrics count this pool's connections in pg_stat_activity by name,
  // and several processes (two workers) share a role.
  return {
    onnotice: () => undefined,
    connection: { application_name: `${opts.appName ?? 'sluice'}:${randomBytes(3).toString('hex')}`, ...(t ? sessionParameters(t) : {}) },
    ...(t
      ? {
          connect_timeout: t.connectMs / 1000,
          idle_timeout: t.idleMs / 1000,
          max_lifetime: t.maxLifetimeMs / 1000,
          keep_alive: t.keepAliveMs / 1000,
          socket: watchedSocketFactory(noAnswerMs(t)),
        }
      : {}),
  } as postgres.Options<Record<string, never>>;
}
