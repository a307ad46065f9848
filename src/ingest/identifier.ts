/**
 * The allowlist every user-supplied name passes before it can reach SQL (STYLE rule 5).
 * 63 characters is PostgreSQL's NAMEDATALEN - 1: longer names would be silently truncated.
 */
export const IDENTIFIER_PATTERN = /^[a-z_][a-z0-9_]{0,62}$/;
export const MAX_IDENTIFIER_LENGTH = 63;

/** Columns the ingestion tables carry besides the spec's own. */
export const RESERVED_COLUMNS: readonly string[] = ['_file_id', '_line', '_ingested_at'];
const RESERVED_PREFIX = '_sluice';

/**
 * PostgreSQL's system columns: every table has them, so `create table` refuses a column of that
 * name ("column name conflicts with a system column name").
 */
export const SYSTEM_COLUMNS: readonly string[] = ['tableoid', 'xmin', 'cmin', 'xmax', 'cmax', 'ctid'];

/**
 * Turns a spec name into a SQL-safe identifier candidate:
 * trim, lower-case, every run of characters outside [a-z0-9] becomes `_`, leading and trailing
 * `_` are dropped, and `_` is prefixed when the result starts with a digit.
 * `total_no_of_plays(App and Portal)` -> `total_no_of_plays_app_and_portal`, `2019 Count` -> `_2019_count`.
 * The result can still be invalid (empty, longer than 63): check it with `isValidIdentifier`.
 * Because leading `_` are dropped, only a digit-led name can yield a leading `_`.
 */
export function normaliseIdentifier(name: string): string {
  const snake = name
    .trim()
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '');
  return /^[0-9]/.test(snake) ? `_${snake}` : snake;
}

export function isValidIdentifier(name: string): boolean {
  return IDENTIFIER_PATTERN.test(name);
}

/** True for names Sluice adds to every ingestion table (exact names, or the `_sluice` prefix). */
export function isReservedColumn(column: string): boolean {
  return RESERVED_COLUMNS.includes(column) || column.startsWith(RESERVED_PREFIX);
}

/** True for the names of PostgreSQL's system columns (`ctid`, `xmin`, ...). */
export function isSystemColumn(column: string): boolean {
  return SYSTEM_COLUMNS.includes(column);
}

/** Why `normalised` (from `original`) is not a usable identifier, or null when it is. */
export function identifierProblem(original: string, normalised: string): string | null {
  if (normalised.length === 0) {
    return `${JSON.stringify(original)} has no letters or digits, so it cannot be a SQL identifier`;
  }
  if (normalised.length > MAX_IDENTIFIER_LENGTH) {
    return `${JSON.stringify(original)} normalises to ${normalised.length} characters; the limit is ${MAX_IDENTIFIER_LENGTH}`;
  }
  // Unreachable with the normalisation above; kept so a change to it cannot leak unsafe names.
  if (!isValidIdentifier(normalised)) {
    return `${JSON.stringify(original)} normalises to ${JSON.stringify(normalised)}, which does not match ${IDENTIFIER_PATTERN.source}`;
  }
  return null;
}
