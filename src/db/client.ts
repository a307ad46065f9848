import { randomBytes } from 'node:crypto';
import { drizzle, type PostgresJsDatabase } from 'drizzle-orm/postgres-js';
import postgres from 'postgres';
import type { Env } from '../env';
import * as schema from './schema';
import { watchedSocketFactory } from './watched-socket';

export type Sql = postgres.Sql;
export type Db = PostgresJsDatabase<typeof schema>;

export interface Database {
  /**
   * The one pool: postgres.js tagged SQL for every store (rows decoded by src/db/rows.ts), COPY,
   * LISTEN, transactions with Date and JSON parameters. Column names are returned as stored.
   */
  sql: Sql;
  /**
   * drizzle-orm over a short-lived connection of its own, for drizzle-kit's migrator only. Why not
   * on the pool: drizzle replaces the client's serializers and parsers (timestamps and JSON
   * become pass-through strings), which would break plain postgres.js queries sharing it.
   */
  withDrizzle<T>(fn: (db: Db) => Promise<T>): Promise<T>;
  url: string;
  dispose(): Promise<void>;
}

/** Bounds on every database connection of the service (see the SLUICE_DB_* settings). */
export interface DbTimeouts {
  connectMs: number;
  statementMs: number;
  idleInTransactionMs: number;
  keepAliveMs: number;
  idleMs: number;
  maxLifetimeMs: number;
}

export function dbTimeouts(env: Env): DbTimeouts {
  return {
    connectMs: env.SLUICE_DB_CONNECT_TIMEOUT_MS,
    statementMs: env.SLUICE_DB_STATEMENT_TIMEOUT_MS,
    idleInTransactionMs: env.SLUICE_DB_IDLE_IN_TRANSACTION_TIMEOUT_MS,
    keepAliveMs: env.SLUICE_DB_KEEPALIVE_MS,
    idleMs: env.SLUICE_DB_IDLE_TIMEOUT_MS,
    maxLifetimeMs: env.SLUICE_DB_MAX_LIFETIME_MS,
  };
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

export function connect(url: string, opts: { max: number; appName?: string; timeouts?: DbTimeouts }): Database {
  const t = opts.timeouts;
  // Why a random suffix: the metrics count this pool's connections in pg_stat_activity by name,
  // and several processes (two workers) share a role.
  const base = {
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
  const sql = postgres(url, { ...base, max: opts.max });
  return {
    sql,
    async withDrizzle(fn) {
      const client = postgres(url, { ...base, max: 1 });
      try {
        return await fn(drizzle(client, { schema }));
      } finally {
        await client.end({ timeout: 5 });
      }
    },
    url,
    async dispose() {
      await sql.end({ timeout: 5 });
    },
  };
}
