/**
 * The PostgreSQL server the benchmark runs against: DATABASE_URL when set, else an embedded
 * server started in a temp folder. Each benchmark case gets a fresh database, dropped afterwards.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import postgres from 'postgres';
import { freePort, startEmbeddedPostgres } from '../../src/db/embedded';
import { createLogger } from '../../src/shared/logger';
import { postmasterOf } from './cpu';

export type Sql = postgres.Sql;

export interface PgServer {
  /** URL of the maintenance database (used to create and drop bench databases). */
  url: string;
  embedded: boolean;
  /** PostgreSQL version string, for the report. */
  version: string;
  /** The server's postmaster pid when it runs on this host (for CPU accounting), else null. */
  postmasterPid: number | null;
  createDatabase(): Promise<BenchDatabase>;
  dispose(): Promise<void>;
}

export interface BenchDatabase {
  name: string;
  url: string;
  sql: Sql;
  drop(): Promise<void>;
}

export function databaseUrl(serverUrl: string, database: string): string {
  const u = new URL(serverUrl);
  u.pathname = `/${database}`;
  return u.toString();
}

function client(url: string, max = 2): Sql {
  return postgres(url, { max, onnotice: () => undefined, connection: { application_name: 'sluice-bench' } });
}

/** Starts (or connects to) the server. `tmpDir` hosts the embedded cluster when DATABASE_URL is unset. */
export async function openPgServer(tmpDir: string): Promise<PgServer> {
  let url = process.env['DATABASE_URL'];
  let disposeEmbedded: (() => Promise<void>) | null = null;
  if (!url) {
    // The cluster runs as the `postgres` user when we are root: it must be able to reach its folder.
    await fs.chmod(tmpDir, 0o755);
    const embedded = await startEmbeddedPostgres({ dir: path.join(tmpDir, 'pg'), port: await freePort(), log: createLogger('warn') });
    url = embedded.url;
    disposeEmbedded = () => embedded.dispose();
  }
  const admin = client(url, 1);
  const created = new Set<string>();
  let version = '';
  let postmasterPid: number | null = null;
  try {
    const [row] = await admin`select current_setting('server_version') as v, pg_backend_pid() as pid`;
    version = String(row?.['v'] ?? '');
    postmasterPid = postmasterOf(Number(row?.['pid']));
  } catch (err) {
    await admin.end({ timeout: 5 });
    await disposeEmbedded?.();
    throw err;
  }

  const drop = async (name: string) => {
    if (!/^sluice_bench_[a-f0-9]+$/.test(name)) throw new Error(`refusing to drop ${name}`);
    await admin`select pg_terminate_backend(pid) from pg_stat_activity where datname = ${name} and pid <> pg_backend_pid()`;
    await admin.unsafe(`drop database if exists ${name}`);
    created.delete(name);
  };

  return {
    url,
    embedded: disposeEmbedded !== null,
    version,
    postmasterPid,
    async createDatabase() {
      const name = `sluice_bench_${randomBytes(6).toString('hex')}`;
      await admin.unsafe(`create database ${name}`);
      created.add(name);
      const dbUrl = databaseUrl(url, name);
      const sql = client(dbUrl);
      return {
        name,
        url: dbUrl,
        sql,
        async drop() {
          await sql.end({ timeout: 5 });
          await drop(name);
        },
      };
    },
    async dispose() {
      for (const name of [...created]) await drop(name).catch(() => undefined);
      await admin.end({ timeout: 5 });
      await disposeEmbedded?.();
    },
  };
}
