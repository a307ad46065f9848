import { randomBytes } from 'node:crypto';
import { drizzle, type PostgresJsDatabase } from 'drizzle-orm/postgres-js';
import postgres from 'postgres';
import * as schema from './schema';

export type Sql = postgres.Sql;
export type Db = PostgresJsDatabase<typeof schema>;

export interface Database {
  /** Plain postgres.js: tagged SQL, COPY, LISTEN, transactions with Date and JSON parameters. */
  sql: Sql;
  /** drizzle-orm for typed table queries. */
  db: Db;
  url: string;
  dispose(): Promise<void>;
}

export function connect(url: string, opts: { max: number; appName?: string }): Database {
  // Why a random suffix: the metrics count this pool's connections in pg_stat_activity by name,
  // and several processes (two workers) share a role.
  const base = {
    onnotice: () => undefined,
    connection: { application_name: `${opts.appName ?? 'sluice'}:${randomBytes(3).toString('hex')}` },
  };
  const sql = postgres(url, { ...base, max: opts.max });
  // Why a second client: drizzle replaces the client's serializers and parsers (timestamps and
  // JSON become pass-through strings), which would break plain postgres.js queries sharing it.
  const drizzleClient = postgres(url, { ...base, max: Math.max(1, Math.ceil(opts.max / 2)) });
  const db = drizzle(drizzleClient, { schema });
  return {
    sql,
    db,
    url,
    async dispose() {
      await Promise.all([sql.end({ timeout: 5 }), drizzleClient.end({ timeout: 5 })]);
    },
  };
}
