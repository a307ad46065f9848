import { codeValues } from '../../../shared/codes';
import { type BulkKind, columnDef } from '../directory.columns';

/**
 * Row rules of the bulk upload, pure: a row plus what the database already holds (looked up per
 * batch) plus what earlier rows of the same file did -> one write, or one failure with a stable
 * code. No SQL here; the job fetches, plans, then writes.
 * This file holds what the three kinds share (codes, failures, field checks); locations.ts,
 * organisations.ts and users.ts hold one kind each.
 */

/**
 * Why a bulk upload row failed, each with its description (the schema's DirectoryRowErrorCode
 * takes both from here). Closed and stable: clients branch on these.
 */
export const DIRECTORY_ROW_ERROR_CODES = {
  MISSING_FIELD: 'A required value is empty.',
  VALUE_TOO_LONG: 'A value is longer than its column allows.',
  WRONG_FIELD_COUNT: 'The record has more cells than the header.',
  MALFORMED_QUOTES: 'A quoted cell is not closed, text follows its closing quote, or a cell that does not start with a quote holds one (`ab"c`).',
  INVALID_UTF8: "The record holds bytes that are not valid in the file's encoding (UTF-8 unless the upload named another).",
  INVALID_LOCATION_TYPE: "A `type` cell (or the upload's locationType) is not state, district, block, cluster or school.",
  LOCATION_TYPE_MISMATCH: 'The code exists with another location type (a code never changes type).',
  PARENT_NOT_ALLOWED: 'A state has a parentCode or parentId.',
  PARENT_REQUIRED: 'A location below state has neither parentCode nor parentId.',
  PARENT_NOT_FOUND: 'parentCode or parentId names no location (in the database or on an earlier line).',
  PARENT_WRONG_LEVEL: 'The parent is not exactly one level up (a block under a state).',
  CONFLICTING_PARENT_REFERENCE: 'parentCode and parentId name different locations.',
  DUPLICATE_CODE: 'The code already appears on an earlier line of the file.',
  INVALID_STATUS: 'STATUS is not active or inactive.',
  INVALID_ORGANISATION_TYPE: 'ORGANISATION TYPE is not school or board.',
  LOCATION_NOT_FOUND: 'BLOCK CODE names no location.',
  LOCATION_WRONG_TYPE: 'BLOCK CODE names a location that is not a block.',
  ORGANISATION_NOT_FOUND: 'SCHOOL ID (or SCHOOL EXTERNAL ID) names no organisation: an update never silently "succeeds".',
  DUPLICATE_ORGANISATION: 'The same SCHOOL ID is updated twice in one file.',
  DUPLICATE_EXTERNAL_ID: 'The external id belongs to another organisation or user, or is on an earlier line.',
  CONFLICTING_SCHOOL_REFERENCE: 'SCHOOL ID and SCHOOL EXTERNAL ID do not name the same organisation.',
  INVALID_PHONE: 'MOBILE PHONE is not a 10-digit Indian mobile number (optionally +91).',
  INVALID_EMAIL: 'EMAIL is not an address.',
  INVALID_USER_TYPE: 'USER_TYPE is not teacher or other.',
  INVALID_ROLE: 'A role is not one of the known upper-case role names.',
  USER_NOT_FOUND: 'USER ID names no user.',
  DUPLICATE_USER: 'The same USER ID is updated twice in one file.',
  DUPLICATE_PHONE: 'The phone belongs to another user, or is on an earlier line.',
  DUPLICATE_EMAIL: 'The email belongs to another user, or is on an earlier line.',
  WRITE_CONFLICT: 'The database refused the write (e.g. a concurrent upload took the same key); nothing was written.',
} as const;
export type DirectoryRowErrorCode = keyof typeof DIRECTORY_ROW_ERROR_CODES;
/** `DirectoryRowErrorCode.MISSING_FIELD` is `'MISSING_FIELD'`. */
export const DirectoryRowErrorCode = codeValues(DIRECTORY_ROW_ERROR_CODES);

export type Operation = 'CREATE' | 'UPDATE';

export interface RowFailure {
  code: DirectoryRowErrorCode;
  /** Display name of the column concerned, when one is. */
  column: string | null;
  message: string;
}

export type Planned<W> =
  | { ok: true; operation: Operation; id: string; write: W; data: Record<string, unknown> }
  | ({ ok: false; operation: Operation | null; id: string | null; data: Record<string, unknown> } & RowFailure);

/** Keys seen on earlier lines of the file (`code:APDIST1` -> line). */
export type SeenKeys = Map<string, number>;

export class Fail extends Error {
  constructor(readonly failure: RowFailure) {
    super(failure.message);
  }
}

export function fail(code: DirectoryRowErrorCode, column: string | null, message: string): never {
  throw new Fail({ code, column, message });
}

export const q = JSON.stringify;

/** Shared field checks: required and length, by column key. */
export function field(kind: BulkKind, values: Record<string, string>, key: string, required = false): string {
  const def = columnDef(kind, key);
  const v = values[key] ?? '';
  if (required && v === '') fail(DirectoryRowErrorCode.MISSING_FIELD, def.display, `${def.display} is required`);
  if (v.length > def.maxLength)
    fail(DirectoryRowErrorCode.VALUE_TOO_LONG, def.display, `${def.display} is ${v.length} characters; the limit is ${def.maxLength}`);
  return v;
}

export function checkSeen(seen: SeenKeys, key: string, code: DirectoryRowErrorCode, column: string, what: string): void {
  const line = seen.get(key);
  if (line !== undefined) fail(code, column, `${what} is also on line ${line} of this file`);
}

/** Records a row's keys so later lines see them. Called for every row, failed or not. */
export function remember(seen: SeenKeys, line: number, keys: Array<string | null>): void {
  for (const k of keys) if (k && !seen.has(k)) seen.set(k, line);
}

export function run<W>(data: Record<string, unknown>, ctx: { operation: Operation | null; id: string | null }, fn: () => Planned<W>): Planned<W> {
  try {
    return fn();
  } catch (err) {
    if (err instanceof Fail) return { ok: false, operation: ctx.operation, id: ctx.id, data, ...err.failure };
    throw err;
  }
}

export function enumCell<T extends string>(raw: string, allowed: readonly T[]): T | null {
  const v = raw.toUpperCase();
  return (allowed as readonly string[]).includes(v) ? (v as T) : null;
}
