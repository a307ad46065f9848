import { getTableColumns, type Column } from 'drizzle-orm';
import type { PgTable } from 'drizzle-orm/pg-core';
import postgres from 'postgres';

/**
 * Decodes rows of `select * from <table>` (or `returning *`) as postgres.js returns them into the
 * drizzle row type of the table (`typeof table.$inferSelect`): column names and value mapping
 * come from the drizzle table definition, so no store repeats a record interface or casts a
 * column. Why per query and not a `transform` on the pool: postgres.js transforms are per
 * instance (per pool), and the same pool and transactions also carry pg-boss's own SQL (the
 * transactional enqueue), dataset tables with user column names (`school_id` must stay
 * `school_id`) and the tests' raw queries; one pool with raw names keeps all of them as they are.
 *
 * Values: postgres.js already returns Date for timestamptz, arrays and parsed jsonb (keys
 * untouched, and a jsonb string stays a string: drizzle's JSON.parse is not applied). Only int8
 * differs from the drizzle type (postgres.js returns it as a string): drizzle's
 * mapFromDriverValue turns it into the column's mode (number for `mode: 'number'`).
 * Columns not in the table (aliases such as `parent_code`) are kept under their camel-case name.
 */
export function decoder<T extends PgTable>(table: T): (row: Record<string, unknown>) => T['$inferSelect'] {
  const bySqlName = new Map<string, { key: string; column: Column }>();
  for (const [key, column] of Object.entries(getTableColumns(table) as Record<string, Column>)) bySqlName.set(column.name, { key, column });
  return (row) => {
    const out: Record<string, unknown> = {};
    for (const name in row) {
      const value = row[name];
      const c = bySqlName.get(name);
      if (!c) out[postgres.toCamel(name)] = value;
      else
        out[c.key] =
          typeof value === 'string' && (c.column.dataType === 'number' || c.column.dataType === 'bigint') ? c.column.mapFromDriverValue(value) : value;
    }
    return out as T['$inferSelect'];
  };
}
