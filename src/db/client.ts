import { drizzle, type PostgresJsDatabase } from 'drizzle-orm/postgres-js';
import postgres from 'postgres';
import type { Env } from '../env';
import * as schema from './schema';
import { connectionOptions, type ConnectionSettings, type DbTimeouts } from './connection';

export type Sql = postgres.Sql;
export { connectionOptions, noAnswerMs, sessionParameters, type ConnectionSettings, type DbTimeouts } from './connection';
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
  /** What the pool's connections are opened with: a pipeline thread's own connection uses the same. */
  settings: ConnectionSettings;
  dispose(): Promise<void>;
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

export function connect(url: string, opts: { max: number; appName?: string; timeouts?: DbTimeouts }): Database {
  const base = connectionOptions(opts);
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
    settings: { appName: opts.appName, timeouts: opts.timeouts },
    async dispose() {
      await sql.end({ timeout: 5 });
    },
  };
}
