import path from 'node:path';
import { migrate } from 'drizzle-orm/postgres-js/migrator';
import { PACKAGE_ROOT } from '../shared/paths';
import type { Database } from './client';

export const migrationsFolder = path.join(PACKAGE_ROOT, 'drizzle');

/** Arbitrary constant; serialises migrations when several processes start on one database. */
const MIGRATION_LOCK = 7_283_645_001;

export async function runMigrations(database: Database): Promise<void> {
  // Why a session lock on a reserved connection: drizzle's migrator runs its own transaction on the
  // pool, so the lock must outlive it; other processes block on the same lock until we finish.
  const reserved = await database.sql.reserve();
  try {
    await reserved`select pg_advisory_lock(${MIGRATION_LOCK})`;
    try {
      await migrate(database.db, { migrationsFolder });
    } finally {
      await reserved`select pg_advisory_unlock(${MIGRATION_LOCK})`;
    }
  } finally {
    reserved.release();
  }
}
