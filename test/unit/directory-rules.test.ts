import { describe, expect, it } from 'vitest';
import { BulkKind, parseHeader, rowValues } from '../../src/modules/directory/directory.columns';
import {
  LocationType,
  normaliseEmail,
  normalisePhone,
  OrganisationStatus,
  OrganisationType,
  planLocation,
  planUser,
  type LocationLookup,
  type LocationRef,
  type UserLookup,
} from '../../src/modules/directory/rules';
import { maskEmail, maskPhone } from '../../src/modules/directory/directory.service';

describe('headers', () => {
  it('match display or internal names, case-insensitively, ignoring spaces, _ and -', () => {
    const { header, problems } = parseHeader(BulkKind.USER, [
      ' name ',
      'Mobile Phone',
      'email',
      'schoolId',
      'SCHOOL_EXTERNAL_ID',
      'User Type',
      'roles',
      'USER-ID',
    ]);
    expect(problems).toEqual([]);
    expect(header!.keys).toEqual(['name', 'phone', 'email', 'orgId', 'orgExternalId', 'userType', 'roles', 'userId']);
    expect(rowValues(header!, [' Asha ', '98', '', '', '', 'teacher', 'PUBLIC'])).toMatchObject({ name: 'Asha', phone: '98', userId: '' });
  });

  it('report every problem at once', () => {
    const { header, problems } = parseHeader(BulkKind.ORGANISATION, ['SCHOOL NAME', 'orgName', 'colour']);
    expect(header).toBeUndefined();
    expect(problems.map((p) => [p.code, p.column])).toEqual([
      ['DUPLICATE_COLUMN', 'orgName'],
      ['UNKNOWN_COLUMN', 'colour'],
      ['MISSING_REQUIRED_COLUMN', 'BLOCK CODE'],
    ]);
    expect(parseHeader(BulkKind.LOCATION, ['']).problems[0]!.code).toBe('EMPTY_HEADER');
  });
});

function locations(...refs: LocationRef[]): LocationLookup {
  return { byCode: new Map(refs.map((r) => [r.code, r])), byId: new Map(refs.map((r) => [r.id, r])) };
}

const state: LocationRef = { id: 's1', code: 'ST', name: 'State', type: LocationType.STATE, parentId: null };
const district: LocationRef = { id: 'd1', code: 'DI', name: 'District', type: LocationType.DISTRICT, parentId: 's1' };

describe('location rows', () => {
  it('existing code = update, new code = create, parent exactly one level up', () => {
    const lookup = locations(state, district);
    const seen = new Map<string, number>();
    const upd = planLocation({ code: 'DI', name: 'Renamed', parentCode: 'ST' }, 2, LocationType.DISTRICT, lookup, seen);
    expect(upd).toMatchObject({ ok: true, operation: 'UPDATE', id: 'd1', write: { name: 'Renamed', parent_id: 's1' } });
    const blk = planLocation({ code: 'BL', name: 'Block', parentId: 'd1' }, 3, LocationType.BLOCK, lookup, seen);
    expect(blk).toMatchObject({ ok: true, operation: 'CREATE', data: { parentCode: 'DI', parentId: 'd1', type: 'block' } });
    // A cluster may hang under the block created on line 3.
    expect(planLocation({ code: 'CL', name: 'Cluster', parentCode: 'BL' }, 4, LocationType.CLUSTER, lookup, seen)).toMatchObject({
      ok: true,
      operation: 'CREATE',
    });
    expect(planLocation({ code: 'CL2', name: 'Cluster', parentCode: 'DI' }, 5, LocationType.CLUSTER, lookup, seen)).toMatchObject({
      ok: false,
      code: 'PARENT_WRONG_LEVEL',
      message: 'Parent "DI" is a district; the parent of a cluster must be a block',
    });
    expect(planLocation({ code: 'BL', name: 'Again', parentCode: 'DI' }, 6, LocationType.BLOCK, lookup, seen)).toMatchObject({
      ok: false,
      code: 'DUPLICATE_CODE',
      message: 'Code "BL" is also on line 3 of this file',
    });
    expect(planLocation({ code: 'X', name: 'x', parentCode: 'ST', parentId: 'd1' }, 7, LocationType.DISTRICT, lookup, seen)).toMatchObject({
      ok: false,
      code: 'CONFLICTING_PARENT_REFERENCE',
    });
    expect(planLocation({ code: 'Y', name: 'y'.repeat(301) }, 8, LocationType.STATE, lookup, seen)).toMatchObject({
      ok: false,
      code: 'VALUE_TOO_LONG',
      column: 'name',
    });
  });
});

function users(): UserLookup {
  const org = {
    id: 'o1',
    name: 'School',
    externalId: 'EXT1',
    locationId: 'b1',
    status: OrganisationStatus.ACTIVE,
    description: null,
    type: OrganisationType.SCHOOL,
  };
  const other = { ...org, id: 'o2', externalId: 'EXT2' };
  const u = {
    id: 'u1',
    name: 'A',
    phone: '9876543210',
    email: 'a@example.org',
    organisationId: 'o1',
    userType: 'TEACHER' as never,
    roles: ['PUBLIC'],
    externalId: null,
  };
  return {
    byId: new Map([['u1', u]]),
    byPhone: new Map([['9876543210', u]]),
    byEmail: new Map([['a@example.org', u]]),
    byExternalId: new Map(),
    orgsById: new Map([
      ['o1', org],
      ['o2', other],
    ]),
    orgsByExternalId: new Map([
      ['EXT1', org],
      ['EXT2', other],
    ]),
  };
}

describe('user rows', () => {
  it('phone and email are normalised; masks keep only what identifies', () => {
    expect(normalisePhone('+91 98765-43210')).toBe('9876543210');
    expect(normalisePhone('919876543210')).toBe('9876543210');
    expect(normalisePhone('1234567890')).toBeNull();
    expect(normaliseEmail('A.B@Example.ORG')).toBe('a.b@example.org');
    expect(normaliseEmail('a@b')).toBeNull();
    expect(maskPhone('9876543210')).toBe('******3210');
    expect(maskEmail('vikram@example.org')).toBe('v***@example.org');
  });

  it('SCHOOL ID and SCHOOL EXTERNAL ID must name the same organisation', () => {
    const seen = new Map<string, number>();
    expect(planUser({ name: 'B', phone: '9000000001', orgId: 'o1', orgExternalId: 'EXT2' }, 2, users(), seen)).toMatchObject({
      ok: false,
      code: 'CONFLICTING_SCHOOL_REFERENCE',
    });
    expect(planUser({ name: 'B', phone: '9000000002', orgId: 'o1', orgExternalId: 'EXT1' }, 3, users(), seen)).toMatchObject({
      ok: true,
      operation: 'CREATE',
      write: { organisation_id: 'o1', roles: ['PUBLIC'], user_type: 'TEACHER' },
    });
  });

  it('an existing phone is an update of that user; empty cells keep stored values', () => {
    const r = planUser({ name: 'A2', phone: '98765 43210', roles: '' }, 2, users(), new Map());
    expect(r).toMatchObject({
      ok: true,
      operation: 'UPDATE',
      id: 'u1',
      write: { name: 'A2', email: 'a@example.org', organisation_id: 'o1', roles: ['PUBLIC'] },
    });
  });
});
