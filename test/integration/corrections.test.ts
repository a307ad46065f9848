import yazl from 'yazl';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  FileDocument,
  FileRowErrorsDocument,
  RegisterSpecDocument,
  RetryJobDocument,
  UploadCorrectionsDocument,
  UploadFileDocument,
  UploadNationalProgramDocument,
  type SluiceClient,
} from '../../src/sdk/client';
import { codeOf, startTestApp, type TestApp } from '../helpers/app';
import { collectJobEvents, FAST_JOBS } from '../helpers/jobs';

const visitsSpec = {
  program: 'visits',
  input: {
    type: 'object',
    properties: {
      date: { type: 'date', dateFormat: 'DD/MM/YY', shouldNotNull: true },
      school_id: { type: 'string', shouldNotNull: true, unique: true },
      present: { type: 'number', shouldNotNull: true, minimum: 0 },
      note: { type: 'string' },
    },
    required: ['date', 'school_id', 'present'],
  },
};

/**
 * Lines 1 (header) to 12: line 3 bad `present`, line 5 bad date with a quoted two-line note (lines
 * 5-6), line 9 bad `present` with a formula-like note, a blank line 10, line 12 bad `present`.
 */
const PARENT_CSV = [
  'date,school_id,present,note',
  '01/03/23,s1,1,',
  '01/03/23,s2,x,',
  '01/03/23,s3,3,',
  '31/02/23,s4,4,"two',
  'lines"',
  '01/03/23,s5,5,',
  '01/03/23,s6,6,',
  '01/03/23,s7,-,=1+1',
  '',
  '01/03/23,s8,8,',
  '01/03/23,s9,y,',
  '',
].join('\n');

let t: TestApp;
let ingestor: SluiceClient;
let token: string;

beforeAll(async () => {
  t = await startTestApp({ ...FAST_JOBS });
  ingestor = await t.clientWith(['INGESTOR']);
  token = ingestor.options.token!;
  await t.admin.request(RegisterSpecDocument, { kind: 'EVENT', spec: visitsSpec });
});

async function uploadParent(csv = PARENT_CSV) {
  const { uploadFile } = await ingestor.upload(
    UploadFileDocument,
    { program: 'state_prog', spec: 'visits', file: null },
    { file: { body: csv, filename: 'visits.csv', contentType: 'text/csv' } },
  );
  await collectJobEvents(ingestor, uploadFile.job.id, { afterSeq: 0 });
  return uploadFile.file.id;
}

async function report(fileId: string): Promise<string> {
  const res = await fetch(`${t.url}/files/${fileId}/errors.csv`, { headers: { authorization: `Bearer ${token}` } });
  const body = await res.text();
  expect(res.status, body).toBe(200);
  return body;
}

async function correct(fileId: string, body: string | Buffer) {
  const { uploadCorrections } = await ingestor.upload(
    UploadCorrectionsDocument,
    { fileId, file: null },
    { file: { body, filename: 'visits_errors.csv', contentType: 'text/csv' } },
  );
  const events = await collectJobEvents(ingestor, uploadCorrections.job.id, { afterSeq: 0 });
  const { file } = await ingestor.request(FileDocument, { id: uploadCorrections.file.id });
  return { file, last: events.at(-1)! };
}

const fileOf = async (id: string) => (await ingestor.request(FileDocument, { id })).file;
const errorLines = async (id: string) => (await ingestor.request(FileRowErrorsDocument, { id, first: 1000 })).file.rowErrors.nodes.map((e) => [e.line, e.code]);
/** The indexes of a file's partition of the spec table. */
const partitionIndexes = async (fileId: string) =>
  (await t.database.sql`select indexdef from pg_indexes where tablename = ${`dsf_${fileId.replace(/-/g, '')}`}`).map((r) => String(r['indexdef']));
const dataRows = async (fileId: string) =>
  (await t.database.sql`select _line, school_id, present::text as present, note from ds_visits_v1 where _file_id = ${fileId} order by _line`).map((r) => ({
    ...r,
  }));

describe('corrections round-trip', () => {
  it('download the report, fix cells, send it back: fixed rows join the parent at their lines, once', async () => {
    const parentId = await uploadParent();
    const before = await fileOf(parentId);
    expect(before.rows).toEqual({ total: 9, valid: 5, invalid: 4 });
    const text = await report(parentId);
    const lines = text.trimEnd().split('\n');
    expect(lines[0]).toBe('_line,date,school_id,present,note,error_description');
    // The two-line record's second line starts with its note's rest.
    expect(lines.slice(1).map((l) => l.split(',')[0])).toEqual(['3', '5', 'lines"', '9', '12']);
    // Formula-like cells are neutralised for spreadsheets ('-, '=1+1) and restored on the way back.
    expect(text).toContain(`9,01/03/23,s7,'-,'=1+1,`);

    // Unchanged: every row still invalid, nothing moves.
    const unchanged = await correct(parentId, text);
    expect(unchanged.last).toMatchObject({ state: 'FAILED', error: { code: 'ALL_ROWS_INVALID' } });
    expect(unchanged.file).toMatchObject({ correctsFileId: parentId, rows: { total: 4, valid: 0, invalid: 4 } });
    expect((await errorLines(unchanged.file.id)).map(([l]) => l)).toEqual([3, 5, 9, 12]);
    expect((await fileOf(parentId)).rows).toEqual(before.rows);
    expect((await dataRows(parentId)).map((r) => r['_line'])).toEqual([2, 4, 7, 8, 11]);
    // The load built no index on the parent's partition; nothing was applied, so none yet.
    expect(await partitionIndexes(parentId)).toEqual([]);

    // Fix lines 3 and 9 (the formula-like note comes back as it was written), leave 5 and 12.
    const fixed = text.replace('3,01/03/23,s2,x,', '3,01/03/23,s2,2,').replace(`9,01/03/23,s7,'-,'=1+1,`, `9,01/03/23,s7,7,'=1+1,`);
    const applied = await correct(parentId, fixed);
    expect(applied.last).toMatchObject({ state: 'SUCCEEDED_WITH_ERRORS' });
    expect(applied.file.rows).toEqual({ total: 4, valid: 2, invalid: 2 });
    expect((await errorLines(applied.file.id)).map(([l]) => l)).toEqual([5, 12]);
    expect((await fileOf(parentId)).rows).toEqual({ total: 9, valid: 7, invalid: 2 });
    expect((await errorLines(parentId)).map(([l]) => l)).toEqual([5, 12]);
    const rows = await dataRows(parentId);
    expect(rows.map((r) => r['_line'])).toEqual([2, 3, 4, 7, 8, 9, 11]);
    expect(rows.find((r) => r['_line'] === 9)).toEqual({ _line: 9, school_id: 's7', present: '7', note: '=1+1' });
    // Applying them gave the partition its unique index on _line first: a line cannot be there twice.
    expect(await partitionIndexes(parentId)).toEqual([expect.stringMatching(/^CREATE UNIQUE INDEX \S+_line ON \S+ USING btree \(_line\)$/)]);
    const duplicate = await t.database.sql`insert into ds_visits_v1 (_file_id, _line) values (${parentId}, 3)`.catch((e: { code?: string }) => e);
    expect((duplicate as { code?: string }).code).toBe('23505');

    // The same corrections again: applied lines are refused, nothing changes.
    const again = await correct(parentId, fixed);
    expect(again.last).toMatchObject({ state: 'FAILED', error: { code: 'ALL_ROWS_INVALID' } });
    expect(again.file.rows).toEqual({ total: 4, valid: 0, invalid: 4 });
    expect(await errorLines(again.file.id)).toEqual([
      [3, 'ALREADY_CORRECTED'],
      [5, 'INVALID_DATE'],
      [9, 'ALREADY_CORRECTED'],
      [12, 'NOT_A_NUMBER'],
    ]);
    expect(again.file.errorSummary!.byCode).toContainEqual({ code: 'ALREADY_CORRECTED', count: 2 });
    expect((await fileOf(parentId)).rows).toEqual({ total: 9, valid: 7, invalid: 2 });
    expect(await dataRows(parentId)).toEqual(rows);

    // Second round from the corrections file's own report, sent to the corrections file: it corrects the original.
    const second = await report(applied.file.id);
    expect(second.split('\n')[0]).toBe('_line,date,school_id,present,note,error_description');
    const round2 = await correct(applied.file.id, second.replace('5,31/02/23', '5,28/02/23').replace('12,01/03/23,s9,y', '12,01/03/23,s9,9'));
    expect(round2.last).toMatchObject({ state: 'SUCCEEDED' });
    expect(round2.file.correctsFileId).toBe(parentId);
    const parent = await fileOf(parentId);
    expect(parent.rows).toEqual({ total: 9, valid: 9, invalid: 0 });
    expect(await errorLines(parentId)).toEqual([]);
    const all = await dataRows(parentId);
    expect(all.map((r) => r['_line'])).toEqual([2, 3, 4, 5, 7, 8, 9, 11, 12]);
    // A record spanning two lines keeps them, and the rows after it keep theirs.
    expect(all.find((r) => r['_line'] === 5)).toEqual({ _line: 5, school_id: 's4', present: '4', note: 'two\nlines' });
    const { file: withCorrections } = await ingestor.request(FileDocument, { id: parentId });
    expect(withCorrections.corrections.map((c) => c.id).sort()).toEqual([unchanged.file.id, applied.file.id, again.file.id, round2.file.id].sort());
    expect(withCorrections.corrections.every((c) => c.correctsFileId === parentId)).toBe(true);
  });

  it('two corrections of the same line sent at once apply it once', async () => {
    const parentId = await uploadParent();
    const fixed = (await report(parentId)).replace('3,01/03/23,s2,x,', '3,01/03/23,s2,2,');
    const [a, b] = await Promise.all([correct(parentId, fixed), correct(parentId, fixed)]);
    expect([a.file.rows.valid, b.file.rows.valid].sort()).toEqual([0, 1]);
    expect((await fileOf(parentId)).rows).toEqual({ total: 9, valid: 6, invalid: 3 });
    expect((await dataRows(parentId)).filter((r) => r['_line'] === 3)).toHaveLength(1);
  });

  it('a parent that kept no row (all invalid) gets its corrected rows', async () => {
    const parentId = await uploadParent('date,school_id,present,note\n01/03/23,a1,x,\n01/03/23,a2,y,\n');
    expect(await fileOf(parentId)).toMatchObject({ state: 'FAILED', error: { code: 'ALL_ROWS_INVALID' } });
    const text = await report(parentId);
    const res = await correct(parentId, text.replace('a1,x', 'a1,1'));
    expect(res.last).toMatchObject({ state: 'SUCCEEDED_WITH_ERRORS' });
    expect((await fileOf(parentId)).rows).toEqual({ total: 2, valid: 1, invalid: 1 });
    expect((await dataRows(parentId)).map((r) => r['school_id'])).toEqual(['a1']);
    expect(await partitionIndexes(parentId)).toHaveLength(1);

    // Its job is FAILED (ALL_ROWS_INVALID), so it could be retried: a retry would load the file
    // again from its upload, over the corrected row. Refused while corrections are applied.
    const [job] = await t.database.sql<{ id: string }[]>`select id from jobs where input->>'fileId' = ${parentId}`;
    const retry = await ingestor.request(RetryJobDocument, { id: job!.id }).catch((e: unknown) => e);
    expect(codeOf((retry as { response?: { errors?: [] } }).response ?? {}) ?? String(retry)).toMatch(/CONFLICT/);
    expect(String(retry)).toMatch(/correct/);
    expect((await dataRows(parentId)).map((r) => r['school_id'])).toEqual(['a1']);
    expect((await fileOf(parentId)).rows).toEqual({ total: 2, valid: 1, invalid: 1 });
  });

  it('a FAILED parent whose corrections applied nothing can still be retried', async () => {
    const parentId = await uploadParent('date,school_id,present,note\n01/03/23,n1,x,\n');
    const text = await report(parentId);
    expect((await correct(parentId, text)).last).toMatchObject({ state: 'FAILED', error: { code: 'ALL_ROWS_INVALID' } });
    const [job] = await t.database.sql<{ id: string }[]>`select id from jobs where input->>'fileId' = ${parentId}`;
    // A corrections upload still on its way (its job QUEUED, as if no worker had taken it yet)
    // holds the retry back too: it would apply its rows into the partition the retry reloads.
    const [pending] = await t.database.sql<{ jobId: string }[]>`select job_id as "jobId" from files where corrects_file_id = ${parentId}`;
    await t.database.sql`update jobs set state = 'QUEUED' where id = ${pending!.jobId}`;
    const held = await ingestor.request(RetryJobDocument, { id: job!.id }).catch((e: unknown) => e);
    expect(String(held)).toMatch(/being applied/);
    await t.database.sql`update jobs set state = 'FAILED' where id = ${pending!.jobId}`;

    const { retryJob } = await ingestor.request(RetryJobDocument, { id: job!.id });
    expect(retryJob.state).toBe('QUEUED');
    // While the file is loaded again, corrections are refused (its reload would drop them).
    await t.database.sql`update jobs set state = 'QUEUED' where id = ${job!.id}`;
    const text2 = await report(parentId);
    const refused = await ingestor
      .upload(
        UploadCorrectionsDocument,
        { fileId: parentId, file: null },
        { file: { body: text2.replace('n1,x', 'n1,1'), filename: 'c.csv', contentType: 'text/csv' } },
      )
      .catch((e: unknown) => e);
    expect(String(refused)).toMatch(/being loaded again/);
    expect(String(refused)).toMatch(/CONFLICT|QUEUED/);
    const [{ n }] = (await t.database.sql`select count(*)::int as n from files where corrects_file_id = ${parentId}`) as unknown as [{ n: number }];
    expect(n).toBe(1);
  });

  it('a fixed row whose key the parent already holds is a DUPLICATE_KEY of the corrections', async () => {
    const parentId = await uploadParent('date,school_id,present,note\n01/03/23,d1,1,\n01/03/23,d2,x,\n');
    const text = await report(parentId);
    const res = await correct(parentId, text.replace('d2,x', 'd1,2'));
    expect(res.last).toMatchObject({ state: 'FAILED', error: { code: 'ALL_ROWS_INVALID' } });
    expect(await errorLines(res.file.id)).toEqual([[3, 'DUPLICATE_KEY']]);
    expect((await fileOf(parentId)).rows).toEqual({ total: 2, valid: 1, invalid: 1 });
  });

  it('an idempotency key returns the first corrections upload; a key of another upload is a CONFLICT', async () => {
    const parentId = await uploadParent();
    const text = await report(parentId);
    const send = (key: string) =>
      ingestor.uploadRaw(UploadCorrectionsDocument, { fileId: parentId, file: null, idempotencyKey: key }, { file: { body: text, filename: 'c.csv' } });
    const first = await send('fix-1');
    const second = await send('fix-1');
    expect(first.body.data?.uploadCorrections.created, JSON.stringify(first.body)).toBe(true);
    expect(second.body.data?.uploadCorrections).toMatchObject({ created: false, file: { id: first.body.data!.uploadCorrections.file.id } });
    await ingestor.upload(
      UploadFileDocument,
      { program: 'state_prog', spec: 'visits', file: null, idempotencyKey: 'plain-1' },
      { file: { body: PARENT_CSV, filename: 'v.csv' } },
    );
    expect(codeOf((await send('plain-1')).body)).toBe('CONFLICT');
  });

  it('refuses corrections that cannot be put back, with stable codes, and changes nothing', async () => {
    const parentId = await uploadParent();
    const text = await report(parentId);
    const cases: Array<[string, string | Buffer, RegExp]> = [
      ['no _line column', text.replace(/^_line,/gm, '').replace(/^\d+,/gm, ''), /first column must be _line/],
      ['a _line that is not a number', text.replace('\n3,', '\nthree,'), /is not a line number/],
      ['lines out of order', text.replace('\n5,', '\n2,'), /out of order/],
      ['a line beyond the file', text.replace('\n12,', '\n99999999,'), /beyond the last line \(12\)/],
      ['no error_description column', text.replace(',error_description', ''), /error_description/],
      ['an unterminated quote', `${text}12,"${'a'.repeat(1_100_000)}`, /longer than 1048576 characters/],
    ];
    for (const [name, body, message] of cases) {
      const res = await correct(parentId, body);
      expect(res.last, name).toMatchObject({ state: 'FAILED', error: { code: 'CORRECTIONS_INVALID' } });
      expect(res.file.error?.message, name).toMatch(message);
      expect(await errorLines(res.file.id), name).toEqual([]);
    }
    // Not a CSV at all and a file with a wrong header: the usual refusals.
    expect((await correct(parentId, Buffer.from([0x50, 0x4b, 3, 4, 0, 0, 0, 0]))).last.error?.code).toBe('NOT_A_CSV');
    expect((await correct(parentId, '_line,date,error_description\n3,01/03/23,x\n')).last.error?.code).toBe('HEADER_INVALID');
    expect((await correct(parentId, Buffer.concat([Buffer.from(text.slice(0, 60)), Buffer.from([0xc3, 0x28]), Buffer.from('\n')]))).last.error?.code).toBe(
      'CORRECTIONS_INVALID',
    );
    expect((await fileOf(parentId)).rows).toEqual({ total: 9, valid: 5, invalid: 4 });

    const raw = (fileId: string) => ingestor.uploadRaw(UploadCorrectionsDocument, { fileId, file: null }, { file: { body: text, filename: 'c.csv' } });
    expect(codeOf((await raw('00000000-0000-4000-8000-000000000000')).body)).toBe('NOT_FOUND');
    expect(codeOf((await raw('not-a-uuid')).body)).toBe('NOT_FOUND');
    const clean = await uploadParent('date,school_id,present,note\n01/03/23,c1,1,\n');
    expect(codeOf((await raw(clean)).body)).toBe('CONFLICT');
    const failed = await uploadParent('nope\n1\n');
    expect(codeOf((await raw(failed)).body)).toBe('CONFLICT');
    const other = await t.clientWith(['INGESTOR']);
    expect(codeOf((await other.uploadRaw(UploadCorrectionsDocument, { fileId: parentId, file: null }, { file: { body: text, filename: 'c.csv' } })).body)).toBe(
      'NOT_FOUND',
    );
    const viewer = await t.clientWith(['VIEWER']);
    expect(
      codeOf((await viewer.uploadRaw(UploadCorrectionsDocument, { fileId: parentId, file: null }, { file: { body: text, filename: 'c.csv' } })).body),
    ).toBe('FORBIDDEN');

    const z = new yazl.ZipFile();
    z.addBuffer(Buffer.from('date,school_id,present,note\n01/03/23,z1,x,\n'), 'visits.csv');
    z.end();
    const chunks: Buffer[] = [];
    for await (const c of z.outputStream) chunks.push(c as Buffer);
    const { uploadNationalProgram: up } = await ingestor.upload(
      UploadNationalProgramDocument,
      { file: null },
      { file: { body: Buffer.concat(chunks), filename: 'v.zip' } },
    );
    await collectJobEvents(ingestor, up.job.id, { afterSeq: 0 });
    expect(codeOf((await raw(up.file.id)).body)).toBe('BAD_USER_INPUT');
    // A CSV of a ZIP is corrected like any file.
    const member = (await fileOf(up.file.id)).children[0]!;
    const fixed = (await report(member.id)).replace('z1,x', 'z1,1');
    expect((await correct(member.id, fixed)).last.state).toBe('SUCCEEDED');
    expect((await fileOf(member.id)).rows).toEqual({ total: 1, valid: 1, invalid: 0 });

    // A retry of the ZIP's job would make its CSVs again from the archive, over the corrected
    // row: refused while a CSV of it has corrections applied (its job made FAILED here, as a
    // crash past its attempts would leave it).
    await t.database.sql`update jobs set state = 'FAILED' where id = ${up.job.id}`;
    const retry = await ingestor.request(RetryJobDocument, { id: up.job.id }).catch((e: unknown) => e);
    expect(codeOf((retry as { response?: { errors?: [] } }).response ?? {}) ?? String(retry)).toMatch(/CONFLICT/);
    expect(String(retry)).toMatch(/CSVs of the ZIP/);
    const [{ state }] = (await t.database.sql`select state from jobs where id = ${up.job.id}`) as unknown as [{ state: string }];
    expect(state).toBe('FAILED');
    expect((await dataRows(member.id)).map((r) => r['school_id'])).toEqual(['z1']);
    expect((await fileOf(member.id)).rows).toEqual({ total: 1, valid: 1, invalid: 0 });
  });
});
