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
 * Columns not in the table (aliases such as `parent_code`) are kept under their camel-case name,
 * except those named in `ignore` (a query's own extra columns, read by the caller).
 */
export function decoder<T extends PgTable>(
  table: T,
  opts: { ignore?: readonly string[] } = {},
): (row: Record<string, unknown>, index?: number, rows?: readonly unknown[]) => T['$inferSelect'] {
  const columns = Object.entries(getTableColumns(table) as Record<string, Column>).map(([key, column]) => ({
    key,
    name: column.name,
    column,
    numeric: column.dataType === 'number' || column.dataType === 'bigint',
  }));
  const known = new Set([...columns.map((c) => c.name), ...(opts.ignore ?? [])]);
  // Why a template, cloned per row: V8 turns an object that gets more than about a dozen
  // properties by keyed stores (`out[key] = value`) into a dictionary, and every later read,
  // spread and GraphQL field of it is then slower; postgres.js's own rows are such dictionaries.
  // A clone of one object with every column already in place keeps a fast shape, and the stores
  // below only change values (JSON.parse builds that object with fast properties). Every column
  // of the table is a key of the result (undefined when the row does not have it).
  const template = JSON.parse(JSON.stringify(Object.fromEntries(columns.map((c) => [c.key, null])))) as Record<string, unknown>;
  /** The columns of a query result that the table does not have, found once per result. */
  const extrasOf = new WeakMap<object, string[]>();
  const extras = (row: Record<string, unknown>, rows: readonly unknown[] | undefined): string[] => {
    const names = (rows as { columns?: Array<{ name: string }> } | undefined)?.columns;
    if (!rows || !Array.isArray(names)) {
      // A row on its own (not from `rows.map(decode)`): its keys, read once (slow on a dictionary).
      const own: string[] = [];
      for (const name in row) if (!known.has(name)) own.push(name);
      return own;
    }
    let found = extrasOf.get(rows);
    if (!found) extrasOf.set(rows, (found = names.map((c) => c.name).filter((name) => !known.has(name))));
    return found;
  };
  return (row, _index, rows) => {
    const out: Record<string, unknown> = { ...template };
    for (const c of columns) {
      const value = row[c.name];
      out[c.key] = c.numeric && typeof value === 'string' ? c.column.mapFromDriverValue(value) : value;
    }
    for (const name of extras(row, rows)) out[postgres.toCamel(name)] = row[name];
    return out as T['$inferSelect'];
  };
}
