import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import zlib from 'node:zlib';
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

async function upload(
  client: SluiceClient,
  body: string | Uint8Array,
  opts: { spec: string; program?: string; name?: string; idempotencyKey?: string; onInvalidRows?: 'SKIP' | 'FAIL' },
) {
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

  it('registers every shipped spec in test/fixtures through the API; only the known-defective one is refused, naming its problem', async () => {
    const dir = path.join(fixtures, 'specs');
    const outcomes: Record<string, string> = {};
    for (const file of (await fs.readdir(dir)).filter((f) => f.endsWith('.json')).sort()) {
      const [kind, name] = file.replace('.json', '').split('.') as [string, string];
      const res = await t.admin.raw(RegisterSpecDocument, {
        kind: kind.toUpperCase() as 'EVENT' | 'DIMENSION',
        name: `all_${name}`,
        spec: JSON.parse(await readFixture(`specs/${file}`)),
      });
      outcomes[file] = res.body.errors
        ? `${codeOf(res.body)}: ${(res.body.errors[0]!.extensions!['problems'] as Array<{ code: string; path: string }>).map((p) => `${p.code} ${p.path}`).join(', ')}`
        : 'registered';
    }
    expect(outcomes).toEqual({
      'dimension.cluster.json': 'registered',
      'dimension.district.json': 'registered',
      'dimension.grade.json': 'registered',
      'dimension.school.json': 'registered',
      'event.dikshacontentplays.json': 'registered',
      'event.dikshaenrolments.json': 'registered',
      'event.studentattendance.json': 'BAD_USER_INPUT: REQUIRED_NOT_IN_PROPERTIES /input/required/3',
      'event.teacherspresent.json': 'registered',
      'event.totalteachers.json': 'registered',
    });
  });

  it('rejects a bad spec with every problem listed', async () => {
    const res = await t.admin.raw(RegisterSpecDocument, {
      kind: 'EVENT',
      spec: {
        program: 'bad',
        input: { type: 'object', properties: { a: { type: 'float' }, 'b;drop table x': { type: 'string' } }, required: ['a', 'missing'] },
      },
    });
    expect(codeOf(res.body), JSON.stringify(res.body)).toBe('BAD_USER_INPUT');
    const problems = res.body.errors![0]!.extensions!['problems'] as Array<{ code: string }>;
    expect(problems.map((p) => p.code)).toEqual(expect.arrayContaining(['UNKNOWN_TYPE', 'REQUIRED_NOT_IN_PROPERTIES']));
    expect(res.body.errors![0]!.message).toMatch(/missing/);
  });

  it('stores columns named after SQL key words (user, select, order, from, table, current_user) and loads rows into them', async () => {
    const words = ['user', 'select', 'order', 'from', 'table', 'current_user'];
    const properties = Object.fromEntries(words.map((w) => [w, { type: w === 'order' ? 'integer' : 'string', unique: w === 'user' }]));
    const reg = await t.admin.raw(RegisterSpecDocument, {
      kind: 'EVENT',
      spec: { program: 'select', input: { type: 'object', properties, required: ['user'] } },
    });
    expect(codeOf(reg.body), JSON.stringify(reg.body)).toBeUndefined();
    const csv = `${words.join(',')}\nu1,s1,1,f1,t1,c1\nu2,s2,2,f2,t2,c2\nu1,s3,3,f3,t3,c3\n`;
    const up = await upload(ingestor, csv, { spec: 'select', program: 'select' });
    const { file } = await finished(ingestor, up.job.id, up.file.id);
    expect(file).toMatchObject({ state: 'SUCCEEDED_WITH_ERRORS', rows: { total: 3, valid: 2, invalid: 1 } });
    const rows = await t.database
      .sql`select "user", "select", "order", "from", "table", "current_user" from ds_select_v1 where _file_id = ${file.id} order by _line`;
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
    // The file's rows are its own partition of the spec table, each line once; the load builds no
    // index there (a corrections upload adds the unique one on _line, see corrections.test.ts).
    const partition = `dsf_${file.id.replace(/-/g, '')}`;
    const [attached] = await t.database.sql`
      select c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid
      where i.inhparent = 'ds_district_v1'::regclass and c.relname = ${partition}`;
    expect(attached).toBeDefined();
    expect(await tableCount(partition)).toBe(5);
    const [lines] = await t.database.sql`select count(distinct _line)::int as n from ds_district_v1 where _file_id = ${file.id}`;
    expect(lines!['n']).toBe(5);
    expect(await t.database.sql`select indexname from pg_indexes where tablename = ${partition}`).toHaveLength(0);
    const out = await storageFile(file.outputs.valid!);
    expect(out.split('\n')[0]).toBe('district_id,district_name,state_id,state_name,latitude,longitude');
    expect(out.trim().split('\n')).toHaveLength(6);
    const raw = await storageFile(file.outputs.raw!);
    expect(raw).toBe(await readFixture('data/district-dimension.data.csv'));
    // A clean file (LF, commas, every row valid): its valid-rows file is the upload's bytes, stored
    // by the storage (not written again), with the upload's SHA-256 on record.
    expect(out).toBe(raw);
    const meta = JSON.parse(await storageFile(file.outputs.valid!.replace(/([^/]+)$/, '.$1.meta.json')));
    expect(meta).toMatchObject({ sha256: up.file.sha256, size: up.file.size, contentType: 'text/csv' });
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
      if (i % 10 === 0) lines.push(`31/02/23,s${i},13,-1,"=HYPERLINK(""x"")"`);
      else lines.push(`01/03/23,s${i},${(i % 12) + 1},${i % 40},"note, with comma ""quoted"""`);
    }
    const up = await upload(ingestor, `\uFEFF${lines.join('\r\n')}\r\n`, { spec: 'attendance' });
    const { file, last } = await finished(ingestor, up.job.id, up.file.id);
    expect(last).toMatchObject({
      state: 'SUCCEEDED_WITH_ERRORS',
      error: { code: 'SOME_ROWS_INVALID' },
      progress: { total: 1000, succeeded: 900, failed: 100 },
    });
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
    const unsafe = await ingestor.uploadRaw(
      UploadFileDocument,
      { program: '../etc', spec: 'attendance', file: null },
      { file: { body: 'a\n1\n', filename: 'a.csv' } },
    );
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

/** Follows a job to its end, cancelling it at the first progress event that counts rows. */
async function cancelAtFirstRows(jobId: string) {
  let cancelled = false;
  const events = await collectJobEvents(ingestor, jobId, {
    afterSeq: 0,
    onEvent: (e) => {
      if (!cancelled && e.kind === 'PROGRESS' && (e.progress.processed ?? 0) > 0) {
        cancelled = true;
        void ingestor.request(CancelJobDocument, { id: jobId });
      }
    },
  });
  return { cancelled, events };
}

describe('cancelling an ingestion', () => {
  it('stops mid-file and leaves no row of it in the table', async () => {
    const lines = ['date,school_id,grade,present,note'];
    for (let i = 1; i <= 600_000; i++) lines.push(`01/03/23,c${i},${(i % 12) + 1},${i % 40},x`);
    const up = await upload(ingestor, lines.join('\n'), { spec: 'attendance' });
    const { cancelled, events } = await cancelAtFirstRows(up.job.id);
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
    const header = await ingestor.upload(
      ValidateFileDocument,
      { spec: 'attendance', file: null },
      { file: { body: 'date,present,extra\n', filename: 'x.csv' } },
    );
    expect(header.validateFile.headerProblems.map((p) => p.code).sort()).toEqual(['MISSING_REQUIRED_COLUMN', 'UNKNOWN_COLUMN']);
    const after = await t.database.sql`select count(*)::int as n from files`;
    expect(after[0]!['n']).toBe(before[0]!['n']);
  });
});

function zip(entries: Array<{ name: string; body: string | Buffer; mode?: number; compress?: boolean }>): Promise<Buffer> {
  const z = new yazl.ZipFile();
  for (const e of entries)
    z.addBuffer(Buffer.from(e.body), e.name, { ...(e.mode ? { mode: e.mode } : {}), ...(e.compress === false ? { compress: false } : {}) });
  z.end();
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    z.outputStream
      .on('data', (c: Buffer) => chunks.push(c))
      .on('end', () => resolve(Buffer.concat(chunks)))
      .on('error', reject);
  });
}

describe('national program ZIP uploads', () => {
  it('ingests <program>.csv inside <program>.zip with the spec of that name; outputs under emission/', async () => {
    const body = await zip([
      { name: 'district.csv', body: await readFixture('data/district-dimension.data.csv') },
      { name: 'readme.txt', body: 'ignored' },
    ]);
    const { uploadNationalProgram: up } = await ingestor.upload(
      UploadNationalProgramDocument,
      { file: null },
      { file: { body, filename: 'district.zip', contentType: 'application/zip' } },
    );
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
    [
      'a nested archive',
      () =>
        zip([
          { name: 'inner.zip', body: Buffer.from('PK\u0003\u0004rest') },
          { name: 'attendance.csv', body: 'date,school_id,present\n' },
        ]),
    ],
    ['a symlink', () => zip([{ name: 'attendance.csv', body: '/etc/passwd', mode: 0o120777 }])],
    ['a zip bomb', () => zip([{ name: 'attendance.csv', body: Buffer.alloc(20 * 1024 * 1024, 0x30) }])],
    ['a file that is not a zip', async () => Buffer.from('date,school_id,present\n')],
  ];
  for (const [name, make] of attacks) {
    it(`refuses ${name} before ingesting anything`, async () => {
      const { uploadNationalProgram: up } = await ingestor.upload(
        UploadNationalProgramDocument,
        { file: null },
        { file: { body: await make(), filename: 'attack.zip' } },
      );
      const events = await collectJobEvents(ingestor, up.job.id, { afterSeq: 0 });
      expect(events.at(-1)).toMatchObject({ state: 'FAILED', error: { code: 'ZIP_REFUSED' } });
      const { file } = await ingestor.request(FileDocument, { id: up.file.id });
      expect(file.children).toHaveLength(0);
      expect(file.error?.code).toMatch(/^ZIP_/);
    });
  }
});

/** The central directory and local header offsets of a ZIP entry (yazl archives: no extra fields). */
function zipEntry(body: Buffer, name: string): { central: number; local: number; data: number } {
  const eocd = body.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  let at = body.readUInt32LE(eocd + 16);
  for (let i = 0; i < body.readUInt16LE(eocd + 10); i++) {
    const nameLength = body.readUInt16LE(at + 28);
    const local = body.readUInt32LE(at + 42);
    if (body.toString('utf8', at + 46, at + 46 + nameLength) === name) {
      return { central: at, local, data: local + 30 + body.readUInt16LE(local + 26) + body.readUInt16LE(local + 28) };
    }
    at += 46 + nameLength + body.readUInt16LE(at + 30) + body.readUInt16LE(at + 32);
  }
  throw new Error(`no entry ${name}`);
}

const terminalStates = ['SUCCEEDED', 'SUCCEEDED_WITH_ERRORS', 'FAILED', 'CANCELLED'];

async function uploadZip(body: Buffer, filename = 'national.zip') {
  const { uploadNationalProgram: up } = await ingestor.upload(UploadNationalProgramDocument, { file: null }, { file: { body, filename } });
  const events = await collectJobEvents(ingestor, up.job.id, { afterSeq: 0 });
  const { file } = await ingestor.request(FileDocument, { id: up.file.id });
  // Part of every ZIP test: no child is ever left RUNNING (or QUEUED) once its ZIP's job is over.
  for (const child of file.children) expect(terminalStates, JSON.stringify(file.children)).toContain(child.state);
  return { up, events, last: events.at(-1)!, file };
}

/** Marks a finished job FAILED (as a lost worker would) and retries it; returns the retry's last event. */
async function failAndRetry(jobId: string, afterSeq: number) {
  await t.database.sql`update jobs set state = 'FAILED', error = ${t.database.sql.json({ code: 'WORKER_LOST', message: 'test' })} where id = ${jobId}`;
  await t.admin.request(RetryJobDocument, { id: jobId });
  return (await collectJobEvents(ingestor, jobId, { afterSeq })).at(-1)!;
}

async function rewriteStored(key: string, change: (b: Buffer) => Buffer): Promise<void> {
  const file = path.join(t.dataDir, 'storage', key);
  await fs.writeFile(file, change(await fs.readFile(file)));
}

describe('stored bytes are verified before they become rows', () => {
  const csv = 'date,school_id,present\n01/03/23,v1,10\n02/03/23,v2,12\n';
  const corruptions: Array<[string, (b: Buffer) => Buffer]> = [
    // Still a valid CSV: only the SHA-256 can tell.
    ['a digit flipped in a row', (b) => Buffer.from(b.toString().replace('v1,10', 'v1,19'))],
    // The file now fails on its header; the corruption is still what is reported.
    ['a byte flipped in the header', (b) => Buffer.from(b.toString().replace('school_id', 'school_iX'))],
    ['a row appended', (b) => Buffer.concat([b, Buffer.from('03/03/23,v3,1\n')])],
    ['the file cut short', (b) => b.subarray(0, b.length - 12)],
  ];
  for (const [name, change] of corruptions) {
    it(`fails a retried CSV with STORAGE_CORRUPT and keeps no row when ${name}`, async () => {
      const up = await upload(ingestor, csv, { spec: 'attendance' });
      const first = await finished(ingestor, up.job.id, up.file.id);
      expect(first.file).toMatchObject({ state: 'SUCCEEDED', rows: { valid: 2 } });
      expect(await tableCount('ds_attendance_v1', up.file.id)).toBe(2);

      await rewriteStored(up.file.outputs.raw!, change);
      const last = await failAndRetry(up.job.id, first.last.seq);
      expect(last).toMatchObject({ state: 'FAILED', error: { code: 'STORAGE_CORRUPT' } });
      const { file } = await ingestor.request(FileDocument, { id: up.file.id });
      expect(file).toMatchObject({ state: 'FAILED', rows: { valid: 0 }, outputs: { valid: null, errors: null }, error: { code: 'STORAGE_CORRUPT' } });
      expect(file.error!.message).toMatch(/does not match what was recorded at upload/);
      expect(file.error!.message).not.toContain(t.dataDir);
      // Nothing of the file stays visible: not this attempt's rows, not the first attempt's.
      expect(await tableCount('ds_attendance_v1', up.file.id)).toBe(0);
      const { file: errs } = await ingestor.request(FileRowErrorsDocument, { id: up.file.id, first: 10 });
      expect(errs.rowErrors.totalCount).toBe(0);
    });
  }

  it('fails a retried ZIP with STORAGE_CORRUPT and removes what its first attempt made', async () => {
    const entry = csv.replace(/v(\d)/g, 'zv$1');
    const body = await zip([{ name: 'attendance.csv', body: entry, compress: false }]);
    const first = await uploadZip(body);
    expect(first.last).toMatchObject({ state: 'SUCCEEDED' });
    const childId = first.file.children[0]!.id;
    expect(await tableCount('ds_attendance_v1', childId)).toBe(2);

    // A consistent archive (the CRC-32 matches the changed data), just not the one uploaded.
    await rewriteStored(first.file.outputs.raw!, (b) => {
      const out = Buffer.from(b);
      const h = zipEntry(out, 'attendance.csv');
      out.write(entry.replace('zv1,10', 'zv1,19'), h.data);
      const crc = zlib.crc32(out.subarray(h.data, h.data + entry.length));
      out.writeUInt32LE(crc, h.central + 16);
      out.writeUInt32LE(crc, h.local + 14);
      return out;
    });
    const last = await failAndRetry(first.up.job.id, first.last.seq);
    expect(last).toMatchObject({ state: 'FAILED', error: { code: 'STORAGE_CORRUPT' } });
    const { file } = await ingestor.request(FileDocument, { id: first.up.file.id });
    expect(file).toMatchObject({ state: 'FAILED', error: { code: 'STORAGE_CORRUPT' }, children: [] });
    expect(await tableCount('ds_attendance_v1', childId)).toBe(0);
  });

  it('refuses a ZIP whose stored entry does not match its CRC-32 (ZIP_CORRUPT), before any CSV of it is ingested', async () => {
    const good = { name: 'district.csv', body: await readFixture('data/district-dimension.data.csv') };
    const body = await zip([good, { name: 'attendance.csv', body: csv.replace(/v(\d)/g, 'cv$1'), compress: false }]);
    const at = body.indexOf('cv1,10', zipEntry(body, 'attendance.csv').data);
    body[at + 5] = '9'.charCodeAt(0);
    const { last, file } = await uploadZip(body);
    expect(last).toMatchObject({ state: 'FAILED', error: { code: 'ZIP_REFUSED' } });
    expect(file.error).toMatchObject({ code: 'ZIP_CORRUPT' });
    expect(file.error!.message).toContain('"attendance.csv" is corrupt');
    expect(file.children).toHaveLength(0);
    expect(await t.database.sql`select 1 from ds_attendance_v1 where school_id like 'cv%'`).toHaveLength(0);
  });

  it('refuses a ZIP whose deflated entry does not match its CRC-32 (ZIP_CORRUPT)', async () => {
    const body = await zip([{ name: 'attendance.csv', body: csv.repeat(3).replace(/v(\d)/g, 'dv$1') }]);
    const h = zipEntry(body, 'attendance.csv');
    expect(body.readUInt16LE(h.central + 10)).toBe(8);
    body.writeUInt32LE((body.readUInt32LE(h.central + 16) ^ 0x10) >>> 0, h.central + 16);
    body.writeUInt32LE((body.readUInt32LE(h.local + 14) ^ 0x10) >>> 0, h.local + 14);
    const { last, file } = await uploadZip(body);
    expect(last).toMatchObject({ state: 'FAILED', error: { code: 'ZIP_REFUSED' } });
    expect(file).toMatchObject({ error: { code: 'ZIP_CORRUPT' }, children: [] });
  });

  it('refuses a ZIP with two entries whose names differ only by case', async () => {
    const { last, file } = await uploadZip(
      await zip([
        { name: 'attendance.csv', body: csv },
        { name: 'ATTENDANCE.CSV', body: csv },
      ]),
    );
    expect(last).toMatchObject({ state: 'FAILED', error: { code: 'ZIP_REFUSED' } });
    expect(file).toMatchObject({ error: { code: 'ZIP_UNSAFE_PATH' }, children: [] });
    expect(file.error!.message).toContain('only by letter case');
  });

  it('refuses a ZIP with a control character in an entry name', async () => {
    const body = await zip([{ name: 'attendanceX.csv', body: csv }]);
    const h = zipEntry(body, 'attendanceX.csv');
    for (const offset of [h.central + 46, h.local + 30]) body[offset + 'attendance'.length] = 0x1b;
    const { last, file } = await uploadZip(body);
    expect(last).toMatchObject({ state: 'FAILED', error: { code: 'ZIP_REFUSED' } });
    expect(file).toMatchObject({ error: { code: 'ZIP_UNSAFE_PATH' }, children: [] });
    expect(file.error!.message).toContain('control character');
  });
});

describe('every child of a ZIP reaches a final state', () => {
  it('refuses a ZIP whose entry inflates past its declared size before any child exists', async () => {
    const big = ['date,school_id,present', ...Array.from({ length: 20_000 }, (_, i) => `01/03/23,lie${i},1`)].join('\n');
    const body = await zip([
      { name: 'attendance.csv', body: 'date,school_id,present\n01/03/23,ok1,1\n' },
      { name: 'district.csv', body: big },
    ]);
    const h = zipEntry(body, 'district.csv');
    // The header now claims 1 KiB: every limit passes on the headers, the data says otherwise.
    body.writeUInt32LE(1024, h.central + 24);
    body.writeUInt32LE(1024, h.local + 22);
    const { last, file } = await uploadZip(body);
    expect(last).toMatchObject({ state: 'FAILED', error: { code: 'ZIP_REFUSED' } });
    expect(file).toMatchObject({ state: 'FAILED', error: { code: 'ZIP_BOMB' }, children: [] });
    expect(await t.database.sql`select 1 from ds_attendance_v1 where school_id = 'ok1'`).toHaveLength(0);
  });

  it('fails a CSV with an overlong record alone; its siblings are ingested', async () => {
    const runaway = `date,school_id,present\n01/03/23,"${randomBytes(800 * 1024).toString('base64')}`;
    const { last, file } = await uploadZip(
      await zip([
        { name: 'attendance.csv', body: runaway },
        { name: 'district.csv', body: await readFixture('data/district-dimension.data.csv') },
      ]),
    );
    expect(last, JSON.stringify(file.error)).toMatchObject({ state: 'SUCCEEDED_WITH_ERRORS', error: { code: 'SOME_FILES_FAILED' } });
    const byName = Object.fromEntries(file.children.map((c) => [c.fileName, c]));
    expect(byName['attendance.csv']).toMatchObject({ state: 'FAILED', error: { code: 'RECORD_TOO_LARGE' } });
    expect(byName['district.csv']).toMatchObject({ state: 'SUCCEEDED', rows: { valid: 5 } });
  });

  it('fails a CSV with a bad header alone, even when the rest of it is never read', async () => {
    const rows = Array.from({ length: 50_000 }, (_, i) => `01/03/23,h${i},1`).join('\n');
    const { last, file } = await uploadZip(
      await zip([
        { name: 'attendance.csv', body: `wrong,header,here\n${rows}` },
        { name: 'district.csv', body: await readFixture('data/district-dimension.data.csv') },
      ]),
    );
    expect(last, JSON.stringify(file.error)).toMatchObject({ state: 'SUCCEEDED_WITH_ERRORS', error: { code: 'SOME_FILES_FAILED' } });
    const byName = Object.fromEntries(file.children.map((c) => [c.fileName, c]));
    expect(byName['attendance.csv']).toMatchObject({ state: 'FAILED', error: { code: 'HEADER_INVALID' } });
    expect(byName['district.csv']).toMatchObject({ state: 'SUCCEEDED', rows: { valid: 5 } });
  });

  it('marks the child being ingested CANCELLED when the ZIP job is cancelled', async () => {
    const lines = ['date,school_id,grade,present,note'];
    for (let i = 1; i <= 600_000; i++) lines.push(`01/03/23,zc${i},${(i % 12) + 1},${i % 40},x`);
    const body = await zip([{ name: 'attendance.csv', body: lines.join('\n') }]);
    const { uploadNationalProgram: up } = await ingestor.upload(UploadNationalProgramDocument, { file: null }, { file: { body, filename: 'big.zip' } });
    const { cancelled, events } = await cancelAtFirstRows(up.job.id);
    expect(cancelled).toBe(true);
    expect(events.at(-1)).toMatchObject({ state: 'CANCELLED', terminal: true });
    const { file } = await ingestor.request(FileDocument, { id: up.file.id });
    expect(file.children).toHaveLength(1);
    expect(file.children[0]).toMatchObject({ state: 'CANCELLED', finished: true, error: { code: 'CANCELLED' } });
    expect(await tableCount('ds_attendance_v1', file.children[0]!.id)).toBe(0);
  });
});

describe('upload limits', () => {
  it('refuses a file over SLUICE_MAX_FILE_SIZE_BYTES with PAYLOAD_TOO_LARGE and stores nothing', async () => {
    const small = await startTestApp({ ...FAST_JOBS, SLUICE_MAX_FILE_SIZE_BYTES: '1000' });
    await small.admin.request(RegisterSpecDocument, { kind: 'EVENT', spec: attendanceSpec });
    const res = await small.admin.uploadRaw(
      UploadFileDocument,
      { program: 'p', spec: 'attendance', file: null },
      { file: { body: 'x'.repeat(5000), filename: 'big.csv' } },
    );
    expect(codeOf(res.body), JSON.stringify(res.body)).toBe('PAYLOAD_TOO_LARGE');
    const files = await small.database.sql`select count(*)::int as n from files`;
    expect(files[0]!['n']).toBe(0);
  });
});
