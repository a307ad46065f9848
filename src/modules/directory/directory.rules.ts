import { randomUUID } from 'node:crypto';
import { BulkKind, COLUMNS, columnDef } from './directory.columns';

/**
 * Row rules of the bulk upload, pure: a row plus what the database already holds (looked up per
 * batch) plus what earlier rows of the same file did -> one write, or one failure with a stable
 * code. No SQL here; the job fetches, plans, then writes.
 */

export enum LocationType {
  STATE = 'STATE',
  DISTRICT = 'DISTRICT',
  BLOCK = 'BLOCK',
  CLUSTER = 'CLUSTER',
  SCHOOL = 'SCHOOL',
}

/** Top to bottom. A location's parent is the type just before its own. */
export const LOCATION_LEVELS: readonly LocationType[] = [LocationType.STATE, LocationType.DISTRICT, LocationType.BLOCK, LocationType.CLUSTER, LocationType.SCHOOL];

export function parentLevel(t: LocationType): LocationType | null {
  const i = LOCATION_LEVELS.indexOf(t);
  return i > 0 ? LOCATION_LEVELS[i - 1]! : null;
}

/** Why a row failed. Closed and stable: clients branch on these. */
export enum RowErrorCode {
  /** A required value is empty. */
  MISSING_FIELD = 'MISSING_FIELD',
  /** A value is longer than its column allows. */
  VALUE_TOO_LONG = 'VALUE_TOO_LONG',
  /** The record has more cells than the header. */
  WRONG_FIELD_COUNT = 'WRONG_FIELD_COUNT',
  /** A quoted cell is not closed, text follows its closing quote, or a cell that does not start with a quote holds one (`ab"c`). */
  MALFORMED_QUOTES = 'MALFORMED_QUOTES',
  /** The record holds bytes that are not valid in the file's encoding (UTF-8 unless the upload named another). */
  INVALID_UTF8 = 'INVALID_UTF8',
  /** A `type` cell (or the upload's locationType) is not state, district, block, cluster or school. */
  INVALID_LOCATION_TYPE = 'INVALID_LOCATION_TYPE',
  /** The code exists with another location type (a code never changes type). */
  LOCATION_TYPE_MISMATCH = 'LOCATION_TYPE_MISMATCH',
  /** A state has a parentCode or parentId. */
  PARENT_NOT_ALLOWED = 'PARENT_NOT_ALLOWED',
  /** A location below state has neither parentCode nor parentId. */
  PARENT_REQUIRED = 'PARENT_REQUIRED',
  /** parentCode or parentId names no location (in the database or on an earlier line). */
  PARENT_NOT_FOUND = 'PARENT_NOT_FOUND',
  /** The parent is not exactly one level up (a block under a state). */
  PARENT_WRONG_LEVEL = 'PARENT_WRONG_LEVEL',
  /** parentCode and parentId name different locations. */
  CONFLICTING_PARENT_REFERENCE = 'CONFLICTING_PARENT_REFERENCE',
  /** The code already appears on an earlier line of the file. */
  DUPLICATE_CODE = 'DUPLICATE_CODE',
  /** STATUS is not active or inactive. */
  INVALID_STATUS = 'INVALID_STATUS',
  /** ORGANISATION TYPE is not school or board. */
  INVALID_ORGANISATION_TYPE = 'INVALID_ORGANISATION_TYPE',
  /** BLOCK CODE names no location. */
  LOCATION_NOT_FOUND = 'LOCATION_NOT_FOUND',
  /** BLOCK CODE names a location that is not a block. */
  LOCATION_WRONG_TYPE = 'LOCATION_WRONG_TYPE',
  /** SCHOOL ID (or SCHOOL EXTERNAL ID) names no organisation: an update never silently "succeeds". */
  ORGANISATION_NOT_FOUND = 'ORGANISATION_NOT_FOUND',
  /** The same SCHOOL ID is updated twice in one file. */
  DUPLICATE_ORGANISATION = 'DUPLICATE_ORGANISATION',
  /** The external id belongs to another organisation or user, or is on an earlier line. */
  DUPLICATE_EXTERNAL_ID = 'DUPLICATE_EXTERNAL_ID',
  /** SCHOOL ID and SCHOOL EXTERNAL ID do not name the same organisation. */
  CONFLICTING_SCHOOL_REFERENCE = 'CONFLICTING_SCHOOL_REFERENCE',
  /** MOBILE PHONE is not a 10-digit Indian mobile number (optionally +91). */
  INVALID_PHONE = 'INVALID_PHONE',
  /** EMAIL is not an address. */
  INVALID_EMAIL = 'INVALID_EMAIL',
  /** USER_TYPE is not teacher or other. */
  INVALID_USER_TYPE = 'INVALID_USER_TYPE',
  /** A role is not one of the known upper-case role names. */
  INVALID_ROLE = 'INVALID_ROLE',
  /** USER ID names no user. */
  USER_NOT_FOUND = 'USER_NOT_FOUND',
  /** The same USER ID is updated twice in one file. */
  DUPLICATE_USER = 'DUPLICATE_USER',
  /** The phone belongs to another user, or is on an earlier line. */
  DUPLICATE_PHONE = 'DUPLICATE_PHONE',
  /** The email belongs to another user, or is on an earlier line. */
  DUPLICATE_EMAIL = 'DUPLICATE_EMAIL',
  /** The database refused the write (e.g. a concurrent upload took the same key); nothing was written. */
  WRITE_CONFLICT = 'WRITE_CONFLICT',
}

export type Operation = 'CREATE' | 'UPDATE';

export interface RowFailure {
  code: RowErrorCode;
  /** Display name of the column concerned, when one is. */
  column: string | null;
  message: string;
}

export type Planned<W> =
  | { ok: true; operation: Operation; id: string; write: W; data: Record<string, unknown> }
  | ({ ok: false; operation: Operation | null; id: string | null; data: Record<string, unknown> } & RowFailure);

/** Keys seen on earlier lines of the file (`code:APDIST1` -> line). */
export type SeenKeys = Map<string, number>;

class Fail extends Error {
  constructor(readonly failure: RowFailure) {
    super(failure.message);
  }
}

function fail(code: RowErrorCode, column: string | null, message: string): never {
  throw new Fail({ code, column, message });
}

const q = JSON.stringify;

/** Shared field checks: required and length, by column key. */
function field(kind: BulkKind, values: Record<string, string>, key: string, required = false): string {
  const def = columnDef(kind, key);
  const v = values[key] ?? '';
  if (required && v === '') fail(RowErrorCode.MISSING_FIELD, def.display, `${def.display} is required`);
  if (v.length > def.maxLength) fail(RowErrorCode.VALUE_TOO_LONG, def.display, `${def.display} is ${v.length} characters; the limit is ${def.maxLength}`);
  return v;
}

function checkSeen(seen: SeenKeys, key: string, code: RowErrorCode, column: string, what: string): void {
  const line = seen.get(key);
  if (line !== undefined) fail(code, column, `${what} is also on line ${line} of this file`);
}

/** Records a row's keys so later lines see them. Called for every row, failed or not. */
function remember(seen: SeenKeys, line: number, keys: Array<string | null>): void {
  for (const k of keys) if (k && !seen.has(k)) seen.set(k, line);
}

function run<W>(data: Record<string, unknown>, ctx: { operation: Operation | null; id: string | null }, fn: () => Planned<W>): Planned<W> {
  try {
    return fn();
  } catch (err) {
    if (err instanceof Fail) return { ok: false, operation: ctx.operation, id: ctx.id, data, ...err.failure };
    throw err;
  }
}

// ---------------------------------------------------------------- locations

export interface LocationRef {
  id: string;
  code: string;
  name: string;
  type: LocationType;
  parentId: string | null;
}

export interface LocationLookup {
  byCode: Map<string, LocationRef>;
  byId: Map<string, LocationRef>;
}

export interface LocationWrite {
  id: string;
  code: string;
  name: string;
  type: LocationType;
  parent_id: string | null;
}

export function parseLocationType(raw: string): LocationType | null {
  const t = raw.trim().toUpperCase();
  return (LOCATION_LEVELS as readonly string[]).includes(t) ? (t as LocationType) : null;
}

/** What a batch of location rows needs looked up. */
export function locationKeys(rows: Array<Record<string, string>>): { codes: string[]; ids: string[] } {
  const codes = new Set<string>();
  const ids = new Set<string>();
  for (const r of rows) {
    if (r['code']) codes.add(r['code']);
    if (r['parentCode']) codes.add(r['parentCode']);
    if (r['parentId']) ids.add(r['parentId']);
  }
  return { codes: [...codes], ids: [...ids] };
}

/**
 * Existing code = update, new code = create. The parent is parentCode or parentId (both: they must
 * agree) and must be exactly one level up; earlier lines of the same file count as existing.
 */
export function planLocation(
  values: Record<string, string>,
  line: number,
  fileType: LocationType | null,
  lookup: LocationLookup,
  seen: SeenKeys,
): Planned<LocationWrite> {
  const K = BulkKind.LOCATION;
  const data: Record<string, unknown> = { code: values['code'] ?? '', name: values['name'] ?? '', type: null, parentCode: values['parentCode'] || null, parentId: values['parentId'] || null };
  const ctx = { operation: null as Operation | null, id: null as string | null };
  try {
    return run(data, ctx, () => {
      const code = field(K, values, 'code', true);
      checkSeen(seen, `code:${code}`, RowErrorCode.DUPLICATE_CODE, 'code', `Code ${q(code)}`);
      const name = field(K, values, 'name', true);
      const typeCell = field(K, values, 'type');
      const type = typeCell ? parseLocationType(typeCell) : fileType;
      if (!type) {
        if (typeCell) fail(RowErrorCode.INVALID_LOCATION_TYPE, 'type', `type ${q(typeCell)} must be one of ${LOCATION_LEVELS.join(', ').toLowerCase()}`);
        fail(RowErrorCode.MISSING_FIELD, 'type', 'type is required (no locationType was given for the upload)');
      }
      data['type'] = type.toLowerCase();
      const existing = lookup.byCode.get(code);
      ctx.operation = existing ? 'UPDATE' : 'CREATE';
      ctx.id = existing?.id ?? null;
      if (existing && existing.type !== type) {
        fail(RowErrorCode.LOCATION_TYPE_MISMATCH, 'code', `Code ${q(code)} exists as a ${existing.type.toLowerCase()}, not a ${type.toLowerCase()}`);
      }
      const parentCode = field(K, values, 'parentCode');
      const parentId = field(K, values, 'parentId');
      const want = parentLevel(type);
      let parent: LocationRef | null = null;
      if (!want) {
        if (parentCode || parentId) fail(RowErrorCode.PARENT_NOT_ALLOWED, parentCode ? 'parentCode' : 'parentId', `A state has no parent; got ${q(parentCode || parentId)}`);
      } else {
        if (!parentCode && !parentId) fail(RowErrorCode.PARENT_REQUIRED, 'parentCode', `A ${type.toLowerCase()} needs parentCode or parentId (a ${want.toLowerCase()})`);
        const byCode = parentCode ? lookup.byCode.get(parentCode) : undefined;
        const byId = parentId ? lookup.byId.get(parentId) : undefined;
        if (parentCode && !byCode) fail(RowErrorCode.PARENT_NOT_FOUND, 'parentCode', `No location has code ${q(parentCode)}`);
        if (parentId && !byId) fail(RowErrorCode.PARENT_NOT_FOUND, 'parentId', `No location has id ${q(parentId)}`);
        if (byCode && byId && byCode.id !== byId.id) {
          fail(RowErrorCode.CONFLICTING_PARENT_REFERENCE, 'parentId', `parentCode ${q(parentCode)} is location ${q(byCode.id)} but parentId is ${q(parentId)}`);
        }
        parent = (byCode ?? byId)!;
        if (parent.type !== want) {
          fail(
            RowErrorCode.PARENT_WRONG_LEVEL,
            parentCode ? 'parentCode' : 'parentId',
            `Parent ${q(parent.code)} is a ${parent.type.toLowerCase()}; the parent of a ${type.toLowerCase()} must be a ${want.toLowerCase()}`,
          );
        }
      }
      data['parentCode'] = parent?.code ?? null;
      data['parentId'] = parent?.id ?? null;
      const id = existing?.id ?? randomUUID();
      const ref: LocationRef = { id, code, name, type, parentId: parent?.id ?? null };
      // Later lines of this file may hang under this one.
      lookup.byCode.set(code, ref);
      lookup.byId.set(id, ref);
      return { ok: true, operation: ctx.operation, id, write: { id, code, name, type, parent_id: ref.parentId }, data };
    });
  } finally {
    rememberRow(K, values, line, seen);
  }
}

// ---------------------------------------------------------------- organisations

export enum OrganisationStatus {
  ACTIVE = 'ACTIVE',
  INACTIVE = 'INACTIVE',
}

export enum OrganisationType {
  SCHOOL = 'SCHOOL',
  BOARD = 'BOARD',
}

export interface OrganisationRef {
  id: string;
  name: string;
  externalId: string | null;
  locationId: string | null;
  status: OrganisationStatus;
  description: string | null;
  type: OrganisationType;
}

export interface OrganisationLookup {
  byId: Map<string, OrganisationRef>;
  byExternalId: Map<string, OrganisationRef>;
  locationsByCode: Map<string, LocationRef>;
}

export interface OrganisationWrite {
  id: string;
  name: string;
  external_id: string | null;
  location_id: string;
  status: OrganisationStatus;
  description: string | null;
  type: OrganisationType;
}

export function organisationKeys(rows: Array<Record<string, string>>): { ids: string[]; externalIds: string[]; locationCodes: string[] } {
  const ids = new Set<string>();
  const ext = new Set<string>();
  const locs = new Set<string>();
  for (const r of rows) {
    if (r['organisationId']) ids.add(r['organisationId']);
    if (r['externalId']) ext.add(r['externalId']);
    if (r['locationCode']) locs.add(r['locationCode']);
  }
  return { ids: [...ids], externalIds: [...ext], locationCodes: [...locs] };
}

function enumCell<T extends string>(raw: string, allowed: readonly T[]): T | null {
  const v = raw.toUpperCase();
  return (allowed as readonly string[]).includes(v) ? (v as T) : null;
}

/**
 * SCHOOL ID present = update that organisation (it must exist). Otherwise EXTERNAL ID is required:
 * an existing external id = update, a new one = create, so uploading a file twice never doubles.
 * Empty optional cells of an update keep the stored value.
 */
export function planOrganisation(values: Record<string, string>, line: number, lookup: OrganisationLookup, seen: SeenKeys): Planned<OrganisationWrite> {
  const K = BulkKind.ORGANISATION;
  const data: Record<string, unknown> = Object.fromEntries(COLUMNS[K].map((c) => [c.key, values[c.key] || null]));
  const ctx = { operation: null as Operation | null, id: null as string | null };
  try {
    return run(data, ctx, () => {
      const orgId = field(K, values, 'organisationId');
      const externalId = field(K, values, 'externalId');
      if (orgId) checkSeen(seen, `id:${orgId}`, RowErrorCode.DUPLICATE_ORGANISATION, 'SCHOOL ID', `SCHOOL ID ${q(orgId)}`);
      if (externalId) checkSeen(seen, `ext:${externalId}`, RowErrorCode.DUPLICATE_EXTERNAL_ID, 'EXTERNAL ID', `EXTERNAL ID ${q(externalId)}`);
      const name = field(K, values, 'orgName', true);
      const locationCode = field(K, values, 'locationCode', true);
      const statusCell = field(K, values, 'status');
      const status = statusCell ? enumCell(statusCell, [OrganisationStatus.ACTIVE, OrganisationStatus.INACTIVE]) : null;
      if (statusCell && !status) fail(RowErrorCode.INVALID_STATUS, 'STATUS', `STATUS ${q(statusCell)} must be active or inactive`);
      const typeCell = field(K, values, 'organisationType');
      const type = typeCell ? enumCell(typeCell, [OrganisationType.SCHOOL, OrganisationType.BOARD]) : null;
      if (typeCell && !type) fail(RowErrorCode.INVALID_ORGANISATION_TYPE, 'ORGANISATION TYPE', `ORGANISATION TYPE ${q(typeCell)} must be school or board`);
      const description = field(K, values, 'description');

      let existing: OrganisationRef | undefined;
      const byExt = externalId ? lookup.byExternalId.get(externalId) : undefined;
      if (orgId) {
        ctx.operation = 'UPDATE';
        ctx.id = orgId;
        existing = lookup.byId.get(orgId);
        if (!existing) fail(RowErrorCode.ORGANISATION_NOT_FOUND, 'SCHOOL ID', `No organisation has SCHOOL ID ${q(orgId)}`);
        if (byExt && byExt.id !== existing.id) fail(RowErrorCode.DUPLICATE_EXTERNAL_ID, 'EXTERNAL ID', `EXTERNAL ID ${q(externalId)} belongs to organisation ${q(byExt.id)}`);
      } else {
        if (!externalId) fail(RowErrorCode.MISSING_FIELD, 'EXTERNAL ID', 'EXTERNAL ID is required when SCHOOL ID is empty (it identifies the organisation on a re-upload)');
        existing = byExt;
        ctx.operation = existing ? 'UPDATE' : 'CREATE';
        ctx.id = existing?.id ?? null;
      }
      const location = lookup.locationsByCode.get(locationCode);
      if (!location) fail(RowErrorCode.LOCATION_NOT_FOUND, 'BLOCK CODE', `No location has code ${q(locationCode)}`);
      if (location.type !== LocationType.BLOCK) fail(RowErrorCode.LOCATION_WRONG_TYPE, 'BLOCK CODE', `Location ${q(locationCode)} is a ${location.type.toLowerCase()}, not a block`);

      const id = existing?.id ?? randomUUID();
      const ref: OrganisationRef = {
        id,
        name,
        externalId: externalId || existing?.externalId || null,
        locationId: location.id,
        status: status ?? existing?.status ?? OrganisationStatus.ACTIVE,
        description: description || existing?.description || null,
        type: type ?? existing?.type ?? OrganisationType.SCHOOL,
      };
      lookup.byId.set(id, ref);
      if (ref.externalId) lookup.byExternalId.set(ref.externalId, ref);
      Object.assign(data, { status: ref.status.toLowerCase(), organisationType: ref.type.toLowerCase(), externalId: ref.externalId, locationId: location.id });
      return {
        ok: true,
        operation: existing ? 'UPDATE' : 'CREATE',
        id,
        write: { id, name, external_id: ref.externalId, location_id: location.id, status: ref.status, description: ref.description, type: ref.type },
        data,
      };
    });
  } finally {
    rememberRow(K, values, line, seen);
  }
}

// ---------------------------------------------------------------- users

export enum UserType {
  TEACHER = 'TEACHER',
  OTHER = 'OTHER',
}

/** The roles a bulk upload may grant (Sunbird's role names; system roles are not grantable here). */
export const USER_ROLES: readonly string[] = [
  'PUBLIC',
  'ANNOUNCEMENT_SENDER',
  'BOOK_CREATOR',
  'BOOK_REVIEWER',
  'CONTENT_CREATOR',
  'CONTENT_REVIEWER',
  'COURSE_ADMIN',
  'COURSE_CREATOR',
  'COURSE_MENTOR',
  'FLAG_REVIEWER',
  'MEMBERSHIP_MANAGER',
  'ORG_ADMIN',
  'ORG_MODERATOR',
  'PROGRAM_DESIGNER',
  'PROGRAM_MANAGER',
  'REPORT_ADMIN',
  'REPORT_VIEWER',
  'TEACHER_BADGE_ISSUER',
];
const ROLE_SET = new Set(USER_ROLES);

export interface UserRef {
  id: string;
  name: string;
  phone: string | null;
  email: string | null;
  organisationId: string | null;
  userType: UserType;
  roles: string[];
  externalId: string | null;
}

export interface UserLookup {
  byId: Map<string, UserRef>;
  byPhone: Map<string, UserRef>;
  byEmail: Map<string, UserRef>;
  byExternalId: Map<string, UserRef>;
  orgsById: Map<string, OrganisationRef>;
  orgsByExternalId: Map<string, OrganisationRef>;
}

export interface UserWrite {
  id: string;
  name: string;
  phone: string | null;
  email: string | null;
  organisation_id: string | null;
  user_type: UserType;
  roles: string[];
  external_id: string | null;
}

/** `98765 43210`, `+91-9876543210`, `919876543210` -> `9876543210`; null when not a mobile number. */
export function normalisePhone(raw: string): string | null {
  let d = raw.replace(/[\s()-]/g, '');
  if (d.startsWith('+91')) d = d.slice(3);
  else if (/^91\d{10}$/.test(d)) d = d.slice(2);
  else if (/^0\d{10}$/.test(d)) d = d.slice(1);
  return /^[6-9]\d{9}$/.test(d) ? d : null;
}

const EMAIL = /^[^\s@,;<>"]+@[^\s@,;<>"]+\.[^\s@,;<>".]{2,}$/;

export function normaliseEmail(raw: string): string | null {
  const e = raw.toLowerCase();
  return EMAIL.test(e) ? e : null;
}

export function userKeys(rows: Array<Record<string, string>>) {
  const ids = new Set<string>();
  const phones = new Set<string>();
  const emails = new Set<string>();
  const ext = new Set<string>();
  const orgIds = new Set<string>();
  const orgExt = new Set<string>();
  for (const r of rows) {
    if (r['userId']) ids.add(r['userId']);
    const p = r['phone'] ? normalisePhone(r['phone']) : null;
    if (p) phones.add(p);
    const e = r['email'] ? normaliseEmail(r['email']) : null;
    if (e) emails.add(e);
    if (r['externalId']) ext.add(r['externalId']);
    if (r['orgId']) orgIds.add(r['orgId']);
    if (r['orgExternalId']) orgExt.add(r['orgExternalId']);
  }
  return { ids: [...ids], phones: [...phones], emails: [...emails], externalIds: [...ext], orgIds: [...orgIds], orgExternalIds: [...orgExt] };
}

/**
 * USER ID present = update that user (it must exist). Otherwise the user is found by EXTERNAL ID,
 * phone or email (they must not point at different users): found = update, not found = create.
 * Empty optional cells of an update keep the stored value.
 */
export function planUser(values: Record<string, string>, line: number, lookup: UserLookup, seen: SeenKeys): Planned<UserWrite> {
  const K = BulkKind.USER;
  const data: Record<string, unknown> = Object.fromEntries(COLUMNS[K].map((c) => [c.key, values[c.key] || null]));
  const ctx = { operation: null as Operation | null, id: null as string | null };
  const phone = values['phone'] ? normalisePhone(values['phone']) : null;
  const email = values['email'] ? normaliseEmail(values['email']) : null;
  try {
    return run(data, ctx, () => {
      const userId = field(K, values, 'userId');
      const externalId = field(K, values, 'externalId');
      if (userId) checkSeen(seen, `id:${userId}`, RowErrorCode.DUPLICATE_USER, 'USER ID', `USER ID ${q(userId)}`);
      const name = field(K, values, 'name', true);
      const phoneCell = field(K, values, 'phone');
      const emailCell = field(K, values, 'email');
      if (phoneCell && !phone) fail(RowErrorCode.INVALID_PHONE, 'MOBILE PHONE', `MOBILE PHONE ${q(phoneCell)} is not a 10-digit mobile number`);
      if (emailCell && !email) fail(RowErrorCode.INVALID_EMAIL, 'EMAIL', `EMAIL ${q(emailCell)} is not an email address`);
      if (phone) checkSeen(seen, `phone:${phone}`, RowErrorCode.DUPLICATE_PHONE, 'MOBILE PHONE', `MOBILE PHONE ${q(phone)}`);
      if (email) checkSeen(seen, `email:${email}`, RowErrorCode.DUPLICATE_EMAIL, 'EMAIL', `EMAIL ${q(email)}`);
      if (externalId) checkSeen(seen, `ext:${externalId}`, RowErrorCode.DUPLICATE_EXTERNAL_ID, 'EXTERNAL ID', `EXTERNAL ID ${q(externalId)}`);
      const typeCell = field(K, values, 'userType');
      const userType = typeCell ? enumCell(typeCell, [UserType.TEACHER, UserType.OTHER]) : null;
      if (typeCell && !userType) fail(RowErrorCode.INVALID_USER_TYPE, 'USER_TYPE', `USER_TYPE ${q(typeCell)} must be teacher or other`);
      const rolesCell = field(K, values, 'roles');
      let roles: string[] | null = null;
      if (rolesCell) {
        roles = [...new Set(rolesCell.split(',').map((r) => r.trim()).filter(Boolean))];
        const bad = roles.filter((r) => !ROLE_SET.has(r));
        if (bad.length) {
          fail(RowErrorCode.INVALID_ROLE, 'ROLES', `Unknown role${bad.length > 1 ? 's' : ''} ${bad.map((b) => q(b)).join(', ')}; roles are upper case, one of ${USER_ROLES.join(', ')}`);
        }
      }

      // The organisation: SCHOOL ID and SCHOOL EXTERNAL ID, when both are given, must agree.
      const orgId = field(K, values, 'orgId');
      const orgExt = field(K, values, 'orgExternalId');
      let org: OrganisationRef | undefined;
      if (orgId) {
        org = lookup.orgsById.get(orgId);
        if (!org) fail(RowErrorCode.ORGANISATION_NOT_FOUND, 'SCHOOL ID', `No organisation has SCHOOL ID ${q(orgId)}`);
        if (orgExt && org.externalId !== orgExt) {
          fail(
            RowErrorCode.CONFLICTING_SCHOOL_REFERENCE,
            'SCHOOL EXTERNAL ID',
            `SCHOOL ID ${q(orgId)} has external id ${q(org.externalId)}, but SCHOOL EXTERNAL ID is ${q(orgExt)}`,
          );
        }
      } else if (orgExt) {
        org = lookup.orgsByExternalId.get(orgExt);
        if (!org) fail(RowErrorCode.ORGANISATION_NOT_FOUND, 'SCHOOL EXTERNAL ID', `No organisation has external id ${q(orgExt)}`);
      }

      // Who this row is.
      const byPhone = phone ? lookup.byPhone.get(phone) : undefined;
      const byEmail = email ? lookup.byEmail.get(email) : undefined;
      const byExt = externalId ? lookup.byExternalId.get(externalId) : undefined;
      let existing: UserRef | undefined;
      if (userId) {
        ctx.operation = 'UPDATE';
        ctx.id = userId;
        existing = lookup.byId.get(userId);
        if (!existing) fail(RowErrorCode.USER_NOT_FOUND, 'USER ID', `No user has USER ID ${q(userId)}`);
      } else {
        existing = byExt ?? byPhone ?? byEmail;
        ctx.operation = existing ? 'UPDATE' : 'CREATE';
        ctx.id = existing?.id ?? null;
      }
      const other = (u: UserRef | undefined) => u && u.id !== existing?.id;
      if (other(byExt)) fail(RowErrorCode.DUPLICATE_EXTERNAL_ID, 'EXTERNAL ID', `EXTERNAL ID ${q(externalId)} belongs to user ${q(byExt!.id)}`);
      if (other(byPhone)) fail(RowErrorCode.DUPLICATE_PHONE, 'MOBILE PHONE', `MOBILE PHONE ${q(phone)} belongs to user ${q(byPhone!.id)}`);
      if (other(byEmail)) fail(RowErrorCode.DUPLICATE_EMAIL, 'EMAIL', `EMAIL ${q(email)} belongs to user ${q(byEmail!.id)}`);

      const ref: UserRef = {
        id: existing?.id ?? randomUUID(),
        name,
        phone: phone ?? existing?.phone ?? null,
        email: email ?? existing?.email ?? null,
        organisationId: org?.id ?? existing?.organisationId ?? null,
        userType: userType ?? existing?.userType ?? UserType.TEACHER,
        roles: roles ?? existing?.roles ?? ['PUBLIC'],
        externalId: externalId || existing?.externalId || null,
      };
      if (!ref.phone && !ref.email) fail(RowErrorCode.MISSING_FIELD, 'MOBILE PHONE', 'MOBILE PHONE or EMAIL is required');
      lookup.byId.set(ref.id, ref);
      if (ref.phone) lookup.byPhone.set(ref.phone, ref);
      if (ref.email) lookup.byEmail.set(ref.email, ref);
      if (ref.externalId) lookup.byExternalId.set(ref.externalId, ref);
      Object.assign(data, {
        phone: ref.phone,
        email: ref.email,
        orgId: ref.organisationId,
        orgExternalId: org?.externalId ?? (values['orgExternalId'] || null),
        userType: ref.userType.toLowerCase(),
        roles: ref.roles,
        externalId: ref.externalId,
      });
      return {
        ok: true,
        operation: existing ? 'UPDATE' : 'CREATE',
        id: ref.id,
        write: { id: ref.id, name, phone: ref.phone, email: ref.email, organisation_id: ref.organisationId, user_type: ref.userType, roles: ref.roles, external_id: ref.externalId },
        data,
      };
    });
  } finally {
    rememberRow(K, values, line, seen);
  }
}

/** Registers a row's keys without planning it (rows a resumed job already applied). */
export function rememberRow(kind: BulkKind, values: Record<string, string>, line: number, seen: SeenKeys): void {
  if (kind === BulkKind.LOCATION) remember(seen, line, [values['code'] ? `code:${values['code']}` : null]);
  else if (kind === BulkKind.ORGANISATION) {
    remember(seen, line, [values['organisationId'] ? `id:${values['organisationId']}` : null, values['externalId'] ? `ext:${values['externalId']}` : null]);
  } else {
    const phone = values['phone'] ? normalisePhone(values['phone']) : null;
    const email = values['email'] ? normaliseEmail(values['email']) : null;
    remember(seen, line, [
      values['userId'] ? `id:${values['userId']}` : null,
      phone ? `phone:${phone}` : null,
      email ? `email:${email}` : null,
      values['externalId'] ? `ext:${values['externalId']}` : null,
    ]);
  }
}
