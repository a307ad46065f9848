import fs from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  BulkUploadDocument,
  LocationsDocument,
  OrganisationsDocument,
  RetryJobDocument,
  UploadStatusDocument,
  UsersDocument,
  type BulkUploadKind,
  type CsvDelimiter,
  type CsvEncoding,
  type LocationType,
  type SluiceClient,
} from '../../src/sdk/client';
import { codeOf, startTestApp, type TestApp } from '../helpers/app';
import { collectJobEvents, FAST_JOBS } from '../helpers/jobs';
import { repoRoot } from '../helpers/process';

const fixtures = path.resolve(repoRoot, 'test/fixtures/sunbird');
const readFixture = (p: string) => fs.readFile(path.join(fixtures, p), 'utf8');

let t: TestApp;
let ingestor: SluiceClient;
let viewer: SluiceClient;

const MAX_ROWS = 50_000;

beforeAll(async () => {
  t = await startTestApp({ ...FAST_JOBS, SLUICE_BULK_MAX_ROWS: String(MAX_ROWS), SLUICE_BULK_MAX_FILE_SIZE_BYTES: String(4 * 1024 * 1024) });
  ingestor = await t.clientWith(['INGESTOR']);
  viewer = await t.clientWith(['VIEWER']);
});

interface UploadOpts {
  locationType?: LocationType;
  name?: string;
  idempotencyKey?: string;
  encoding?: CsvEncoding;
  delimiter?: CsvDelimiter;
}

function uploadRaw(client: SluiceClient, kind: BulkUploadKind, body: string | Uint8Array, opts: UploadOpts = {}) {
  return client.uploadRaw(
    BulkUploadDocument,
    { kind, file: null, locationType: opts.locationType, idempotencyKey: opts.idempotencyKey, encoding: opts.encoding, delimiter: opts.delimiter },
    { file: { body, filename: opts.name ?? `${kind.toLowerCase()}.csv`, contentType: 'text/csv' } },
  );
}

async function upload(client: SluiceClient, kind: BulkUploadKind, body: string | Uint8Array, opts: UploadOpts = {}) {
  const res = await uploadRaw(client, kind, body, opts);
  if (!res.body.data) throw new Error(`bulkUpload failed: ${JSON.stringify(res.body)}`);
  return res.body.data.bulkUpload;
}

/** Uploads, follows the job to its end through jobUpdated, returns every event and the full status. */
async function run(client: SluiceClient, kind: BulkUploadKind, body: string | Uint8Array, opts: UploadOpts = {}) {
  const up = await upload(client, kind, body, opts);
  const events = await collectJobEvents(client, up.status.job.id, { afterSeq: 0, timeoutMs: 120_000 });
  const { uploadStatus } = await client.request(UploadStatusDocument, { processId: up.processId, first: 1000 });
  const ok = uploadStatus.successResult.nodes;
  const failed = uploadStatus.failureResult.nodes;
  return { up, events, status: uploadStatus, ok, failed };
}

const brief = (rows: Array<{ line: number; operation: string | null; errorCode?: string | null }>) =>
  rows.map((r) => [r.line, r.operation, r.errorCode ?? null]);

async function count(table: string): Promise<number> {
  const [row] = await t.database.sql`select count(*)::int as n from ${t.database.sql(table)}`;
  return row!['n'] as number;
}

describe('locations: the Sunbird fixtures', () => {
  let apcode: string;

  it('creates the states, reporting NOT_STARTED -> IN_PROGRESS -> COMPLETED truly', async () => {
    const r = await run(ingestor, 'LOCATION', await readFixture('location-upload-state.CONSTRUCTED.csv'), { locationType: 'STATE' });
    expect(r.up.created).toBe(true);
    expect(typeof r.up.processId).toBe('string');
    expect(r.up.status).toMatchObject({ status: 'NOT_STARTED', objectType: 'LOCATION', locationType: 'STATE', counts: { total: 2, processed: 0 } });
    expect(r.events.map((e) => e.state)).toContain('RUNNING');
    expect(r.events.at(-1)).toMatchObject({ state: 'SUCCEEDED', progress: { total: 2, processed: 2, succeeded: 2, failed: 0 } });
    expect(r.status).toMatchObject({ status: 'COMPLETED', message: 'Operation is completed.', counts: { total: 2, processed: 2, succeeded: 2, failed: 0 } });
    expect(brief(r.ok)).toEqual([
      [2, 'CREATE', null],
      [3, 'CREATE', null],
    ]);
    expect(r.ok[0]!.data).toMatchObject({ code: 'APCODE', name: 'Andhra Pradesh', type: 'state', parentCode: null, parentId: null });
    apcode = r.ok[0]!.id!;
    expect(r.failed).toEqual([]);
  });

  it('creates districts under them; every bad row fails alone with a code, a column and a line', async () => {
    const r = await run(ingestor, 'LOCATION', await readFixture('location-upload-district.CONSTRUCTED.csv'), { locationType: 'DISTRICT' });
    expect(r.status).toMatchObject({ status: 'COMPLETED', counts: { total: 6, processed: 6, succeeded: 2, failed: 4 } });
    expect(r.status.job).toMatchObject({ state: 'SUCCEEDED_WITH_ERRORS', error: { code: 'SOME_ROWS_INVALID' } });
    expect(brief(r.ok)).toEqual([
      [2, 'CREATE', null],
      [3, 'CREATE', null],
    ]);
    // The Sunbird response's successResult shape: code, parentCode, name, type, parentId, id, operation.
    const sunbird = JSON.parse(await readFixture('response.upload-status.location.completed.json')) as {
      result: { response: Array<{ successResult: Array<Record<string, string>> }> };
    };
    const expected = sunbird.result.response[0]!.successResult;
    expected.forEach((row, i) => {
      const ours = { ...(r.ok[i]!.data as object), id: r.ok[i]!.id, operation: r.ok[i]!.operation!.toLowerCase() };
      expect(Object.keys(ours).sort()).toEqual(Object.keys(row).sort());
      expect(ours).toMatchObject({
        code: row['code'],
        name: row['name'],
        parentCode: row['parentCode'],
        type: row['type'],
        parentId: apcode,
        operation: 'create',
      });
    });
    expect(r.failed.map((f) => [f.line, f.errorCode, f.errorColumn])).toEqual([
      [4, 'PARENT_NOT_FOUND', 'parentId'],
      [5, 'PARENT_NOT_FOUND', 'parentCode'],
      [6, 'PARENT_REQUIRED', 'parentCode'],
      [7, 'MISSING_FIELD', 'code'],
    ]);
    expect(r.failed[0]!.errorMessage).toMatch(/6824e3d3-5512-4344-a481-7bac011edaa8/);
    expect(r.failed[1]!.errorMessage).toMatch(/NOSUCHCODE/);
    const { locations } = await viewer.request(LocationsDocument, { type: 'DISTRICT', parentCode: 'APCODE' });
    expect(locations.nodes.map((l) => [l.code, l.parentCode, l.parentId])).toEqual([
      ['APDIST1', 'APCODE', apcode],
      ['APDIST2', 'APCODE', apcode],
    ]);
  });

  it('re-uploading the same files updates the same rows instead of duplicating them', async () => {
    const before = await count('locations');
    const s = await run(ingestor, 'LOCATION', await readFixture('location-upload-state.CONSTRUCTED.csv'), { locationType: 'STATE' });
    expect(brief(s.ok)).toEqual([
      [2, 'UPDATE', null],
      [3, 'UPDATE', null],
    ]);
    expect(s.ok[0]!.id).toBe(apcode);
    const d = await run(ingestor, 'LOCATION', await readFixture('location-upload-district.CONSTRUCTED.csv'), { locationType: 'DISTRICT' });
    expect(brief(d.ok)).toEqual([
      [2, 'UPDATE', null],
      [3, 'UPDATE', null],
    ]);
    expect(d.failed).toHaveLength(4);
    expect(await count('locations')).toBe(before);
  });
});

describe('locations: strict rules', () => {
  it('a parent must be exactly one level up; rows may hang under earlier rows of the same file', async () => {
    const [tn] = await t.database.sql`select id from locations where code = 'TSCODE'`;
    const csv = [
      'CODE,Name,ParentCode,parent_id,Type',
      'KA,Karnataka,,,state', // 2 create
      'KA-BLR,Bengaluru,KA,,district', // 3 create, parent on line 2
      'KA-BLR-N,Bengaluru North,KA-BLR,,block', // 4 create, parent on line 3
      'KA-BAD,Skips a level,KA,,block', // 5 parent is a state
      'KA-CL1,Cluster,KA-BLR-N,,cluster', // 6 create
      `KA-X,Conflict,KA,${tn!['id']},district`, // 7 parentCode and parentId disagree
      'KA-BLR,Again,KA,,district', // 8 duplicate code in the file
      'KA2,State with parent,KA,,state', // 9
      'APDIST1,Now a block?,KA-BLR,,block', // 10 exists as a district
      'KA-Y,Bad type,KA,,village', // 11
      `TS-D1,Telangana district,,${tn!['id']},district`, // 12 parent by id
      'KA-Z,Too many,KA,,district,extra', // 13
    ].join('\n');
    const r = await run(ingestor, 'LOCATION', csv);
    expect(brief(r.ok)).toEqual([
      [2, 'CREATE', null],
      [3, 'CREATE', null],
      [4, 'CREATE', null],
      [6, 'CREATE', null],
      [12, 'CREATE', null],
    ]);
    expect(r.failed.map((f) => [f.line, f.errorCode])).toEqual([
      [5, 'PARENT_WRONG_LEVEL'],
      [7, 'CONFLICTING_PARENT_REFERENCE'],
      [8, 'DUPLICATE_CODE'],
      [9, 'PARENT_NOT_ALLOWED'],
      [10, 'LOCATION_TYPE_MISMATCH'],
      [11, 'INVALID_LOCATION_TYPE'],
      [13, 'WRONG_FIELD_COUNT'],
    ]);
    expect(r.failed[0]!.errorMessage).toBe('Parent "KA" is a state; the parent of a block must be a district');
    expect(r.failed[2]!.errorMessage).toMatch(/line 3/);
    expect(r.ok[4]!.data).toMatchObject({ parentCode: 'TSCODE', parentId: tn!['id'] });
    // Failed rows wrote nothing.
    const [n] = await t.database.sql`select count(*)::int as n from locations where code in ('KA-BAD', 'KA-X', 'KA2', 'KA-Y', 'KA-Z')`;
    expect(n!['n']).toBe(0);
    const [d] = await t.database.sql`select type::text, name from locations where code = 'APDIST1'`;
    expect(d).toEqual({ type: 'DISTRICT', name: 'APDIST1' });
  });

  it('line numbers count blank lines and line breaks inside quoted cells', async () => {
    const csv = 'code,name,parentCode\r\nML,"Megha\nlaya",\r\n\r\nML,dup,\r\n';
    const r = await run(ingestor, 'LOCATION', csv, { locationType: 'STATE' });
    expect(brief(r.ok)).toEqual([[2, 'CREATE', null]]);
    expect(r.failed.map((f) => [f.line, f.errorCode])).toEqual([[5, 'DUPLICATE_CODE']]);
  });
});

describe('synchronous refusals', () => {
  it('a wrong header fails the upload at once, listing every problem and the valid columns', async () => {
    const res = await uploadRaw(ingestor, 'ORGANISATION', await readFixture('location-upload-state.CONSTRUCTED.csv'));
    expect(codeOf(res.body), JSON.stringify(res.body)).toBe('BAD_USER_INPUT');
    const err = res.body.errors![0]!;
    expect(err.message).toMatch(/Valid columns: SCHOOL NAME \(orgName\), BLOCK CODE \(locationCode\)/);
    expect((err.extensions!['problems'] as Array<{ code: string }>).map((p) => p.code)).toEqual([
      'UNKNOWN_COLUMN',
      'UNKNOWN_COLUMN',
      'UNKNOWN_COLUMN',
      'UNKNOWN_COLUMN',
      'MISSING_REQUIRED_COLUMN',
      'MISSING_REQUIRED_COLUMN',
    ]);
    expect(err.extensions!['validColumns']).toContain('EXTERNAL ID (externalId)');
    const dup = await uploadRaw(ingestor, 'LOCATION', 'code,name,CODE\nA,B,C\n', { locationType: 'STATE' });
    expect((dup.body.errors![0]!.extensions!['problems'] as Array<{ code: string }>).map((p) => p.code)).toEqual(['DUPLICATE_COLUMN']);
    const users = await uploadRaw(ingestor, 'USER', 'NAME,ROLES\nA,PUBLIC\n');
    expect(users.body.errors![0]!.message).toMatch(/"MOBILE PHONE" or "EMAIL" is required/);
    const [n] = await t.database.sql`select count(*)::int as n from bulk_processes where file_name in ('organisation.csv', 'user.csv')`;
    expect(n!['n']).toBe(0);
  });

  it('a LOCATION upload needs locationType or a type column; empty and header-only files are refused', async () => {
    expect(codeOf((await uploadRaw(ingestor, 'LOCATION', 'code,name\nA,B\n')).body)).toBe('BAD_USER_INPUT');
    const org = await uploadRaw(ingestor, 'ORGANISATION', 'SCHOOL NAME,BLOCK CODE\nA,B\n', { locationType: 'STATE' });
    expect(org.body.errors![0]!.message).toMatch(/locationType applies to LOCATION uploads only/);
    expect((await uploadRaw(ingestor, 'LOCATION', '', { locationType: 'STATE' })).body.errors![0]!.message).toMatch(/empty/);
    expect((await uploadRaw(ingestor, 'LOCATION', 'code,name\n', { locationType: 'STATE' })).body.errors![0]!.message).toMatch(/no data rows/);
    expect(codeOf((await uploadRaw(ingestor, 'LOCATION', 'code,name\n"A,B\n', { locationType: 'STATE' })).body)).toBe('BAD_USER_INPUT');
  });

  it('row count and file size limits are enforced before anything is queued', async () => {
    const rows = ['code,name', ...Array.from({ length: MAX_ROWS + 1 }, (_, i) => `L${i},n`)].join('\n');
    const tooMany = await uploadRaw(ingestor, 'LOCATION', rows, { locationType: 'STATE' });
    expect(codeOf(tooMany.body)).toBe('PAYLOAD_TOO_LARGE');
    expect(tooMany.body.errors![0]!.message).toMatch(/more than 50000 data rows/);
    const big = `code,name\nA,${'x'.repeat(4 * 1024 * 1024)}\n`;
    const tooBig = await uploadRaw(ingestor, 'LOCATION', big, { locationType: 'STATE' });
    expect(codeOf(tooBig.body)).toBe('PAYLOAD_TOO_LARGE');
  });

  it('INGESTOR uploads; VIEWER cannot', async () => {
    expect(codeOf((await uploadRaw(viewer, 'LOCATION', 'code,name\nA,B\n', { locationType: 'STATE' })).body)).toBe('FORBIDDEN');
  });
});

describe('organisations and users: the Sunbird fixtures', () => {
  const LEGACY_ORG = '0131650814782423040';
  const LEGACY_ORG_2 = '01316323485186457631';

  beforeAll(async () => {
    const blocks = ['code,name,parentCode,parentId', 'APBLK101,Gannavaram,APDIST1,', 'APBLK102,Vijayawada Rural,APDIST1,', 'APBLK201,Tenali,APDIST2,'].join(
      '\n',
    );
    const r = await run(ingestor, 'LOCATION', blocks, { locationType: 'BLOCK' });
    expect(r.failed).toEqual([]);
    // Organisations carried over from Sunbird keep their ids (directory ids are text).
    const [blk] = await t.database.sql`select id from locations where code = 'APBLK101'`;
    await t.database.sql`insert into organisations (id, name, external_id, location_id) values
      (${LEGACY_ORG}, 'Old School Name', null, ${blk!['id']}), (${LEGACY_ORG_2}, 'Legacy School', 'LEGACY001', ${blk!['id']})`;
  });

  it('organisation fixture: creates, updates by SCHOOL ID, and fails bad status, unknown block and missing name', async () => {
    const r = await run(ingestor, 'ORGANISATION', await readFixture('org-upload.CONSTRUCTED.csv'));
    expect(brief(r.ok)).toEqual([
      [2, 'CREATE', null],
      [3, 'CREATE', null],
      [4, 'UPDATE', null],
    ]);
    expect(r.ok[2]!.id).toBe(LEGACY_ORG);
    expect(r.failed.map((f) => [f.line, f.errorCode, f.errorColumn])).toEqual([
      [5, 'INVALID_STATUS', 'STATUS'],
      [6, 'LOCATION_NOT_FOUND', 'BLOCK CODE'],
      [7, 'MISSING_FIELD', 'SCHOOL NAME'],
    ]);
    const { organisations } = await viewer.request(OrganisationsDocument, { externalId: 'APSCH0003' });
    expect(organisations.nodes).toEqual([
      expect.objectContaining({
        id: LEGACY_ORG,
        name: 'Renamed School',
        status: 'INACTIVE',
        description: 'Update of an existing org',
        type: 'SCHOOL',
        locationCode: 'APBLK101',
      }),
    ]);
    const again = await run(ingestor, 'ORGANISATION', await readFixture('org-upload.CONSTRUCTED.csv'));
    expect(brief(again.ok)).toEqual([
      [2, 'UPDATE', null],
      [3, 'UPDATE', null],
      [4, 'UPDATE', null],
    ]);
    expect(again.ok.map((o) => o.id)).toEqual(r.ok.map((o) => o.id));
    // Two carried over from Sunbird, two created; nothing doubled.
    expect(await count('organisations')).toBe(4);
  });

  it('a failed update is never reported as success; blocks must be blocks; external ids stay unique', async () => {
    const csv = [
      'SCHOOL NAME,BLOCK CODE,STATUS,SCHOOL ID,EXTERNAL ID',
      'Ghost,APBLK101,active,NO-SUCH-ORG,', // 2
      'District school,APDIST1,active,,APSCH0100', // 3
      `Steals an id,APBLK101,active,${LEGACY_ORG_2},APSCH0001`, // 4
      'No key,APBLK101,active,,', // 5
      'Board,APBLK101,,,APBRD0001', // 6 create, defaults
    ].join('\n');
    const r = await run(ingestor, 'ORGANISATION', csv);
    expect(r.failed.map((f) => [f.line, f.operation, f.id, f.errorCode])).toEqual([
      [2, 'UPDATE', 'NO-SUCH-ORG', 'ORGANISATION_NOT_FOUND'],
      [3, 'CREATE', null, 'LOCATION_WRONG_TYPE'],
      [4, 'UPDATE', LEGACY_ORG_2, 'DUPLICATE_EXTERNAL_ID'],
      [5, null, null, 'MISSING_FIELD'],
    ]);
    expect(r.ok[0]).toMatchObject({ line: 6, operation: 'CREATE', data: { status: 'active', organisationType: 'school' } });
  });

  it('a quote inside an unquoted cell is MALFORMED_QUOTES, as in cQube uploads, and nothing of the row is stored', async () => {
    const csv = ['SCHOOL NAME,BLOCK CODE,STATUS,SCHOOL ID,EXTERNAL ID', 'St "Mary,APBLK101,active,,APSCHQ01', '"St ""Joseph""",APBLK101,active,,APSCHQ02'].join(
      '\n',
    );
    const r = await run(ingestor, 'ORGANISATION', csv);
    expect(r.failed.map((f) => [f.line, f.errorCode])).toEqual([[2, 'MALFORMED_QUOTES']]);
    expect(r.failed[0]!.errorMessage).toMatch(/does not start with a quote/);
    expect(r.ok.map((o) => [o.line, o.operation])).toEqual([[3, 'CREATE']]);
    const names = await t.database.sql`select name from organisations where external_id in ('APSCHQ01', 'APSCHQ02')`;
    expect(names.map((n) => n['name'])).toEqual(['St "Joseph"']);
  });

  it('reads the dialects cQube uploads read: semicolons detected, Windows-1252 when named, UTF-16 by its BOM', async () => {
    const cp = Buffer.concat([
      Buffer.from('SCHOOL NAME;BLOCK CODE;STATUS;SCHOOL ID;EXTERNAL ID\nCaf'),
      Buffer.from([0xe9]),
      Buffer.from(' School;APBLK101;active;;APSCHD01\n'),
    ]);
    const r = await run(ingestor, 'ORGANISATION', cp, { encoding: 'WINDOWS_1252' });
    expect(r.failed).toEqual([]);
    const utf16 = Buffer.concat([
      Buffer.from([0xff, 0xfe]),
      Buffer.from('SCHOOL NAME\tBLOCK CODE\tSTATUS\tSCHOOL ID\tEXTERNAL ID\r\nनाम School\tAPBLK101\tactive\t\tAPSCHD02\r\n', 'utf16le'),
    ]);
    const u = await run(ingestor, 'ORGANISATION', utf16);
    expect(u.failed).toEqual([]);
    const names = await t.database.sql`select name from organisations where external_id in ('APSCHD01', 'APSCHD02') order by external_id`;
    expect(names.map((n) => n['name'])).toEqual(['Café School', 'नाम School']);
    // UTF-16 without a BOM is refused at upload with the reason, as cQube uploads refuse it.
    const res = await uploadRaw(ingestor, 'ORGANISATION', Buffer.from('SCHOOL NAME,BLOCK CODE\nA,APBLK101\n', 'utf16le'));
    expect(codeOf(res.body), JSON.stringify(res.body)).toBe('BAD_USER_INPUT');
    expect(res.body.errors![0]!.extensions).toMatchObject({ reason: 'UNSUPPORTED_ENCODING' });
  });

  it('user fixture: every rule, then a re-upload updates the same users', async () => {
    const r = await run(ingestor, 'USER', await readFixture('user-upload.CONSTRUCTED.csv'));
    expect(brief(r.ok)).toEqual([
      [2, 'CREATE', null],
      [3, 'CREATE', null],
      [4, 'CREATE', null],
      [5, 'CREATE', null],
    ]);
    expect(r.failed.map((f) => [f.line, f.errorCode, f.errorColumn])).toEqual([
      [6, 'MISSING_FIELD', 'MOBILE PHONE'],
      [7, 'USER_NOT_FOUND', 'USER ID'],
      [8, 'CONFLICTING_SCHOOL_REFERENCE', 'SCHOOL EXTERNAL ID'],
      [9, 'INVALID_ROLE', 'ROLES'],
      [10, 'MISSING_FIELD', 'NAME'],
    ]);
    expect(r.failed[1]).toMatchObject({ operation: 'UPDATE', id: '3a9c4d7e-1b2f-4c5d-9e8f-0a1b2c3d4e5f' });
    expect(r.failed[3]!.errorMessage).toMatch(/"super_admin"/);
    // The uploader is not ADMIN: phone and email are masked in the results too.
    expect(r.ok[2]!.data).toMatchObject({
      phone: '******6780',
      email: 'm***@example.org',
      roles: ['ORG_ADMIN'],
      userType: 'other',
      orgExternalId: 'APSCH0002',
    });

    const admin = await t.admin.request(UsersDocument, { organisationExternalId: 'APSCH0002' });
    expect(admin.users.nodes).toEqual([
      expect.objectContaining({
        name: 'Meena Kumari',
        phone: '9123456780',
        email: 'meena.k@example.org',
        userType: 'OTHER',
        roles: ['ORG_ADMIN'],
        organisationName: 'MPPS Tenali',
      }),
    ]);
    const masked = await viewer.request(UsersDocument, {});
    expect(masked.users.totalCount).toBe(4);
    expect(masked.users.nodes.map((u) => [u.name, u.phone, u.email, u.organisationId])).toEqual([
      ['Asha Rao', '******3210', null, LEGACY_ORG_2],
      ['Meena Kumari', '******6780', 'm***@example.org', expect.any(String)],
      ['Ravi Teja', '******0001', null, null],
      ['Vikram Singh', null, 'v***@example.org', expect.any(String)],
    ]);

    const again = await run(ingestor, 'USER', await readFixture('user-upload.CONSTRUCTED.csv'));
    expect(brief(again.ok)).toEqual([
      [2, 'UPDATE', null],
      [3, 'UPDATE', null],
      [4, 'UPDATE', null],
      [5, 'UPDATE', null],
    ]);
    expect(again.ok.map((u) => u.id)).toEqual(r.ok.map((u) => u.id));
    expect(await count('directory_users')).toBe(4);
  });

  it('users: identity conflicts, phone and email rules, updates by USER ID', async () => {
    const { users } = await t.admin.request(UsersDocument, { role: 'BOOK_CREATOR' });
    const ravi = users.nodes[0]!;
    const csv = [
      'NAME,MOBILE PHONE,EMAIL,USER ID,ROLES,USER_TYPE',
      `Ravi T,+91 90000 00001,ravi@example.org,${ravi.id},"PUBLIC,BOOK_CREATOR",`, // 2 update by id
      'Phone thief,9123456780,,,,', // 3 -> Meena by phone: an update of Meena
      'Two people,9876543210,vikram.singh@example.org,,,', // 4 phone is Asha, email is Vikram
      'Bad phone,12345,,,,', // 5
      'Bad email,,not-an-email,,,', // 6
      'Bad type,9000000099,,,,principal', // 7
      'Same phone,9000000099,,,,', // 8 create (line 7 failed but its phone is taken in this file)
      'Lower role,9000000098,,,public,', // 9
    ].join('\n');
    const r = await run(ingestor, 'USER', csv);
    expect(brief(r.ok)).toEqual([
      [2, 'UPDATE', null],
      [3, 'UPDATE', null],
    ]);
    expect(r.ok[0]!.id).toBe(ravi.id);
    expect(r.failed.map((f) => [f.line, f.errorCode])).toEqual([
      [4, 'DUPLICATE_EMAIL'],
      [5, 'INVALID_PHONE'],
      [6, 'INVALID_EMAIL'],
      [7, 'INVALID_USER_TYPE'],
      [8, 'DUPLICATE_PHONE'],
      [9, 'INVALID_ROLE'],
    ]);
    const after = await t.admin.request(UsersDocument, { role: 'BOOK_CREATOR' });
    expect(after.users.nodes[0]).toMatchObject({
      name: 'Ravi T',
      phone: '9000000001',
      email: 'ravi@example.org',
      roles: ['PUBLIC', 'BOOK_CREATOR'],
      userType: 'TEACHER',
    });
  });
});

describe('process status', () => {
  it('results are paginated by line; other clients cannot see a process; the idempotency key returns the same process', async () => {
    const csv = ['code,name,parentCode', ...Array.from({ length: 7 }, (_, i) => `NOPE${i},x,MISSING`)].join('\n');
    const r = await run(ingestor, 'LOCATION', csv, { locationType: 'DISTRICT', idempotencyKey: 'districts-1' });
    expect(r.status).toMatchObject({
      status: 'FAILED',
      counts: { total: 7, succeeded: 0, failed: 7 },
      job: { state: 'FAILED', error: { code: 'ALL_ROWS_INVALID' } },
    });
    const lines: number[] = [];
    let after: string | null = null;
    for (;;) {
      const {
        uploadStatus,
      }: {
        uploadStatus: { failureResult: { nodes: Array<{ line: number }>; pageInfo: { hasNextPage: boolean; endCursor: string | null }; totalCount: number } };
      } = await ingestor.request(UploadStatusDocument, { processId: r.up.processId, first: 3, failureAfter: after });
      expect(uploadStatus.failureResult.totalCount).toBe(7);
      lines.push(...uploadStatus.failureResult.nodes.map((n) => n.line));
      if (!uploadStatus.failureResult.pageInfo.hasNextPage) break;
      after = uploadStatus.failureResult.pageInfo.endCursor;
    }
    expect(lines).toEqual([2, 3, 4, 5, 6, 7, 8]);

    const again = await upload(ingestor, 'LOCATION', csv, { locationType: 'DISTRICT', idempotencyKey: 'districts-1' });
    expect(again).toMatchObject({ processId: r.up.processId, created: false });

    const other = await t.clientWith(['INGESTOR']);
    const res = await other.raw(UploadStatusDocument, { processId: r.up.processId });
    expect(codeOf(res.body)).toBe('NOT_FOUND');
    expect(codeOf((await ingestor.raw(UploadStatusDocument, { processId: '12345678901234567890' })).body)).toBe('NOT_FOUND');
    const asAdmin = await t.admin.request(UploadStatusDocument, { processId: r.up.processId });
    expect(asAdmin.uploadStatus.processId).toBe(r.up.processId);
  });

  it('a row the database refuses (a concurrent writer took its code) fails alone; the rest of its batch is written', async () => {
    // Another transaction inserts RACE and holds it uncommitted: the job cannot see it, plans a
    // create, and its batch insert waits on the unique index until that transaction commits.
    let inserted!: () => void;
    let release!: () => void;
    const insertedP = new Promise<void>((r) => (inserted = r));
    const held = new Promise<void>((r) => (release = r));
    const other = t.database.sql.begin(async (sql) => {
      await sql`insert into locations (code, name, type) values ('RACE', 'held elsewhere', 'STATE')`;
      inserted();
      await held;
    });
    await insertedP;
    const up = await upload(ingestor, 'LOCATION', 'code,name\nRACE1,a\nRACE,b\nRACE2,c\n', { locationType: 'STATE' });
    for (let i = 0; ; i++) {
      const [w] = await t.database.sql`select count(*)::int as n from pg_stat_activity where wait_event_type = 'Lock' and query like '%insert into locations%'`;
      if (w!['n'] === 1) break;
      if (i > 200) throw new Error('the job never reached the insert');
      await new Promise((r) => setTimeout(r, 50));
    }
    release();
    await other;
    await collectJobEvents(ingestor, up.status.job.id, { afterSeq: 0 });
    const { uploadStatus } = await ingestor.request(UploadStatusDocument, { processId: up.processId, first: 100 });
    expect(brief(uploadStatus.successResult.nodes)).toEqual([
      [2, 'CREATE', null],
      [4, 'CREATE', null],
    ]);
    expect(uploadStatus.failureResult.nodes.map((f) => [f.line, f.operation, f.errorCode])).toEqual([[3, 'CREATE', 'DUPLICATE_CODE']]);
    const [row] = await t.database.sql`select name from locations where code = 'RACE'`;
    expect(row!['name']).toBe('held elsewhere');
  });

  it('a retried job continues after the last committed line, keeping what earlier lines did', async () => {
    const csv = ['code,name', 'RA,a', 'RB,b', 'RC,c', 'RD,d', 'RA,dup of line 2'].join('\n');
    const r = await run(ingestor, 'LOCATION', csv, { locationType: 'STATE' });
    expect(brief(r.ok)).toEqual([
      [2, 'CREATE', null],
      [3, 'CREATE', null],
      [4, 'CREATE', null],
      [5, 'CREATE', null],
    ]);
    // As if the attempt had been lost after committing the batch up to line 3: results of later
    // lines gone, job FAILED (the rows of lines 4-5 stay, as a crash after a commit would leave them).
    await t.database.sql`delete from bulk_results where process_id = ${r.up.processId} and line > 3`;
    await t.database.sql`update jobs set state = 'FAILED' where id = ${r.up.status.job.id}`;
    const { retryJob } = await ingestor.request(RetryJobDocument, { id: r.up.status.job.id });
    await collectJobEvents(ingestor, retryJob.id, { afterSeq: retryJob.lastSeq });
    const { uploadStatus } = await ingestor.request(UploadStatusDocument, { processId: r.up.processId, first: 100 });
    expect(brief(uploadStatus.successResult.nodes)).toEqual([
      [2, 'CREATE', null],
      [3, 'CREATE', null],
      [4, 'UPDATE', null],
      [5, 'UPDATE', null],
    ]);
    // Line 2 was not re-applied, but its code is still known: line 6 is still a duplicate.
    expect(uploadStatus.failureResult.nodes.map((f) => [f.line, f.errorCode, f.errorMessage])).toEqual([
      [6, 'DUPLICATE_CODE', 'Code "RA" is also on line 2 of this file'],
    ]);
    expect(uploadStatus).toMatchObject({ status: 'COMPLETED', counts: { total: 5, processed: 5, succeeded: 4, failed: 1 }, job: { attempt: 2 } });
  });

  it('a 50,000-row location file (states to schools, parents earlier in the same file) completes', async () => {
    // 5 states > 50 districts > 500 blocks > 4,500 clusters > schools, cut at 50,000 rows (parents always come first).
    const all = ['code,name,parentCode,type'];
    const add = (code: string, parent: string, type: string) => all.push(`${code},Name of ${code},${parent},${type}`);
    for (let s = 0; s < 5; s++) {
      add(`S${s}`, '', 'state');
      for (let d = 0; d < 10; d++) {
        add(`S${s}D${d}`, `S${s}`, 'district');
        for (let b = 0; b < 10; b++) {
          add(`S${s}D${d}B${b}`, `S${s}D${d}`, 'block');
          for (let c = 0; c < 9; c++) {
            add(`S${s}D${d}B${b}C${c}`, `S${s}D${d}B${b}`, 'cluster');
            for (let k = 0; k < 10; k++) add(`S${s}D${d}B${b}C${c}K${k}`, `S${s}D${d}B${b}C${c}`, 'school');
          }
        }
      }
    }
    const n = 50_000;
    const lines = all.slice(0, n + 1);
    expect(lines.length - 1).toBe(n);
    const started = Date.now();
    const up = await upload(ingestor, 'LOCATION', lines.join('\n'));
    const events = await collectJobEvents(ingestor, up.status.job.id, { afterSeq: 0, timeoutMs: 240_000 });
    const seconds = (Date.now() - started) / 1000;
    expect(events.at(-1), JSON.stringify(events.at(-1))).toMatchObject({ state: 'SUCCEEDED', progress: { total: n, processed: n, succeeded: n, failed: 0 } });
    expect(events.filter((e) => e.kind === 'PROGRESS').length).toBeGreaterThan(1);
    const [row] = await t.database.sql`select count(*)::int as n from locations where code like 'S%'`;
    expect(row!['n']).toBe(n);
    console.log(`50k-row location upload: ${n} rows in ${seconds.toFixed(1)} s (${Math.round(n / seconds)} rows/s)`);
  }, 300_000);
});
