import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import yazl from 'yazl';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  FileDocument,
  ImportFileDocument,
  RegisterSpecDocument,
  RequestUploadUrlDocument,
  RetryJobDocument,
  SpecDocument,
  UploadFileDocument,
  UploadNationalProgramDocument,
  ValidateFileDocument,
  type OnUnknownColumns,
  type SluiceClient,
} from '../../src/sdk/client';
import { codeOf, startTestApp, type TestApp } from '../helpers/app';
import { collectJobEvents, FAST_JOBS } from '../helpers/jobs';
import { repoRoot } from '../helpers/process';

const fixtures = path.resolve(repoRoot, 'test/fixtures/cqube');
const readFixture = (p: string) => fs.readFile(path.join(fixtures, p), 'utf8');
const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

let t: TestApp;
let ingestor: SluiceClient;
let extraCsv: string;
let plainCsv: string;

/** A spec with aliases and a spec-level IGNORE default, both cQube-compatible extensions. */
const lenientSpec = {
  program: 'lenient',
  onunknowncolumns: 'ignore',
  input: {
    type: 'object',
    properties: {
      school_id: { type: 'string', shouldNotNull: true, aliases: ['School Code', 'udise'] },
      present: { type: 'integer', shouldnotnull: true },
    },
    required: ['school_id', 'present'],
  },
};

beforeAll(async () => {
  t = await startTestApp({ ...FAST_JOBS });
  ingestor = await t.clientWith(['INGESTOR']);
  await t.admin.request(RegisterSpecDocument, { kind: 'DIMENSION', spec: JSON.parse(await readFixture('specs/dimension.district.json')) });
  await t.admin.request(RegisterSpecDocument, { kind: 'EVENT', spec: JSON.parse(await readFixture('specs/event.teacherspresent.json')) });
  await t.admin.request(RegisterSpecDocument, { kind: 'DATASET', spec: lenientSpec });
  extraCsv = await readFixture('data/district-dimension.extra-columns.csv');
  plainCsv = await readFixture('data/district-dimension.data.csv');
});

interface UploadOpts {
  spec: string;
  name?: string;
  onUnknownColumns?: OnUnknownColumns;
  columnMap?: unknown;
}

function uploadRaw(body: string, o: UploadOpts) {
  return ingestor.uploadRaw(
    UploadFileDocument,
    { program: 'state_prog', spec: o.spec, file: null, onUnknownColumns: o.onUnknownColumns, columnMap: o.columnMap },
    { file: { body, filename: o.name ?? `${o.spec}.csv`, contentType: 'text/csv' } },
  );
}

async function uploadAndWait(body: string, o: UploadOpts) {
  const { body: res } = await uploadRaw(body, o);
  expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
  const up = res.data!.uploadFile;
  const events = await collectJobEvents(ingestor, up.job.id, { afterSeq: 0 });
  const { file } = await ingestor.request(FileDocument, { id: up.file.id });
  return { up, file, last: events.at(-1)! };
}

async function rowsOf(table: string, fileId: string) {
  return t.database
    .sql`select district_id, district_name, state_id, state_name, latitude, longitude from ${t.database.sql(table)} where _file_id = ${fileId} order by _line`;
}

const IGNORED_DISTRICT_EXTRAS = {
  code: 'IGNORED_COLUMNS',
  count: 3,
  columns: [
    { name: 'Sl No', position: 1, suggestion: null },
    { name: 'district_lgd_code', position: 4, suggestion: null },
    { name: 'grade_state', position: 9, suggestion: null },
  ],
};

describe('onUnknownColumns', () => {
  it('REJECT (the default) fails a file with undeclared columns; IGNORE loads the declared ones and warns, naming the dropped columns and positions', async () => {
    const rejected = await uploadAndWait(extraCsv, { spec: 'district' });
    expect(rejected.file).toMatchObject({ state: 'FAILED', error: { code: 'HEADER_INVALID' }, warnings: [] });

    const ignored = await uploadAndWait(extraCsv, { spec: 'district', onUnknownColumns: 'IGNORE' });
    expect(ignored.file).toMatchObject({ state: 'SUCCEEDED', rows: { total: 5, valid: 5, invalid: 0 }, error: null });
    expect(ignored.file.warnings).toEqual([
      { ...IGNORED_DISTRICT_EXTRAS, message: expect.stringContaining('"Sl No" (column 1), "district_lgd_code" (column 4), "grade_state" (column 9)') },
    ]);

    // Exactly the rows the file without the extra columns gives.
    const plain = await uploadAndWait(plainCsv, { spec: 'district' });
    expect(plain.file.warnings).toEqual([]);
    expect(await rowsOf('ds_district_v1', ignored.file.id)).toEqual(await rowsOf('ds_district_v1', plain.file.id));
  });

  it('loads the real teacherspresent export (schoolcategory_id, grade_state beside the spec’s columns) under IGNORE', async () => {
    const csv = await readFixture('data/teacherspresent-event.data.head.csv');
    const rejected = await uploadAndWait(csv, { spec: 'teacherspresent' });
    expect(rejected.file.error?.code).toBe('HEADER_INVALID');
    const { file } = await uploadAndWait(csv, { spec: 'teacherspresent', onUnknownColumns: 'IGNORE' });
    expect(file.rows.total).toBe(50);
    expect(file.rows.valid).toBeGreaterThan(0);
    expect(file.warnings.map((w) => w.columns.map((c) => [c.name, c.position]))).toEqual([
      [
        ['schoolcategory_id', 6],
        ['grade_state', 7],
      ],
    ]);
  });

  it('still requires the required columns under IGNORE, and says which header may be the missing one', async () => {
    const { file } = await uploadAndWait('district_id,district_name,state_id,State Nmae,latitude,longitude,extra\n1,a,2,b,1.5,2.5,x\n', {
      spec: 'district',
      onUnknownColumns: 'IGNORE',
    });
    expect(file).toMatchObject({ state: 'FAILED', error: { code: 'HEADER_INVALID' } });
    expect(file.error!.problems).toEqual([
      expect.objectContaining({
        code: 'MISSING_REQUIRED_COLUMN',
        column: 'state_name',
        suggestion: 'State Nmae',
        message: expect.stringContaining('did you mean the header cell "State Nmae"?'),
      }),
    ]);
  });

  it('takes the spec’s onUnknownColumns (any letter case) as the default; the argument overrides it', async () => {
    const csv = 'school_id,present,remarks\ns1,3,hello\n';
    const byDefault = await uploadAndWait(csv, { spec: 'lenient' });
    expect(byDefault.file).toMatchObject({ state: 'SUCCEEDED', warnings: [{ code: 'IGNORED_COLUMNS', columns: [{ name: 'remarks', position: 3 }] }] });
    const overridden = await uploadAndWait(csv, { spec: 'lenient', onUnknownColumns: 'REJECT' });
    expect(overridden.file).toMatchObject({ state: 'FAILED', error: { code: 'HEADER_INVALID' } });
    const { spec } = await ingestor.request(SpecDocument, { name: 'lenient' });
    expect(spec).toMatchObject({
      onUnknownColumns: 'IGNORE',
      columns: [
        { column: 'school_id', aliases: ['School Code', 'udise'] },
        { column: 'present', aliases: [], nullable: false },
      ],
    });
    const bad = await t.admin.raw(RegisterSpecDocument, { kind: 'DATASET', name: 'bad_policy', spec: { ...lenientSpec, onunknowncolumns: 'sometimes' } });
    expect(codeOf(bad.body)).toBe('BAD_USER_INPUT');
    expect(bad.body.errors![0]!.extensions!['problems']).toEqual([expect.objectContaining({ code: 'INVALID_CONSTRAINT', path: '/onUnknownColumns' })]);
  });

  it('keeps the policy across a retry: the job input carries it', async () => {
    const first = await uploadAndWait(extraCsv, { spec: 'district', onUnknownColumns: 'IGNORE' });
    expect(first.up.job.input).toMatchObject({ headers: { onUnknownColumns: 'IGNORE' } });
    await t.database
      .sql`update jobs set state = 'FAILED', error = ${t.database.sql.json({ code: 'WORKER_LOST', message: 'test' })} where id = ${first.up.job.id}`;
    await t.admin.request(RetryJobDocument, { id: first.up.job.id });
    const events = await collectJobEvents(ingestor, first.up.job.id, { afterSeq: first.last.seq });
    expect(events.at(-1)).toMatchObject({ state: 'SUCCEEDED' });
    const { file } = await ingestor.request(FileDocument, { id: first.file.id });
    expect(file).toMatchObject({ state: 'SUCCEEDED', rows: { valid: 5 }, warnings: [IGNORED_DISTRICT_EXTRAS] });
  });
});

describe('validateFile', () => {
  it('reports the dropped columns as warnings under IGNORE, and suggests the closest spec column under REJECT', async () => {
    const ignored = await ingestor.upload(
      ValidateFileDocument,
      { spec: 'district', file: null, onUnknownColumns: 'IGNORE' },
      { file: { body: extraCsv, filename: 'd.csv' } },
    );
    expect(ignored.validateFile).toMatchObject({ valid: true, total: 5, validRows: 5, headerProblems: [], warnings: [IGNORED_DISTRICT_EXTRAS] });

    const typo = 'district_id,distrct_name,state_id,state_name,latitude,longitude\n1,a,2,b,1,2\n';
    const rejected = await ingestor.upload(ValidateFileDocument, { spec: 'district', file: null }, { file: { body: typo, filename: 'd.csv' } });
    expect(rejected.validateFile.warnings).toEqual([]);
    expect(rejected.validateFile.headerProblems).toEqual([
      {
        code: 'UNKNOWN_COLUMN',
        column: 'distrct_name',
        suggestion: 'district_name',
        message: 'header cell 2 "distrct_name" is not a column of spec "district"; did you mean "district_name"?',
      },
      expect.objectContaining({ code: 'MISSING_REQUIRED_COLUMN', column: 'district_name', suggestion: 'distrct_name' }),
    ]);
  });

  it('maps headers through columnMap (object or list form)', async () => {
    const csv = 'District Code,Name,state_id,state_name,latitude,longitude\n1,a,2,b,1,2\n';
    for (const columnMap of [
      { 'district code': 'district_id', NAME: 'District_Name' },
      [
        { header: 'District Code', column: 'district_id' },
        { header: 'Name', column: 'district_name' },
      ],
    ]) {
      const { validateFile } = await ingestor.upload(
        ValidateFileDocument,
        { spec: 'district', file: null, columnMap },
        { file: { body: csv, filename: 'd.csv' } },
      );
      expect(validateFile).toMatchObject({ valid: true, validRows: 1, headerProblems: [] });
    }
  });
});

describe('columnMap and aliases', () => {
  it('loads a file whose headers differ from the spec through columnMap', async () => {
    const csv = plainCsv.replace('district_id,district_name', 'District Code,Name of District');
    const { file } = await uploadAndWait(csv, { spec: 'district', columnMap: { 'District Code': 'district_id', 'Name of District': 'district_name' } });
    expect(file).toMatchObject({ state: 'SUCCEEDED', rows: { valid: 5 } });
    expect((await rowsOf('ds_district_v1', file.id))[0]).toMatchObject({ district_id: '101', district_name: 'district_101' });
  });

  it('refuses a columnMap that names no spec column (suggesting the closest), maps two headers to one column, or has the wrong shape: BAD_USER_INPUT', async () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ h: 'distrct_id' }, /columnMap maps "h" to "distrct_id", which is not a column of spec "district"; did you mean "district_id"\?/],
      [{ a: 'state_id', b: 'STATE_ID' }, /maps both "a" and "b" to the column "state_id"/],
      [['state_id'], /entry 1 must be an object/],
      ['district_id', /must be a JSON object/],
      [{ a: 7 }, /entry 1: column must be a string/],
      [{ A: 'state_id', a: 'state_name' }, /mapped twice/],
    ];
    for (const [columnMap, message] of cases) {
      const { body } = await uploadRaw(plainCsv, { spec: 'district', columnMap });
      expect({ columnMap, code: codeOf(body), field: body.errors?.[0]?.extensions?.['field'] }).toEqual({
        columnMap,
        code: 'BAD_USER_INPUT',
        field: 'columnMap',
      });
      expect(body.errors![0]!.message).toMatch(message);
      const dry = await ingestor.uploadRaw(ValidateFileDocument, { spec: 'district', file: null, columnMap }, { file: { body: plainCsv, filename: 'd.csv' } });
      expect(codeOf(dry.body)).toBe('BAD_USER_INPUT');
    }
  });

  it('reads a header through a spec alias, in any letter case; an alias naming another column refuses the spec', async () => {
    const { file } = await uploadAndWait('SCHOOL CODE,present\ns9,4\n', { spec: 'lenient' });
    expect(file).toMatchObject({ state: 'SUCCEEDED', rows: { valid: 1 }, warnings: [] });
    const clash = await t.admin.raw(RegisterSpecDocument, {
      kind: 'DATASET',
      name: 'clash',
      spec: { program: 'p', input: { type: 'object', properties: { a: { type: 'string', aliases: ['b'] }, b: { type: 'string' } } } },
    });
    expect(codeOf(clash.body)).toBe('BAD_USER_INPUT');
    expect(clash.body.errors![0]!.extensions!['problems']).toEqual([
      expect.objectContaining({ code: 'DUPLICATE_COLUMN', path: '/input/properties/a/aliases/0' }),
    ]);
    const badAliases = await t.admin.raw(RegisterSpecDocument, {
      kind: 'DATASET',
      name: 'bad_aliases',
      spec: { program: 'p', input: { type: 'object', properties: { a: { type: 'string', aliases: 'b' } } } },
    });
    expect(badAliases.body.errors![0]!.extensions!['problems']).toEqual([
      expect.objectContaining({ code: 'INVALID_CONSTRAINT', path: '/input/properties/a/aliases' }),
    ]);
  });
});

describe('signed-URL imports and national program ZIPs', () => {
  it('importFile takes onUnknownColumns and columnMap', async () => {
    const csv = extraCsv.replace('district_name', 'Name');
    const { requestUploadUrl: u } = await ingestor.request(RequestUploadUrlDocument, {
      input: { fileName: 'district.csv', program: 'state_prog', spec: 'district', size: Buffer.byteLength(csv), sha256: sha256(csv) },
    });
    const put = await fetch(u.url, { method: 'PUT', headers: Object.fromEntries(u.headers.map((h) => [h.name, h.value])), body: csv });
    expect(put.status).toBeLessThan(300);
    const bad = await ingestor.raw(ImportFileDocument, { fileId: u.fileId, mode: 'SYNC', columnMap: { Name: 'nme' } });
    expect(codeOf(bad.body)).toBe('BAD_USER_INPUT');
    const { importFile } = await ingestor.request(ImportFileDocument, {
      fileId: u.fileId,
      mode: 'SYNC',
      onUnknownColumns: 'IGNORE',
      columnMap: [{ header: 'Name', column: 'district_name' }],
    });
    expect(importFile).toMatchObject({ finished: true, job: { state: 'SUCCEEDED' }, file: { rows: { valid: 5 }, warnings: [IGNORED_DISTRICT_EXTRAS] } });
  });

  it('uploadNationalProgram applies the policy to every CSV of the ZIP', async () => {
    const z = new yazl.ZipFile();
    z.addBuffer(Buffer.from(extraCsv.replace('district_name', 'Name')), 'district.csv');
    z.end();
    const chunks: Buffer[] = [];
    const body = await new Promise<Buffer>((resolve, reject) =>
      z.outputStream
        .on('data', (c: Buffer) => chunks.push(c))
        .on('end', () => resolve(Buffer.concat(chunks)))
        .on('error', reject),
    );
    const { uploadNationalProgram: up } = await ingestor.upload(
      UploadNationalProgramDocument,
      // `present` is a column of another spec: skipped for district.csv, as one map serves every CSV.
      { file: null, onUnknownColumns: 'IGNORE', columnMap: { Name: 'district_name', Attendance: 'present' } },
      { file: { body, filename: 'district.zip', contentType: 'application/zip' } },
    );
    const events = await collectJobEvents(ingestor, up.job.id, { afterSeq: 0 });
    expect(events.at(-1)).toMatchObject({ state: 'SUCCEEDED' });
    const { file } = await ingestor.request(FileDocument, { id: up.file.id });
    expect(file.children).toEqual([
      expect.objectContaining({ fileName: 'district.csv', state: 'SUCCEEDED', warnings: [expect.objectContaining(IGNORED_DISTRICT_EXTRAS)] }),
    ]);

    // Two headers for one column of a CSV's spec can only be seen per CSV: that CSV fails HEADER_INVALID.
    const clash = await ingestor.upload(
      UploadNationalProgramDocument,
      { file: null, columnMap: { a: 'state_id', b: 'STATE_ID' } },
      { file: { body, filename: 'district2.zip', contentType: 'application/zip' } },
    );
    const clashEvents = await collectJobEvents(ingestor, clash.uploadNationalProgram.job.id, { afterSeq: 0 });
    expect(clashEvents.at(-1)).toMatchObject({ state: 'FAILED' });
    const clashed = await ingestor.request(FileDocument, { id: clash.uploadNationalProgram.file.id });
    expect(clashed.file.children).toEqual([
      expect.objectContaining({
        state: 'FAILED',
        error: expect.objectContaining({ code: 'HEADER_INVALID', message: expect.stringContaining('maps both "a" and "b" to the column "state_id"') }),
      }),
    ]);
  });
});
