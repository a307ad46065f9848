import { printable, type HeaderProblemCode } from '../../ingest/row-validator';
/**
 * The CSV columns of each bulk upload kind, as Sunbird names them. A header cell matches a column
 * by its display name (`SCHOOL NAME`) or its internal name (`orgName`), compared case-insensitively
 * and ignoring spaces, `_` and `-` (so `USER_TYPE`, `User Type` and `userType` are one column).
 */
export enum BulkKind {
  LOCATION = 'LOCATION',
  ORGANISATION = 'ORGANISATION',
  USER = 'USER',
}

export interface ColumnDef {
  /** Internal name: the key of a row's values and of the result `data`. */
  key: string;
  /** Display name, as in the Sunbird sample CSVs. */
  display: string;
  /** The header must have it. */
  required: boolean;
  /** Longest accepted value, in characters. */
  maxLength: number;
}

const col = (key: string, display: string, required: boolean, maxLength = 200): ColumnDef => ({ key, display, required, maxLength });

export const COLUMNS: Record<BulkKind, readonly ColumnDef[]> = {
  [BulkKind.LOCATION]: [
    col('code', 'code', true, 100),
    col('name', 'name', true, 300),
    col('parentCode', 'parentCode', false, 100),
    col('parentId', 'parentId', false, 100),
    // Optional: a per-row type lets one file hold a state and its districts.
    col('type', 'type', false, 20),
  ],
  [BulkKind.ORGANISATION]: [
    col('orgName', 'SCHOOL NAME', true, 300),
    col('locationCode', 'BLOCK CODE', true, 100),
    col('status', 'STATUS', false, 20),
    col('organisationId', 'SCHOOL ID', false, 100),
    col('externalId', 'EXTERNAL ID', false, 100),
    col('description', 'DESCRIPTION', false, 1000),
    col('organisationType', 'ORGANISATION TYPE', false, 20),
  ],
  [BulkKind.USER]: [
    col('name', 'NAME', true, 300),
    col('phone', 'MOBILE PHONE', false, 20),
    col('email', 'EMAIL', false, 254),
    col('orgId', 'SCHOOL ID', false, 100),
    col('orgExternalId', 'SCHOOL EXTERNAL ID', false, 100),
    col('userType', 'USER_TYPE', false, 20),
    col('roles', 'ROLES', false, 1000),
    col('userId', 'USER ID', false, 100),
    col('externalId', 'EXTERNAL ID', false, 100),
  ],
};

/** Header cells a kind needs at least one of (a user row needs a phone or an email). */
const ONE_OF: Partial<Record<BulkKind, readonly string[]>> = {
  [BulkKind.USER]: ['phone', 'email'],
};

export interface DirectoryHeaderProblem {
  /** Directory headers report EMPTY_HEADER, UNKNOWN_COLUMN, DUPLICATE_COLUMN, MISSING_REQUIRED_COLUMN. */
  code: HeaderProblemCode;
  column: string | null;
  message: string;
}

export interface ParsedHeader {
  /** Column key per header cell index. */
  keys: string[];
  /** Keys present in the header. */
  present: Set<string>;
}

const normalise = (s: string) => s.toLowerCase().replace(/[\s_-]+/g, '');

/** "code, name, parentCode, parentId, type": for messages. */
export function validColumnList(kind: BulkKind): string {
  return COLUMNS[kind].map((c) => (c.display === c.key ? c.display : `${c.display} (${c.key})`)).join(', ');
}

/** Matches header cells to columns; every problem is reported, not only the first. */
export function parseHeader(kind: BulkKind, cells: readonly string[]): { header?: ParsedHeader; problems: DirectoryHeaderProblem[] } {
  const defs = COLUMNS[kind];
  const byName = new Map<string, ColumnDef>();
  for (const c of defs) {
    byName.set(normalise(c.display), c);
    byName.set(normalise(c.key), c);
  }
  const problems: DirectoryHeaderProblem[] = [];
  const trimmed = cells.map((c) => c.trim());
  if (trimmed.length === 0 || trimmed.every((c) => c === '')) {
    return { problems: [{ code: 'EMPTY_HEADER', column: null, message: `The file has no header row; expected columns: ${validColumnList(kind)}` }] };
  }
  const keys: string[] = [];
  const present = new Set<string>();
  trimmed.forEach((cell, i) => {
    const def = byName.get(normalise(cell));
    if (!def) {
      problems.push({ code: 'UNKNOWN_COLUMN', column: printable(cell), message: `Column ${i + 1} ${JSON.stringify(printable(cell))} is not a ${kind} column` });
      keys.push('');
      return;
    }
    if (present.has(def.key)) {
      problems.push({
        code: 'DUPLICATE_COLUMN',
        column: printable(cell),
        message: `Column ${JSON.stringify(printable(cell))} appears twice (as ${def.display})`,
      });
    }
    present.add(def.key);
    keys.push(def.key);
  });
  for (const def of defs) {
    if (def.required && !present.has(def.key)) {
      problems.push({ code: 'MISSING_REQUIRED_COLUMN', column: def.display, message: `Required column ${JSON.stringify(def.display)} is missing` });
    }
  }
  const oneOf = ONE_OF[kind];
  if (oneOf && !oneOf.some((k) => present.has(k))) {
    const names = oneOf.map((k) => defs.find((d) => d.key === k)!.display);
    problems.push({
      code: 'MISSING_REQUIRED_COLUMN',
      column: names.join(' | '),
      message: `One of the columns ${names.map((n) => JSON.stringify(n)).join(' or ')} is required`,
    });
  }
  return problems.length ? { problems } : { header: { keys, present }, problems };
}

/** A record's cells as trimmed values by column key ('' for an absent or empty cell). */
export function rowValues(header: ParsedHeader, cells: readonly string[]): Record<string, string> {
  const values: Record<string, string> = {};
  header.keys.forEach((k, i) => {
    values[k] = (cells[i] ?? '').trim();
  });
  return values;
}

export function columnDef(kind: BulkKind, key: string): ColumnDef {
  return COLUMNS[kind].find((c) => c.key === key)!;
}
