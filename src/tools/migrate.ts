import 'reflect-metadata';
import path from 'node:path';
import { connect } from '../db/client';
import { startEmbeddedPostgres } from '../db/embedded';
import { runMigrations } from '../db/migrate';
import { loadEnv } from '../env';
import { createLogger } from '../shared/logger';

/** `npm run db:migrate`: applies drizzle/ to DATABASE_URL, or to the embedded database. */
const env = loadEnv();
const log = createLogger(env.LOG_LEVEL, env.SLUICE_LOG_FORMAT);
const embedded = env.DATABASE_URL
  ? undefined
  : await startEmbeddedPostgres({ dir: path.join(env.dataDir, 'pg'), port: env.SLUICE_EMBEDDED_PG_PORT, fallback: env.embeddedPgPortFallback, log });
const database = connect(env.DATABASE_URL ?? embedded!.url, { max: 2, appName: 'sluice-migrate' });
try {
  await runMigrations(database);
  log.info('migrations applied');
} finally {
  await database.dispose();
  await embedded?.dispose();
}
