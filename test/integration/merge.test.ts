import { createHash } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  FileMergeDocument,
  ImportFileWithModeDocument,
  JobDocument,
  RequestUploadUrlDocument,
  SpecDocument,
  RegisterSpecDocument,
  UploadFileWithModeDocument,
  UploadNationalProgramWithModeDocument,
  ValidateFileWithModeDocument,
  type IngestMode,
  type SluiceClient,
} from '../../src/sdk/client';
import { codeOf, startTestApp, type TestApp } from '../helpers/app';
import { collectJobEvents, FAST_JOBS } from '../helpers/jobs';
import { zipOf } from '../helpers/zip';

let t: TestApp;
let ingestor: SluiceClient;

const schoolSpec = {
  program: 'mschool',
  input: {
    type: 'object',
    properties: {
      school_id: { type: 'string', shouldNotNull: true, unique: true },
      name: { type: 'string', shouldNotNull: true },
      students: { type: 'integer' },
      active: { type: 'boolean' },
    },
    required: ['school_id', 'name'],
  },
};

/** A composite key with a nullable part: an empty board is one key, as the in-file check counts it. */
const gradeSpec = {
  program: 'mgrade',
  input: {
    type: 'object',
    properties: { board: { type: 'string', unique: true }, grade: { type: 'integer', shouldNotNull: true, unique: true }, label: { type: 'string' } },
    required: ['grade'],
  },
};

const visitsSpec = {
  program: 'mvisits',
  input: { type: 'object', properties: { visit_id: { type: 'string', unique: true }, school_id: { type: 'string' } }, required: ['visit_id'] },
};

const blockSpec = { program: 'mblock', input: { type: 'object', properties: { block_id: { type: 'string' }, name: { type: 'string' } } } };

beforeAll(async () => {
  t = await startTestApp({ ...FAST_JOBS });
  ingestor = await t.clientWith(['INGESTOR']);
  await t.admin.request(RegisterSpecDocument, { kind: 'DIMENSION', spec: schoolSpec });
  await t.admin.request(RegisterSpecDocument, { kind: 'DIMENSION', spec: gradeSpec });
  await t.admin.request(RegisterSpecDocument, { kind: 'EVENT', spec: visitsSpec });
  await t.admin.request(RegisterSpecDocument, { kind: 'DIMENSION', spec: blockSpec });
});

interface UploadOpts {
  mode?: IngestMode;
  deleteMissing?: boolean;
  onInvalidRows?: 'SKIP' | 'FAIL';
}

async function upload(spec: string, body: string, opts: UploadOpts = {}) {
  const { uploadFile } = await ingestor.upload(
    UploadFileWithModeDocument,
    { program: 'state_prog', spec, file: null, ...opts },
    { file: { body, filename: `${spec}.csv`, contentType: 'text/csv' } },
  );
  const events = await collectJobEvents(ingestor, uploadFile.job.id, { afterSeq: 0 });
  const { file } = await ingestor.request(FileMergeDocument, { id: uploadFile.file.id });
  return { file, last: events.at(-1)! };
}

async function validate(spec: string, body: string, opts: { mode?: IngestMode; deleteMissing?: boolean } = {}) {
  const { validateFile } = await ingestor.upload(ValidateFileWithModeDocument, { spec, file: null, ...opts }, { file: { body, filename: `${spec}.csv` } });
  return validateFile;
}

async function uploadRaw(spec: string, body: string, opts: UploadOpts) {
  return ingestor.uploadRaw(UploadFileWithModeDocument, { program: 'state_prog', spec, file: null, ...opts }, { file: { body, filename: `${spec}.csv` } });
}

/** The current table, ordered by key (with _updated_at: a row no merge wrote keeps it). */
async function current(table: string, key = 'school_id'): Promise<Array<Record<string, unknown>>> {
  return (await t.database.sql.unsafe(`select * from "${table}" order by ${key}`)).map((r) => ({ ...(r as Record<string, unknown>) }));
}

async function historyCount(table: string, fileId: string): Promise<number> {
  const [r] = await t.database.sql`select count(*)::int as n from ${t.database.sql(table)} where _file_id = ${fileId}`;
  return r!['n'] as number;
}

describe('dimension merges', () => {
  let first: string;
  let second: string;

  it('a first upload (MERGE by default for a dimension with a key) inserts every row into the current table', async () => {
    const { file, last } = await upload('mschool', 'school_id,name,students,active\nS1,Alpha,10,true\nS2,Beta,20,true\nS3,Gamma,30,false\n');
    first = file.id;
    expect(file).toMatchObject({ state: 'SUCCEEDED', mode: 'MERGE', deleteMissing: false, merge: { inserted: 3, updated: 0, unchanged: 0, deleted: 0 } });
    const { job } = await ingestor.request(JobDocument, { id: last.jobId });
    expect(job.result).toMatchObject({ fileId: file.id, merge: { inserted: 3, updated: 0, unchanged: 0, deleted: 0 } });
    const { spec } = await ingestor.request(SpecDocument, { name: 'mschool' });
    expect(spec).toMatchObject({ tableName: 'ds_mschool_v1', currentTableName: 'ds_mschool_v1_current' });
    const rows = await current('ds_mschool_v1_current');
    expect(rows.map((r) => [r['school_id'], r['name'], Number(r['students']), r['active'], r['_file_id'], r['_line']])).toEqual([
      ['S1', 'Alpha', 10, true, first, 2],
      ['S2', 'Beta', 20, true, first, 3],
      ['S3', 'Gamma', 30, false, first, 4],
    ]);
    expect(await historyCount('ds_mschool_v1', first)).toBe(3);
  });

  it('a corrected file updates changed rows, inserts new keys, counts unchanged ones; history keeps both files', async () => {
    const { file } = await upload('mschool', 'school_id,name,students,active\nS3,Gamma,31,false\nS1,Alpha,10,true\nS2,Beta Two,20,true\nS4,Delta,,\n');
    second = file.id;
    expect(file).toMatchObject({ state: 'SUCCEEDED', mode: 'MERGE', merge: { inserted: 1, updated: 2, unchanged: 1, deleted: 0 } });
    const rows = await current('ds_mschool_v1_current');
    expect(rows.map((r) => [r['school_id'], r['name'], r['students'] === null ? null : Number(r['students']), r['_file_id'], r['_line']])).toEqual([
      // Unchanged: still the file (and line) that last wrote it.
      ['S1', 'Alpha', 10, first, 2],
      ['S2', 'Beta Two', 20, second, 4],
      ['S3', 'Gamma', 31, second, 2],
      ['S4', 'Delta', null, second, 5],
    ]);
    expect(await historyCount('ds_mschool_v1', first)).toBe(3);
    expect(await historyCount('ds_mschool_v1', second)).toBe(4);
  });

  it('the same file again changes nothing', async () => {
    const { file } = await upload('mschool', 'school_id,name,students,active\nS3,Gamma,31,false\nS1,Alpha,10,true\nS2,Beta Two,20,true\nS4,Delta,,\n');
    expect(file.merge).toEqual({ inserted: 0, updated: 0, unchanged: 4, deleted: 0 });
  });

  it('a dry run shows the diff (counts and changed rows, before and after) and changes nothing; the real upload applies exactly that diff', async () => {
    const snapshot = 'school_id,name,students,active\nS1,Alpha,11,false\nS4,Delta,,\nS5,Epsilon,50,true\n';
    const before = await current('ds_mschool_v1_current');
    const dry = await validate('mschool', snapshot, { mode: 'MERGE', deleteMissing: true });
    expect(dry).toMatchObject({ valid: true, total: 3, validRows: 3, mode: 'MERGE' });
    expect(dry.diff).toEqual({
      inserted: 1,
      updated: 1,
      unchanged: 1,
      deleted: 2,
      changes: [
        {
          line: 2,
          key: [{ column: 'school_id', value: 'S1' }],
          previousFileId: first,
          previousLine: 2,
          changes: [
            { column: 'students', before: '10', after: '11' },
            { column: 'active', before: 'true', after: 'false' },
          ],
        },
      ],
    });
    // Nothing was written: the current table is as it was, and no temp table outlives the call.
    expect(await current('ds_mschool_v1_current')).toEqual(before);

    const { file } = await upload('mschool', snapshot, { deleteMissing: true });
    const { changes: _changes, ...counts } = dry.diff!;
    expect(file).toMatchObject({ state: 'SUCCEEDED', deleteMissing: true });
    expect(file.merge).toEqual(counts);
    const rows = await current('ds_mschool_v1_current');
    expect(rows.map((r) => r['school_id'])).toEqual(['S1', 'S4', 'S5']);
    const s1 = rows[0]!;
    for (const c of dry.diff!.changes[0]!.changes) expect(String(s1[c.column])).toBe(c.after);
    expect(s1['_file_id']).toBe(file.id);
  });

  it('a dry run lists at most 20 changed rows and counts them all', async () => {
    const lines = Array.from({ length: 25 }, (_, i) => `B${String(i).padStart(2, '0')},Bulk ${i},${i},true`);
    await upload('mschool', `school_id,name,students,active\n${lines.join('\n')}\n`);
    const changed = lines.map((l) => l.replace(',true', ',false'));
    const dry = await validate('mschool', `school_id,name,students,active\n${changed.join('\n')}\n`);
    expect(dry.mode).toBe('MERGE');
    expect(dry.diff).toMatchObject({ inserted: 0, updated: 25, unchanged: 0, deleted: 0 });
    expect(dry.diff!.changes).toHaveLength(20);
    expect(dry.diff!.changes.map((c) => c.line)).toEqual(Array.from({ length: 20 }, (_, i) => i + 2));
  });

  it('deleteMissing with an invalid row fails the file: a refused row must not delete its key', async () => {
    const before = await current('ds_mschool_v1_current');
    const { file, last } = await upload('mschool', 'school_id,name,students,active\nS1,Alpha,eleven,false\nS4,Delta,,\n', { deleteMissing: true });
    expect(file).toMatchObject({ state: 'FAILED', merge: null, error: { code: 'ROWS_INVALID' } });
    expect(last.error?.code).toBe('ROWS_INVALID');
    expect(await current('ds_mschool_v1_current')).toEqual(before);
  });

  it('APPEND keeps a snapshot of the file only: the current table is untouched', async () => {
    const before = await current('ds_mschool_v1_current');
    const { file } = await upload('mschool', 'school_id,name\nS1,Changed\nS9,New\n', { mode: 'APPEND' });
    expect(file).toMatchObject({ state: 'SUCCEEDED', mode: 'APPEND', merge: null });
    expect(await historyCount('ds_mschool_v1', file.id)).toBe(2);
    expect(await current('ds_mschool_v1_current')).toEqual(before);
    const dry = await validate('mschool', 'school_id,name\nS1,Changed\n', { mode: 'APPEND' });
    expect(dry).toMatchObject({ mode: 'APPEND', diff: null });
  });

  it('an empty key cell is one key; keys equal as typed values are duplicates', async () => {
    const a = await upload('mgrade', 'board,grade,label\n,1,One\nCBSE,1,Uno\nCBSE,2,Two\n');
    expect(a.file.merge).toEqual({ inserted: 3, updated: 0, unchanged: 0, deleted: 0 });
    const b = await upload('mgrade', 'board,grade,label\n,1,ONE\nCBSE,2,Two\nCBSE,02,Deux\n');
    // `02` is the key of line 3 again (the in-file check compares typed values): refused, not merged.
    expect(b.file).toMatchObject({
      state: 'SUCCEEDED_WITH_ERRORS',
      rows: { valid: 2, invalid: 1 },
      merge: { inserted: 0, updated: 1, unchanged: 1, deleted: 0 },
    });
    const rows = await current('ds_mgrade_v1_current', 'board nulls first, grade');
    expect(rows.map((r) => [r['board'], Number(r['grade']), r['label']])).toEqual([
      [null, 1, 'ONE'],
      ['CBSE', 1, 'Uno'],
      ['CBSE', 2, 'Two'],
    ]);
  });
});

describe('dry runs and concurrent merges', () => {
  it('a dry run of a file with a refused header reports it without a diff; bytes that are no CSV are BAD_USER_INPUT', async () => {
    const dry = await ingestor.upload(
      ValidateFileWithModeDocument,
      { spec: 'mschool', file: null, mode: 'MERGE' },
      { file: { body: 'nope,name\nS1,x\n', filename: 'x.csv' } },
    );
    expect(dry.validateFile).toMatchObject({ valid: false, mode: 'MERGE', diff: null });
    const binary = await ingestor.uploadRaw(
      ValidateFileWithModeDocument,
      { spec: 'mschool', file: null },
      { file: { body: Buffer.from([0x50, 0x4b, 3, 4, 0, 0, 0, 1, 2]), filename: 'x.csv' } },
    );
    expect(codeOf(binary.body), JSON.stringify(binary.body)).toBe('BAD_USER_INPUT');
  });

  it('merges into one dimension run one at a time: concurrent files insert each key once', async () => {
    await t.admin.request(RegisterSpecDocument, {
      kind: 'DIMENSION',
      spec: { program: 'mconc', input: { type: 'object', properties: { id: { type: 'string', unique: true }, v: { type: 'string' } } } },
    });
    const body = (from: number) => `id,v\n${Array.from({ length: 200 }, (_, i) => `k${from + i},${from}`).join('\n')}\n`;
    const [a, b] = await Promise.all([upload('mconc', body(0)), upload('mconc', body(100))]);
    expect([a.file.state, b.file.state]).toEqual(['SUCCEEDED', 'SUCCEEDED']);
    // 300 keys; the 100 shared ones were inserted by one file and updated by the other.
    expect(a.file.merge!.inserted + b.file.merge!.inserted).toBe(300);
    expect(a.file.merge!.updated + b.file.merge!.updated).toBe(100);
    const [n] = await t.database.sql`select count(*)::int as n from ds_mconc_v1_current`;
    expect(n!['n']).toBe(300);
  });
});

describe('modes that do not apply', () => {
  it('event specs stay append-only: APPEND by default; MERGE or deleteMissing is BAD_USER_INPUT', async () => {
    const { file } = await upload('mvisits', 'visit_id,school_id\nV1,S1\n');
    expect(file).toMatchObject({ state: 'SUCCEEDED', mode: 'APPEND', merge: null });
    const merge = await uploadRaw('mvisits', 'visit_id\nV2\n', { mode: 'MERGE' });
    expect(codeOf(merge.body), JSON.stringify(merge.body)).toBe('BAD_USER_INPUT');
    const del = await uploadRaw('mvisits', 'visit_id\nV2\n', { deleteMissing: true });
    expect(codeOf(del.body), JSON.stringify(del.body)).toBe('BAD_USER_INPUT');
    const dry = await ingestor.uploadRaw(
      ValidateFileWithModeDocument,
      { spec: 'mvisits', file: null, mode: 'MERGE' },
      { file: { body: 'visit_id\nV2\n', filename: 'v.csv' } },
    );
    expect(codeOf(dry.body), JSON.stringify(dry.body)).toBe('BAD_USER_INPUT');
  });

  it('a dimension without unique columns has no key to merge by: APPEND by default, MERGE refused', async () => {
    const { file } = await upload('mblock', 'block_id,name\nB1,One\n');
    expect(file).toMatchObject({ state: 'SUCCEEDED', mode: 'APPEND', merge: null });
    const merge = await uploadRaw('mblock', 'block_id,name\nB1,One\n', { mode: 'MERGE' });
    expect(codeOf(merge.body), JSON.stringify(merge.body)).toBe('BAD_USER_INPUT');
    expect((merge.body.errors?.[0]?.extensions as Record<string, unknown> | undefined)?.['field']).toBe('mode');
  });
});

describe('national program ZIPs', () => {
  it('dimension CSVs of a ZIP merge, event CSVs append; APPEND on the ZIP makes every CSV append', async () => {
    const body = await zipOf([
      { name: 'mgrade.csv', body: 'board,grade,label\nICSE,5,Five\n,1,ONE\n' },
      { name: 'mvisits.csv', body: 'visit_id,school_id\nV7,S1\n' },
    ]);
    const { uploadNationalProgram } = await ingestor.upload(
      UploadNationalProgramWithModeDocument,
      { file: null },
      { file: { body, filename: 'p.zip', contentType: 'application/zip' } },
    );
    await collectJobEvents(ingestor, uploadNationalProgram.job.id, { afterSeq: 0 });
    const { file } = await ingestor.request(FileMergeDocument, { id: uploadNationalProgram.file.id });
    const byName = Object.fromEntries(file.children.map((c) => [c.fileName, c]));
    expect(file.mode).toBeNull();
    expect(byName['mgrade.csv']).toMatchObject({ state: 'SUCCEEDED', mode: 'MERGE', merge: { inserted: 1, updated: 0, unchanged: 1, deleted: 0 } });
    expect(byName['mvisits.csv']).toMatchObject({ state: 'SUCCEEDED', mode: 'APPEND', merge: null });

    const again = await ingestor.upload(
      UploadNationalProgramWithModeDocument,
      { file: null, mode: 'APPEND' },
      { file: { body, filename: 'p.zip', contentType: 'application/zip' } },
    );
    await collectJobEvents(ingestor, again.uploadNationalProgram.job.id, { afterSeq: 0 });
    const { file: appended } = await ingestor.request(FileMergeDocument, { id: again.uploadNationalProgram.file.id });
    expect(appended.children.map((c) => [c.mode, c.merge])).toEqual([
      ['APPEND', null],
      ['APPEND', null],
    ]);
  });
});

describe('signed-URL imports', () => {
  async function signed(body: string) {
    const { requestUploadUrl: u } = await ingestor.request(RequestUploadUrlDocument, {
      input: {
        fileName: 'mgrade.csv',
        program: 'state_prog',
        spec: 'mgrade',
        size: Buffer.byteLength(body),
        sha256: createHash('sha256').update(body).digest('hex'),
      },
    });
    const res = await fetch(u.url, { method: 'PUT', headers: Object.fromEntries(u.headers.map((h) => [h.name, h.value])), body });
    expect(res.status).toBeLessThan(300);
    return u.fileId;
  }

  it('importFile takes ingestMode and deleteMissing: the import merges like a direct upload', async () => {
    const body = 'board,grade,label\n,1,ONE\nCBSE,1,Uno\nCBSE,2,Two\nICSE,5,Five\n';
    const id = await signed(body);
    const bad = await ingestor.raw(ImportFileWithModeDocument, { fileId: id, ingestMode: 'APPEND', deleteMissing: true });
    expect(codeOf(bad.body), JSON.stringify(bad.body)).toBe('BAD_USER_INPUT');
    const { importFile } = await ingestor.request(ImportFileWithModeDocument, { fileId: id, mode: 'SYNC', waitSeconds: 30, deleteMissing: true });
    expect(importFile.finished).toBe(true);
    expect(importFile.file).toMatchObject({
      state: 'SUCCEEDED',
      mode: 'MERGE',
      deleteMissing: true,
      merge: { inserted: 0, updated: 0, unchanged: 4, deleted: 0 },
    });
  });
});

describe('specs registered before merges', () => {
  it('a dimension spec version without a current table gets one at its first merge; a dry run creates nothing', async () => {
    await t.admin.request(RegisterSpecDocument, {
      kind: 'DIMENSION',
      spec: { program: 'mlegacy', input: { type: 'object', properties: { id: { type: 'string', unique: true }, v: { type: 'string' } } } },
    });
    await t.database.sql`drop table ds_mlegacy_v1_current`;
    const dry = await validate('mlegacy', 'id,v\na,1\nb,2\n');
    expect(dry.diff).toEqual({ inserted: 2, updated: 0, unchanged: 0, deleted: 0, changes: [] });
    const [gone] = await t.database.sql`select to_regclass('ds_mlegacy_v1_current')::text as t`;
    expect(gone!['t']).toBeNull();
    const { file } = await upload('mlegacy', 'id,v\na,1\nb,2\n');
    expect(file.merge).toEqual({ inserted: 2, updated: 0, unchanged: 0, deleted: 0 });
    expect((await current('ds_mlegacy_v1_current', 'id')).map((r) => r['id'])).toEqual(['a', 'b']);
  });

  it('a spec table from before partitioning (one table for every file) merges from the file’s rows in it', async () => {
    await t.admin.request(RegisterSpecDocument, {
      kind: 'DIMENSION',
      spec: { program: 'mflat', input: { type: 'object', properties: { id: { type: 'string', unique: true }, v: { type: 'string' } } } },
    });
    await t.database.sql`drop table ds_mflat_v1`;
    await t.database
      .sql`create table ds_mflat_v1 (_file_id uuid not null, _line integer not null, _ingested_at timestamptz not null default now(), id text, v text)`;
    const a = await upload('mflat', 'id,v\na,1\nb,2\n');
    const b = await upload('mflat', 'id,v\na,1\nb,3\nc,4\n');
    expect([a.file.merge, b.file.merge]).toEqual([
      { inserted: 2, updated: 0, unchanged: 0, deleted: 0 },
      { inserted: 1, updated: 1, unchanged: 1, deleted: 0 },
    ]);
    expect((await current('ds_mflat_v1_current', 'id')).map((r) => [r['id'], r['v']])).toEqual([
      ['a', '1'],
      ['b', '3'],
      ['c', '4'],
    ]);
    const dry = await validate('mflat', 'id,v\na,9\n', { deleteMissing: true });
    expect(dry.diff).toMatchObject({ inserted: 0, updated: 1, unchanged: 0, deleted: 2 });
  });
});
