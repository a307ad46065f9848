import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, inject } from 'vitest';
import { startApp, type App } from '../../src/app';
import { connect, type Database } from '../../src/db/client';
import { loadEnv } from '../../src/env';
import { createLogger } from '../../src/shared/logger';
import { SluiceClient, IssueTokenDocument, CreateClientDocument, type Role } from '../../src/sdk/client';
import { databaseUrl, dropDatabase, randomDbName } from './db';

export const ADMIN_ID = 'test-admin';
export const ADMIN_SECRET = 'test-admin-secret-0123456789';
export const JWT_SECRET = 'test-jwt-secret-0123456789-0123456789-abcdef';

/** A fresh database cloned from the migrated template; dropped after the file's tests. */
export async function createTestDatabase(): Promise<{ url: string; name: string }> {
  const serverUrl = inject('adminDatabaseUrl');
  const template = inject('templateDatabase');
  const name = randomDbName(template.replace('_tpl_', '_t_'));
  const admin = connect(serverUrl, { max: 1, appName: 'sluice-test' });
  try {
    await admin.sql.unsafe(`create database ${name} template ${template}`);
  } finally {
    await admin.dispose();
  }
  afterAll(async () => {
    const a = connect(serverUrl, { max: 1, appName: 'sluice-test' });
    try {
      await dropDatabase(a.sql, name);
    } finally {
      await a.dispose();
    }
  });
  return { url: databaseUrl(serverUrl, name), name };
}

export interface TestApp {
  app: App;
  url: string;
  dataDir: string;
  /** Direct SQL on the app's database, for assertions the API cannot make. */
  database: Database;
  /** A client without a token. */
  anon: SluiceClient;
  /** A client with the bootstrap admin's token. */
  admin: SluiceClient;
  /** Creates a client with `roles` and returns a client holding its token. */
  clientWith(roles: Role[], clientId?: string): Promise<SluiceClient>;
  env: Record<string, string>;
}

/** Starts the real service in-process on a free port against a fresh database. */
export async function startTestApp(overrides: Record<string, string> = {}, opts: { databaseUrl?: string } = {}): Promise<TestApp> {
  const dbUrl = opts.databaseUrl ?? (await createTestDatabase()).url;
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-test-data-'));
  const envVars: Record<string, string> = {
    NODE_ENV: 'test',
    DATABASE_URL: dbUrl,
    DATABASE_POOL_MAX: '5',
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: process.env['TEST_LOG_LEVEL'] ?? 'silent',
    SLUICE_DATA_DIR: dataDir,
    SLUICE_ADMIN_CLIENT_ID: ADMIN_ID,
    SLUICE_ADMIN_CLIENT_SECRET: ADMIN_SECRET,
    SLUICE_JWT_SECRET: JWT_SECRET,
    SLUICE_SHUTDOWN_TIMEOUT_MS: '2000',
    // The free-space reserve's checks run in every test, at a size any machine that runs them has free.
    SLUICE_STORAGE_MIN_FREE_BYTES: String(64 * 1024 * 1024),
    ...overrides,
  };
  const env = loadEnv(envVars);
  const log = createLogger(env.LOG_LEVEL);
  const app = await startApp(env, log, { print: () => undefined });
  const url = app.url!;
  const anon = new SluiceClient({ url });
  const { issueToken } = await anon.request(IssueTokenDocument, { clientId: ADMIN_ID, clientSecret: ADMIN_SECRET });
  const admin = anon.withToken(issueToken.accessToken);
  const database = connect(dbUrl, { max: 2, appName: 'sluice-test-assert' });
  const clients: SluiceClient[] = [admin];
  let n = 0;
  const testApp: TestApp = {
    app,
    url,
    dataDir,
    database,
    anon,
    admin,
    env: envVars,
    async clientWith(roles, clientId) {
      const id = clientId ?? `c-${roles.join('-').toLowerCase()}-${++n}-${Date.now()}`;
      const { createClient } = await admin.request(CreateClientDocument, { input: { clientId: id, name: id, roles } });
      const { issueToken } = await anon.request(IssueTokenDocument, { clientId: id, clientSecret: createClient.clientSecret });
      const c = anon.withToken(issueToken.accessToken);
      clients.push(c);
      return c;
    },
  };
  afterAll(async () => {
    for (const c of clients) await c.close();
    await database.dispose();
    await app.dispose();
    await fs.rm(dataDir, { recursive: true, force: true });
  });
  return testApp;
}

/** Asserts a GraphQL error code, printing the whole response when it does not match. */
export function codeOf(body: { errors?: ReadonlyArray<{ extensions?: Record<string, unknown> }> }): string | undefined {
  return body.errors?.[0]?.extensions?.['code'] as string | undefined;
}
