import path from 'node:path';
import { migrate } from 'drizzle-orm/postgres-js/migrator';
import { PACKAGE_ROOT } from '../shared/paths';
import type { Database } from './client';

export const migrationsFolder = path.join(PACKAGE_ROOT, 'drizzle');

/** Arbitrary constant; serialises migrations when several processes start on one database. */
const MIGRATION_LOCK = 7_283_645_001;

/** How often a starting process retries the migration lock while another one holds it. */
const LOCK_POLL_MS = 200;

export async function runMigrations(database: Database): Promise<void> {
  await withMigrationLock(database, () => applyMigrations(database));
}

/** Applies pending migrations; the caller holds the migration lock (see withMigrationLock). */
export async function applyMigrations(database: Database): Promise<void> {
  await database.withDrizzle((db) => migrate(db, { migrationsFolder }));
}

/**
 * Runs `fn` holding the migration lock: schema changes of Sluice and of pg-boss (its own
 * migrations and queue creation) happen one process at a time. Why: pg-boss's queue creation
 * run by several processes at once on a fresh database can deadlock on its partition DDL.
 */
export async function withMigrationLock<T>(database: Database, fn: () => Promise<T>): Promise<T> {
  // Why a session lock on a reserved connection: drizzle's migrator runs its own transaction on the
  // pool, so the lock must outlive it; other processes block on the same lock until we finish.
  const reserved = await database.sql.reserve();
  try {
    // Why polling and not pg_advisory_lock: a statement that waits silently for another
    // process's migrations would meet the statement timeout and the half-open bound of the pool.
    while (!(await reserved<{ ok: boolean }[]>`select pg_try_advisory_lock(${MIGRATION_LOCK}) as ok`)[0]!.ok) {
      await new Promise((r) => setTimeout(r, LOCK_POLL_MS));
    }
    try {
      return await fn();
    } finally {
      await reserved`select pg_advisory_unlock(${MIGRATION_LOCK})`;
    }
  } finally {
    reserved.release();
  }
}
