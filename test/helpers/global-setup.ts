import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { connect } from '../../src/db/client';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../../src/db/embedded';
import { runMigrations } from '../../src/db/migrate';
import { createLogger } from '../../src/shared/logger';
import { ensureBuild } from './build';
import { databaseUrl, dropDatabase, randomDbName } from './db';

/**
 * Once per `npm test`: picks the server (DATABASE_URL, or an embedded PostgreSQL in a temp folder),
 * creates a migrated template database, and hands both to the test files, which clone the template
 * into a database of their own (graphile-worker's pattern: fast, isolated, real).
 */
export default async function setup(project: TestProject) {
  const log = createLogger(process.env['TEST_LOG_LEVEL'] ?? 'warn');
  // The compiled build, while the database is prepared: the `sluice` bin runs dist/cli.js when it
  // is fresh (each CLI run the tests start takes about half the time it takes through tsx), and
  // the tests of the build and the benchmarks' service find it ready.
  const building = ensureBuild();
  building.catch(() => undefined);
  let embedded: EmbeddedDatabase | undefined;
  let tmpDir: string | undefined;
  let adminUrl = process.env['DATABASE_URL'];
  if (!adminUrl) {
    tmpDir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-test-pg-'));
    await fs.chmod(tmpDir, 0o755);
    embedded = await startEmbeddedPostgres({ dir: path.join(tmpDir, 'pg'), port: 0, log });
    adminUrl = embedded.url;
  }
  const template = randomDbName('sluice_tpl');
  const admin = connect(adminUrl, { max: 1, appName: 'sluice-test-setup' });
  await admin.sql.unsafe(`create database ${template}`);
  const tpl = connect(databaseUrl(adminUrl, template), { max: 2, appName: 'sluice-test-setup' });
  try {
    await runMigrations(tpl);
  } finally {
    await tpl.dispose();
  }
  await building;
  project.provide('adminDatabaseUrl', adminUrl);
  project.provide('templateDatabase', template);

  return async () => {
    // Test files drop their own databases; sweep leftovers of crashed files too.
    const leftovers = await admin.sql<{ datname: string }[]>`
      select datname from pg_database where datname like ${`${template.replace('_tpl_', '_t_')}%`} or datname = ${template}`;
    for (const { datname } of leftovers) await dropDatabase(admin.sql, datname);
    await admin.dispose();
    await embedded?.dispose();
    if (tmpDir) await fs.rm(tmpDir, { recursive: true, force: true });
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    adminDatabaseUrl: string;
    templateDatabase: string;
  }
}
