import fs from 'node:fs/promises';
import path from 'node:path';
import yazl from 'yazl';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  CancelJobDocument,
  FileDocument,
  FileRowErrorsDocument,
  FilesDocument,
  RegisterSpecDocument,
  RetryJobDocument,
  SpecDocument,
  SpecsDocument,
  UploadFileDocument,
  UploadNationalProgramDocument,
  ValidateFileDocument,
  type SluiceClient,
} from '../../src/sdk/client';
import { codeOf, startTestApp, type TestApp } from '../helpers/app';
import { collectJobEvents, FAST_JOBS } from '../helpers/jobs';
import { repoRoot } from '../helpers/process';

const fixtures = path.resolve(repoRoot, 'test/fixtures/cqube');
const readFixture = (p: string) => fs.readFile(path.join(fixtures, p), 'utf8');

let t: TestApp;
let ingestor: SluiceClient;

const attendanceSpec = {
  program: 'attendance',
  input: {
    type: 'object',
    properties: {
      date: { type: 'date', dateFormat: 'DD/MM/YY', shouldNotNull: true },
      school_id: { type: 'string', shouldNotNull: true, unique: true },
      grade: { type: 'integer', minimum: 1, maximum: 12 },
      present: { type: 'number', shouldNotNull: true, minimum: 0 },
      note: { type: 'string' },
    },
    required: ['date', 'school_id', 'present'],
  },
};

beforeAll(async () => {
  t = await startTestApp({ ...FAST_JOBS });
  ingestor = await t.clientWith(['INGESTOR']);
  for (const [kind, file] of [
    ['DIMENSION', 'dimension.district.json'],
    ['DIMENSION', 'dimension.school.json'],
    ['DIMENSION', 'dimension.grade.json'],
    ['EVENT', 'event.teacherspresent.json'],
    ['EVENT', 'event.totalteachers.json'],
  ] as const) {
    await t.admin.request(RegisterSpecDocument, { kind, spec: JSON.parse(await readFixture(`specs/${file}`)) });
  }
  await t.admin.request(RegisterSpecDocument, { kind: 'EVENT', spec: attendanceSpec });
});

async function upload(client: SluiceClient, body: string | Uint8Array, opts: { spec: string; program?: string; name?: string; idempotencyKey?: string; onInvalidRows?: 'SKIP' | 'FAIL' }) {
  const { uploadFile } = await client.upload(
    UploadFileDocument,
    { program: opts.program ?? 'state_prog', spec: opts.spec, file: null, idempotencyKey: opts.idempotencyKey, onInvalidRows: opts.onInvalidRows },
    { file: { body, filename: opts.name ?? `${opts.spec}.csv`, contentType: 'text/csv' } },
  );
  return uploadFile;
}

async function finished(client: SluiceClient, jobId: string, fileId: string) {
  const events = await collectJobEvents(client, jobId, { afterSeq: 0 });
  const { file } = await client.request(FileDocument, { id: fileId });
  return { events, file, last: events.at(-1)! };
}

async function tableCount(table: string, fileId?: string): Promise<number> {
  const rows = fileId
    ? await t.database.sql`select count(*)::int as n from ${t.database.sql(table)} where _file_id = ${fileId}`
    : await t.database.sql`select count(*)::int as n from ${t.database.sql(table)}`;
  return rows[0]!['n'] as number;
}

const storageFile = (key: string) => fs.readFile(path.join(t.dataDir, 'storage', key), 'utf8');

describe('specs', () => {
  it('registers the cQube fixtures as-is and versions a name registered again', async () => {
    const { spec } = await t.admin.request(SpecDocument, { name: 'district' });
    expect(spec).toMatchObject({ name: 'district', version: 1, kind: 'DIMENSION', tableName: 'ds_district_v1' });
    expect(spec.columns.map((c) => c.column)).toEqual(['district_id', 'district_name', 'state_id', 'state_name', 'latitude', 'longitude']);
    const again = await t.admin.request(RegisterSpecDocument, { kind: 'DIMENSION', spec: JSON.parse(await readFixture('specs/dimension.grade.json')) });
    expect(again.registerSpec.spec).toMatchObject({ name: 'grade', version: 2, tableName: 'ds_grade_v2' });
    expect((await t.admin.request(SpecDocument, { name: 'grade', version: 1 })).spec.version).toBe(1);
    expect((await t.admin.request(SpecDocument, { name: 'grade' })).spec.version).toBe(2);
  });

  it('rejects a bad spec with every problem listed', async () => {
    const res = await t.admin.raw(RegisterSpecDocument, {
      kind: 'EVENT',
      spec: { program: 'bad', input: { type: 'object', properties: { a: { type: 'float' }, 'b;drop table x': { type: 'string' } }, required: ['a', 'missing'] } },
    });
    expect(codeOf(res.body), JSON.stringify(res.body)).toBe('BAD_USER_INPUT');
    const problems = res.body.errors![0]!.extensions!['problems'] as Array<{ code: string }>;
    expect(problems.map((p) => p.code)).toEqual(expect.arrayContaining(['UNKNOWN_TYPE', 'REQUIRED_NOT_IN_PROPERTIES']));
    expect(res.body.errors![0]!.message).toMatch(/missing/);
  });

  it('stores columns named after SQL key words (user, select, order, from, table, current_user) and loads rows into them', async () => {
    const words = ['user', 'select', 'order', 'from', 'table', 'current_user'];
    const properties = Object.fromEntries(words.map((w) => [w, { type: w === 'order' ? 'integer' : 'string', unique: w === 'user' }]));
    const reg = await t.admin.raw(RegisterSpecDocument, { kind: 'EVENT', spec: { program: 'select', input: { type: 'object', properties, required: ['user'] } } });
    expect(codeOf(reg.body), JSON.stringify(reg.body)).toBeUndefined();
    const csv = `${words.join(',')}\nu1,s1,1,f1,t1,c1\nu2,s2,2,f2,t2,c2\nu1,s3,3,f3,t3,c3\n`;
    const up = await upload(ingestor, csv, { spec: 'select', program: 'select' });
    const { file } = await finished(ingestor, up.job.id, up.file.id);
    expect(file).toMatchObject({ state: 'SUCCEEDED_WITH_ERRORS', rows: { total: 3, valid: 2, invalid: 1 } });
    const rows = await t.database.sql`select "user", "select", "order", "from", "table", "current_user" from ds_select_v1 where _file_id = ${file.id} order by _line`;
    expect(rows).toEqual([
      { user: 'u1', select: 's1', order: '1', from: 'f1', table: 't1', current_user: 'c1' },
      { user: 'u2', select: 's2', order: '2', from: 'f2', table: 't2', current_user: 'c2' },
    ]);
    const { file: again } = await ingestor.request(FileRowErrorsDocument, { id: file.id, first: 10 });
    expect(again.rowErrors.nodes).toMatchObject([{ line: 4, code: 'DUPLICATE_KEY' }]);
  });

  it('refuses columns named like PostgreSQL system columns, each with its own problem', async () => {
    const system = ['ctid', 'xmin', 'xmax', 'cmin', 'cmax', 'TableOID'];
    const properties = Object.fromEntries([...system, 'fine'].map((w) => [w, { type: 'string' }]));
    const res = await t.admin.raw(RegisterSpecDocument, { kind: 'EVENT', spec: { program: 'sysnames', input: { type: 'object', properties } } });
    expect(codeOf(res.body), JSON.stringify(res.body)).toBe('BAD_USER_INPUT');
    const problems = res.body.errors![0]!.extensions!['problems'] as Array<{ path: string; code: string; message: string }>;
    expect(problems.map((p) => [p.path, p.code])).toEqual(system.map((w) => [`/input/properties/${w}`, 'SYSTEM_COLUMN']));
    expect(problems[5]!.message).toMatch(/"TableOID" normalises to "tableoid", a PostgreSQL system column/);
    const { specs } = await t.admin.request(SpecsDocument, { name: 'sysnames' });
    expect(specs).toHaveLength(0);
  });

  it('only ADMIN registers specs', async () => {
    const res = await ingestor.raw(RegisterSpecDocument, { kind: 'EVENT', spec: attendanceSpec });
    expect(codeOf(res.body)).toBe('FORBIDDEN');
  });
});

describe('state program uploads', () => {
  it('ingests the district fixture: 5 valid rows in the table and the cQube output file', async () => {
    const up = await upload(ingestor, await readFixture('data/district-dimension.data.csv'), { spec: 'district', program: 'district' });
    expect(up.created).toBe(true);
    expect(up.job.state).toBe('QUEUED');
    expect(up.file.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(up.file.size).toBeGreaterThan(0);
    const { file, last } = await finished(ingestor, up.job.id, up.file.id);
    expect(last).toMatchObject({ state: 'SUCCEEDED', progress: { total: 5, succeeded: 5, failed: 0 } });
    expect(file).toMatchObject({ state: 'SUCCEEDED', rows: { total: 5, valid: 5, invalid: 0 }, error: null, spec: { name: 'district', version: 1 } });
    expect(file.outputs.valid).toMatch(/^process_input\/district\/\d{2}-[A-Z][a-z]{2}-\d{4}\/district-dimension\.data(\.[0-9a-f-]+)?\.csv$/);
    expect(file.outputs.errors).toBeNull();
    expect(await tableCount('ds_district_v1', file.id)).toBe(5);
    // The file's rows are its own partition of the spec table, and (_file_id, _line) is unique there.
    const partition = `dsf_${file.id.replace(/-/g, '')}`;
    const [attached] = await t.database.sql`
      select c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid
      where i.inhparent = 'ds_district_v1'::regclass and c.relname = ${partition}`;
    expect(attached).toBeDefined();
    expect(await tableCount(partition)).toBe(5);
    const duplicate = await t.database.sql`insert into ds_district_v1 (_file_id, _line) select _file_id, _line from ds_district_v1 where _file_id = ${file.id} limit 1`.catch((e: { code?: string }) => e);
    expect((duplicate as { code?: string }).code).toBe('23505');
    const out = await storageFile(file.outputs.valid!);
    expect(out.split('\n')[0]).toBe('district_id,district_name,state_id,state_name,latitude,longitude');
    expect(out.trim().split('\n')).toHaveLength(6);
    const raw = await storageFile(file.outputs.raw!);
    expect(raw).toBe(await readFixture('data/district-dimension.data.csv'));
  });

  it('fails the school fixture on its header (udise_code is required) and the teacherspresent fixture on unknown columns', async () => {
    const school = await upload(ingestor, await readFixture('data/school-dimension.data.csv'), { spec: 'school' });
    const s = await finished(ingestor, school.job.id, school.file.id);
    expect(s.last).toMatchObject({ state: 'FAILED', error: { code: 'HEADER_INVALID' } });
    expect(s.file.error?.message).toMatch(/udise_code/);
    const tp = await upload(ingestor, await readFixture('data/teacherspresent-event.data.head.csv'), { spec: 'teacherspresent' });
    const r = await finished(ingestor, tp.job.id, tp.file.id);
    expect(r.file).toMatchObject({ state: 'FAILED', error: { code: 'HEADER_INVALID' } });
    expect(r.file.error?.message).toMatch(/schoolcategory_id/);
    expect(r.file.error?.message).toMatch(/grade_state/);
    expect(await tableCount('ds_teacherspresent_v1')).toBe(0);
  });

  it('a 1,000-row file with every 10th row bad: 900 kept, 100 reported with line numbers, error CSV neutralised', async () => {
    const lines = ['Date,School_ID,grade,present,note'];
    for (let i = 1; i <= 1000; i++) {
      if (i % 10 === 0) lines.push(`31/02/23,s${i},13,-1,=HYPERLINK("x")`);
      else lines.push(`01/03/23,s${i},${(i % 12) + 1},${i % 40},"note, with comma ""quoted"""`);
    }
    const up = await upload(ingestor, `\uFEFF${lines.join('\r\n')}\r\n`, { spec: 'attendance' });
    const { file, last } = await finished(ingestor, up.job.id, up.file.id);
    expect(last).toMatchObject({ state: 'SUCCEEDED_WITH_ERRORS', error: { code: 'SOME_ROWS_INVALID' }, progress: { total: 1000, succeeded: 900, failed: 100 } });
    expect(file.rows).toEqual({ total: 1000, valid: 900, invalid: 100 });
    expect(await tableCount('ds_attendance_v1', file.id)).toBe(900);
    const sample = await t.database.sql`select date::text, note, grade from ds_attendance_v1 where _file_id = ${file.id} and _line = 2`;
    expect(sample[0]).toEqual({ date: '2023-03-01', note: 'note, with comma "quoted"', grade: '2' });

    const page1 = (await ingestor.request(FileRowErrorsDocument, { id: file.id, first: 50 })).file.rowErrors;
    expect(page1.totalCount).toBeGreaterThanOrEqual(100);
    const lineNumbers = new Set(page1.nodes.map((e) => e.line));
    // Data row i sits on line i + 1 (the header is line 1).
    expect([...lineNumbers].slice(0, 3)).toEqual([11, 21, 31]);
    expect(page1.nodes.map((e) => e.code)).toEqual(expect.arrayContaining(['INVALID_DATE']));
    const page2 = (await ingestor.request(FileRowErrorsDocument, { id: file.id, first: 50, after: page1.pageInfo.endCursor })).file.rowErrors;
    expect(page2.nodes[0]!.line).toBeGreaterThanOrEqual(page1.nodes.at(-1)!.line);

    expect(file.outputs.errors).toBe(`ingestion_error/state_prog/${file.outputs.errors!.split('/')[2]}/state_prog_${file.id}_errors.csv`);
    const errCsv = (await storageFile(file.outputs.errors!)).trim().split('\n');
    expect(errCsv[0]).toMatch(/error_description$/);
    expect(errCsv).toHaveLength(101);
    expect(errCsv[1]).toContain(`'=HYPERLINK`);
  });

  it('onInvalidRows FAIL keeps no row when any row is invalid', async () => {
    const up = await upload(ingestor, 'date,school_id,present\n01/03/23,a,1\n01/03/23,b,x\n', { spec: 'attendance', onInvalidRows: 'FAIL' });
    const { file, last } = await finished(ingestor, up.job.id, up.file.id);
    expect(last).toMatchObject({ state: 'FAILED', error: { code: 'ROWS_INVALID' } });
    expect(file.rows.invalid).toBe(1);
    expect(await tableCount('ds_attendance_v1', file.id)).toBe(0);
  });

  it('a file whose rows are all invalid fails; empty and header-only files fail at once', async () => {
    const bad = await upload(ingestor, 'date,school_id,present\nx,a,1\n', { spec: 'attendance' });
    expect((await finished(ingestor, bad.job.id, bad.file.id)).last).toMatchObject({ state: 'FAILED', error: { code: 'ALL_ROWS_INVALID' } });
    for (const body of ['', 'date,school_id,present\n']) {
      const up = await upload(ingestor, body, { spec: 'attendance' });
      const { file } = await finished(ingestor, up.job.id, up.file.id);
      expect(file).toMatchObject({ state: 'FAILED', error: { code: 'EMPTY_FILE' } });
    }
  });

  it('empty numeric cells are NULL, never 0', async () => {
    const up = await upload(ingestor, 'date,school_id,grade,present\n01/03/23,z1,,5\n', { spec: 'attendance' });
    const { file } = await finished(ingestor, up.job.id, up.file.id);
    const rows = await t.database.sql`select grade from ds_attendance_v1 where _file_id = ${file.id}`;
    expect(rows[0]!['grade']).toBeNull();
  });

  it('stores every type exactly as PostgreSQL values (binary COPY), on the fast path and off it', async () => {
    const csv = [
      'date,school_id,grade,present,note',
      '29/02/24,s1,12,1.25,back\\slash\ttab',
      '1/3/23,s2,,0,नाम',
      '31/12/99,"s3, quoted",1,9007199254740993,"two\nlines"',
    ].join('\n');
    const up = await upload(ingestor, csv, { spec: 'attendance' });
    const { file } = await finished(ingestor, up.job.id, up.file.id);
    expect(file.rows).toEqual({ total: 3, valid: 3, invalid: 0 });
    const rows = await t.database.sql`
      select _line, to_char(date, 'YYYY-MM-DD') as date, school_id, grade::text, present, note
      from ds_attendance_v1 where _file_id = ${file.id} order by _line`;
    expect(rows.map((r) => ({ ...r }))).toEqual([
      { _line: 2, date: '2024-02-29', school_id: 's1', grade: '12', present: 1.25, note: 'back\\slash\ttab' },
      { _line: 3, date: '2023-03-01', school_id: 's2', grade: null, present: 0, note: 'नाम' },
      { _line: 4, date: '2099-12-31', school_id: 's3, quoted', grade: '1', present: 9007199254740992, note: 'two\nlines' },
    ]);
  });

  it('the same idempotency key returns the same file and job without a second ingestion', async () => {
    const body = 'date,school_id,present\n01/03/23,i1,1\n';
    const a = await upload(ingestor, body, { spec: 'attendance', idempotencyKey: 'upload-42' });
    const b = await upload(ingestor, body, { spec: 'attendance', idempotencyKey: 'upload-42' });
    expect(b.created).toBe(false);
    expect(b.file.id).toBe(a.file.id);
    expect(b.job.id).toBe(a.job.id);
    await finished(ingestor, a.job.id, a.file.id);
    const files = await t.database.sql`select count(*)::int as n from files where idempotency_key = 'upload-42'`;
    expect(files[0]!['n']).toBe(1);
    expect(await tableCount('ds_attendance_v1', a.file.id)).toBe(1);
  });

  it('refuses unknown specs, unsafe program names and other clients’ files', async () => {
    const unknown = await ingestor.uploadRaw(UploadFileDocument, { program: 'p', spec: 'nope', file: null }, { file: { body: 'a\n1\n', filename: 'a.csv' } });
    expect(codeOf(unknown.body)).toBe('NOT_FOUND');
    const unsafe = await ingestor.uploadRaw(UploadFileDocument, { program: '../etc', spec: 'attendance', file: null }, { file: { body: 'a\n1\n', filename: 'a.csv' } });
    expect(codeOf(unsafe.body)).toBe('BAD_USER_INPUT');
    const up = await upload(ingestor, 'date,school_id,present\n01/03/23,v1,1\n', { spec: 'attendance' });
    const other = await t.clientWith(['INGESTOR']);
    expect(codeOf((await other.raw(FileDocument, { id: up.file.id })).body)).toBe('NOT_FOUND');
    const viewer = await t.clientWith(['VIEWER']);
    const denied = await viewer.uploadRaw(UploadFileDocument, { program: 'p', spec: 'attendance', file: null }, { file: { body: 'a\n', filename: 'a.csv' } });
    expect(codeOf(denied.body)).toBe('FORBIDDEN');
  });

  it('lists files by spec and by file name, newest first', async () => {
    const a = await upload(ingestor, 'date,school_id,present\n01/03/23,l1,1\n', { spec: 'attendance', name: 'march-report.csv' });
    const { files } = await ingestor.request(FilesDocument, { fileName: 'march-report.csv' });
    expect(files.nodes.map((f) => f.id)).toEqual([a.file.id]);
    const bySpec = await ingestor.request(FilesDocument, { spec: 'attendance', first: 2 });
    expect(bySpec.files.totalCount).toBeGreaterThan(2);
    expect(bySpec.files.pageInfo.hasNextPage).toBe(true);
  });
});

describe('cancelling an ingestion', () => {
  it('stops mid-file and leaves no row of it in the table', async () => {
    const lines = ['date,school_id,grade,present,note'];
    for (let i = 1; i <= 600_000; i++) lines.push(`01/03/23,c${i},${(i % 12) + 1},${i % 40},x`);
    const up = await upload(ingestor, lines.join('\n'), { spec: 'attendance' });
    let cancelled = false;
    const events = await collectJobEvents(ingestor, up.job.id, {
      afterSeq: 0,
      onEvent: (e) => {
        if (!cancelled && e.kind === 'PROGRESS' && (e.progress.processed ?? 0) > 0) {
          cancelled = true;
          void ingestor.request(CancelJobDocument, { id: up.job.id });
        }
      },
    });
    expect(cancelled).toBe(true);
    expect(events.at(-1)).toMatchObject({ state: 'CANCELLED', terminal: true });
    expect(await tableCount('ds_attendance_v1', up.file.id)).toBe(0);
    const { file } = await ingestor.request(FileDocument, { id: up.file.id });
    expect(file.state).toBe('CANCELLED');
    expect(file.outputs.valid).toBeNull();
  });
});

describe('validateFile (dry run)', () => {
  it('reports counts and the first errors, stores nothing', async () => {
    const before = await t.database.sql`select count(*)::int as n from files`;
    const { validateFile } = await ingestor.upload(
      ValidateFileDocument,
      { spec: 'attendance', file: null, maxErrors: 2 },
      { file: { body: 'date,school_id,present\n01/03/23,a,1\nbad,b,1\nbad,c,1\nbad,d,1\n', filename: 'x.csv' } },
    );
    expect(validateFile).toMatchObject({ valid: false, total: 4, validRows: 1, invalidRows: 3, headerProblems: [] });
    expect(validateFile.errors).toHaveLength(2);
    expect(validateFile.errors[0]).toMatchObject({ line: 3, column: 'date', code: 'INVALID_DATE' });
    const header = await ingestor.upload(ValidateFileDocument, { spec: 'attendance', file: null }, { file: { body: 'date,present,extra\n', filename: 'x.csv' } });
    expect(header.validateFile.headerProblems.map((p) => p.code).sort()).toEqual(['MISSING_REQUIRED_COLUMN', 'UNKNOWN_COLUMN']);
    const after = await t.database.sql`select count(*)::int as n from files`;
    expect(after[0]!['n']).toBe(before[0]!['n']);
  });
});

function zip(entries: Array<{ name: string; body: string | Buffer; mode?: number }>): Promise<Buffer> {
  const z = new yazl.ZipFile();
  for (const e of entries) z.addBuffer(Buffer.from(e.body), e.name, e.mode ? { mode: e.mode } : {});
  z.end();
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    z.outputStream.on('data', (c: Buffer) => chunks.push(c)).on('end', () => resolve(Buffer.concat(chunks))).on('error', reject);
  });
}

describe('national program ZIP uploads', () => {
  it('ingests <program>.csv inside <program>.zip with the spec of that name; outputs under emission/', async () => {
    const body = await zip([{ name: 'district.csv', body: await readFixture('data/district-dimension.data.csv') }, { name: 'readme.txt', body: 'ignored' }]);
    const { uploadNationalProgram: up } = await ingestor.upload(UploadNationalProgramDocument, { file: null }, { file: { body, filename: 'district.zip', contentType: 'application/zip' } });
    const events = await collectJobEvents(ingestor, up.job.id, { afterSeq: 0 });
    expect(events.at(-1)).toMatchObject({ state: 'SUCCEEDED' });
    const { file } = await ingestor.request(FileDocument, { id: up.file.id });
    expect(file.children).toHaveLength(1);
    const child = file.children[0]!;
    expect(child).toMatchObject({ fileName: 'district.csv', state: 'SUCCEEDED', rows: { valid: 5, invalid: 0 }, spec: { name: 'district' } });
    expect(child.outputs.valid).toMatch(/^emission\/\d{2}-[A-Z][a-z]{2}-\d{4}\/district(\.[0-9a-f-]+)?\.csv$/);
    expect(await tableCount('ds_district_v1', child.id)).toBe(5);

    // A retry re-ingests the same child (same id) over its committed partition: emptied and loaded
    // again in place (same table, no lock on the spec table), not doubled.
    const partitionOid = async () => (await t.database.sql`select to_regclass(${`dsf_${child.id.replace(/-/g, '')}`})::oid as oid`)[0]!['oid'];
    const oid = await partitionOid();
    expect(oid).not.toBeNull();
    await t.database.sql`update jobs set state = 'FAILED', error = ${t.database.sql.json({ code: 'WORKER_LOST', message: 'test' })} where id = ${up.job.id}`;
    const before = events.at(-1)!.seq;
    await t.admin.request(RetryJobDocument, { id: up.job.id });
    const retried = await collectJobEvents(ingestor, up.job.id, { afterSeq: before });
    expect(retried.at(-1)).toMatchObject({ state: 'SUCCEEDED' });
    expect(await tableCount('ds_district_v1', child.id)).toBe(5);
    expect(await partitionOid()).toBe(oid);
  });

  it('reports a CSV without a spec and errors under emission-error/', async () => {
    const body = await zip([
      { name: 'attendance.csv', body: 'date,school_id,present\n01/03/23,n1,1\nbad,n2,1\n' },
      { name: 'unknownprog.csv', body: 'a\n1\n' },
    ]);
    const { uploadNationalProgram: up } = await ingestor.upload(UploadNationalProgramDocument, { file: null }, { file: { body, filename: 'mixed.zip' } });
    const events = await collectJobEvents(ingestor, up.job.id, { afterSeq: 0 });
    expect(events.at(-1)).toMatchObject({ state: 'SUCCEEDED_WITH_ERRORS', error: { code: 'SOME_FILES_FAILED' } });
    const { file } = await ingestor.request(FileDocument, { id: up.file.id });
    const byName = Object.fromEntries(file.children.map((c) => [c.fileName, c]));
    expect(byName['unknownprog.csv']).toMatchObject({ state: 'FAILED', error: { code: 'SPEC_NOT_FOUND' } });
    expect(byName['attendance.csv']).toMatchObject({ state: 'SUCCEEDED_WITH_ERRORS', rows: { valid: 1, invalid: 1 } });
    expect(byName['attendance.csv']!.outputs.errors).toMatch(/^emission-error\/\d{2}-[A-Z][a-z]{2}-\d{4}\/attendance_[0-9a-f-]+_errors\.csv$/);
  });

  const attacks: Array<[string, () => Promise<Buffer>]> = [
    ['a nested archive', () => zip([{ name: 'inner.zip', body: Buffer.from('PK\u0003\u0004rest') }, { name: 'attendance.csv', body: 'date,school_id,present\n' }])],
    ['a symlink', () => zip([{ name: 'attendance.csv', body: '/etc/passwd', mode: 0o120777 }])],
    ['a zip bomb', () => zip([{ name: 'attendance.csv', body: Buffer.alloc(20 * 1024 * 1024, 0x30) }])],
    ['a file that is not a zip', async () => Buffer.from('date,school_id,present\n')],
  ];
  for (const [name, make] of attacks) {
    it(`refuses ${name} before ingesting anything`, async () => {
      const { uploadNationalProgram: up } = await ingestor.upload(UploadNationalProgramDocument, { file: null }, { file: { body: await make(), filename: 'attack.zip' } });
      const events = await collectJobEvents(ingestor, up.job.id, { afterSeq: 0 });
      expect(events.at(-1)).toMatchObject({ state: 'FAILED', error: { code: 'ZIP_REFUSED' } });
      const { file } = await ingestor.request(FileDocument, { id: up.file.id });
      expect(file.children).toHaveLength(0);
      expect(file.error?.code).toMatch(/^ZIP_/);
    });
  }
});

describe('upload limits', () => {
  it('refuses a file over SLUICE_MAX_FILE_SIZE_BYTES with PAYLOAD_TOO_LARGE and stores nothing', async () => {
    const small = await startTestApp({ ...FAST_JOBS, SLUICE_MAX_FILE_SIZE_BYTES: '1000' });
    await small.admin.request(RegisterSpecDocument, { kind: 'EVENT', spec: attendanceSpec });
    const res = await small.admin.uploadRaw(UploadFileDocument, { program: 'p', spec: 'attendance', file: null }, { file: { body: 'x'.repeat(5000), filename: 'big.csv' } });
    expect(codeOf(res.body), JSON.stringify(res.body)).toBe('PAYLOAD_TOO_LARGE');
    const files = await small.database.sql`select count(*)::int as n from files`;
    expect(files[0]!['n']).toBe(0);
  });
});
