import { randomUUID } from 'node:crypto';
import { BulkKind, COLUMNS } from '../directory.columns';
import { checkSeen, DirectoryRowErrorCode, enumCell, fail, field, q, remember, run, type Operation, type Planned, type SeenKeys } from './common';
import type { OrganisationRef } from './organisations';

/** Bulk upload rules for users (see common.ts). */

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
      if (userId) checkSeen(seen, `id:${userId}`, DirectoryRowErrorCode.DUPLICATE_USER, 'USER ID', `USER ID ${q(userId)}`);
      const name = field(K, values, 'name', true);
      const phoneCell = field(K, values, 'phone');
      const emailCell = field(K, values, 'email');
      if (phoneCell && !phone) fail(DirectoryRowErrorCode.INVALID_PHONE, 'MOBILE PHONE', `MOBILE PHONE ${q(phoneCell)} is not a 10-digit mobile number`);
      if (emailCell && !email) fail(DirectoryRowErrorCode.INVALID_EMAIL, 'EMAIL', `EMAIL ${q(emailCell)} is not an email address`);
      if (phone) checkSeen(seen, `phone:${phone}`, DirectoryRowErrorCode.DUPLICATE_PHONE, 'MOBILE PHONE', `MOBILE PHONE ${q(phone)}`);
      if (email) checkSeen(seen, `email:${email}`, DirectoryRowErrorCode.DUPLICATE_EMAIL, 'EMAIL', `EMAIL ${q(email)}`);
      if (externalId) checkSeen(seen, `ext:${externalId}`, DirectoryRowErrorCode.DUPLICATE_EXTERNAL_ID, 'EXTERNAL ID', `EXTERNAL ID ${q(externalId)}`);
      const typeCell = field(K, values, 'userType');
      const userType = typeCell ? enumCell(typeCell, [UserType.TEACHER, UserType.OTHER]) : null;
      if (typeCell && !userType) fail(DirectoryRowErrorCode.INVALID_USER_TYPE, 'USER_TYPE', `USER_TYPE ${q(typeCell)} must be teacher or other`);
      const rolesCell = field(K, values, 'roles');
      let roles: string[] | null = null;
      if (rolesCell) {
        roles = [
          ...new Set(
            rolesCell
              .split(',')
              .map((r) => r.trim())
              .filter(Boolean),
          ),
        ];
        const bad = roles.filter((r) => !ROLE_SET.has(r));
        if (bad.length) {
          fail(
            DirectoryRowErrorCode.INVALID_ROLE,
            'ROLES',
            `Unknown role${bad.length > 1 ? 's' : ''} ${bad.map((b) => q(b)).join(', ')}; roles are upper case, one of ${USER_ROLES.join(', ')}`,
          );
        }
      }

      // The organisation: SCHOOL ID and SCHOOL EXTERNAL ID, when both are given, must agree.
      const orgId = field(K, values, 'orgId');
      const orgExt = field(K, values, 'orgExternalId');
      let org: OrganisationRef | undefined;
      if (orgId) {
        org = lookup.orgsById.get(orgId);
        if (!org) fail(DirectoryRowErrorCode.ORGANISATION_NOT_FOUND, 'SCHOOL ID', `No organisation has SCHOOL ID ${q(orgId)}`);
        if (orgExt && org.externalId !== orgExt) {
          fail(
            DirectoryRowErrorCode.CONFLICTING_SCHOOL_REFERENCE,
            'SCHOOL EXTERNAL ID',
            `SCHOOL ID ${q(orgId)} has external id ${q(org.externalId)}, but SCHOOL EXTERNAL ID is ${q(orgExt)}`,
          );
        }
      } else if (orgExt) {
        org = lookup.orgsByExternalId.get(orgExt);
        if (!org) fail(DirectoryRowErrorCode.ORGANISATION_NOT_FOUND, 'SCHOOL EXTERNAL ID', `No organisation has external id ${q(orgExt)}`);
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
        if (!existing) fail(DirectoryRowErrorCode.USER_NOT_FOUND, 'USER ID', `No user has USER ID ${q(userId)}`);
      } else {
        existing = byExt ?? byPhone ?? byEmail;
        ctx.operation = existing ? 'UPDATE' : 'CREATE';
        ctx.id = existing?.id ?? null;
      }
      const other = (u: UserRef | undefined) => u && u.id !== existing?.id;
      if (other(byExt)) fail(DirectoryRowErrorCode.DUPLICATE_EXTERNAL_ID, 'EXTERNAL ID', `EXTERNAL ID ${q(externalId)} belongs to user ${q(byExt!.id)}`);
      if (other(byPhone)) fail(DirectoryRowErrorCode.DUPLICATE_PHONE, 'MOBILE PHONE', `MOBILE PHONE ${q(phone)} belongs to user ${q(byPhone!.id)}`);
      if (other(byEmail)) fail(DirectoryRowErrorCode.DUPLICATE_EMAIL, 'EMAIL', `EMAIL ${q(email)} belongs to user ${q(byEmail!.id)}`);

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
      if (!ref.phone && !ref.email) fail(DirectoryRowErrorCode.MISSING_FIELD, 'MOBILE PHONE', 'MOBILE PHONE or EMAIL is required');
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
        write: {
          id: ref.id,
          name,
          phone: ref.phone,
          email: ref.email,
          organisation_id: ref.organisationId,
          user_type: ref.userType,
          roles: ref.roles,
          external_id: ref.externalId,
        },
        data,
      };
    });
  } finally {
    rememberUser(values, line, seen);
  }
}

/** Registers a user row's keys so later lines see them. */
export function rememberUser(values: Record<string, string>, line: number, seen: SeenKeys): void {
  const phone = values['phone'] ? normalisePhone(values['phone']) : null;
  const email = values['email'] ? normaliseEmail(values['email']) : null;
  remember(seen, line, [
    values['userId'] ? `id:${values['userId']}` : null,
    phone ? `phone:${phone}` : null,
    email ? `email:${email}` : null,
    values['externalId'] ? `ext:${values['externalId']}` : null,
  ]);
}
