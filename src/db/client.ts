import { drizzle, type PostgresJsDatabase } from 'drizzle-orm/postgres-js';
import postgres from 'postgres';
import * as schema from './schema';

export type Sql = postgres.Sql;
export type Db = PostgresJsDatabase<typeof schema>;

export interface Database {
  sql: Sql;
  db: Db;
  url: string;
  dispose(): Promise<void>;
}

export function connect(url: string, opts: { max: number; appName?: string }): Database {
  const sql = postgres(url, {
    max: opts.max,
    onnotice: () => undefined,
    connection: { application_name: opts.appName ?? 'sluice' },
  });
  const db = drizzle(sql, { schema });
  return {
    sql,
    db,
    url,
    async dispose() {
      await sql.end({ timeout: 5 });
    },
  };
}
