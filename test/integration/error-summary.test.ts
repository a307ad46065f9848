import { createHash } from 'node:crypto';
import yazl from 'yazl';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  FileDocument,
  ImportFileDocument,
  RegisterSpecDocument,
  RequestUploadUrlDocument,
  UploadFileDocument,
  UploadNationalProgramDocument,
  type SluiceClient,
} from '../../src/sdk/client';
import { codeOf, startTestApp, type TestApp } from '../helpers/app';
import { collectJobEvents, FAST_JOBS } from '../helpers/jobs';

/** `student` is sensitive: its values must never appear in the summary. */
const scoresSpec = {
  program: 'scores',
  input: {
    type: 'object',
    properties: {
      student: { type: 'string', shouldNotNull: true, pattern: '^stu_\\d+$', sensitive: true },
      school_id: { type: 'string', shouldNotNull: true, unique: true },
      score: { type: 'integer', minimum: 0, maximum: 100 },
    },
    required: ['student', 'school_id', 'score'],
  },
};

/**
 * 30 rows with score `x` first (so its count stays exact), then 500 rows each with a distinct bad
 * score, 7 with a bad (secret) student, 3 duplicate keys and one short row; 20 valid rows.
 */
function scoresCsv(): string {
  const lines = ['student,school_id,score'];
  let n = 0;
  for (let i = 0; i < 30; i++) lines.push(`stu_${++n},s${n},x`);
  for (let i = 0; i < 500; i++) lines.push(`stu_${++n},s${n},bad${i}`);
  for (let i = 0; i < 7; i++) lines.push(`SECRET-${i},s${++n},5`);
  for (let i = 0; i < 20; i++) lines.push(`stu_${++n},s${n},50`);
  for (let i = 0; i < 3; i++) lines.push(`stu_${n + 1 + i},s${n},60`);
  lines.push('stu_9999,s9999');
  return `${lines.join('\n')}\n`;
}

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

function zip(name: string, body: string): Promise<Buffer> {
  const z = new yazl.ZipFile();
  z.addBuffer(Buffer.from(body), name);
  z.end();
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    z.outputStream
      .on('data', (c: Buffer) => chunks.push(c))
      .on('end', () => resolve(Buffer.concat(chunks)))
      .on('error', reject);
  });
}

let t: TestApp;
let ingestor: SluiceClient;

beforeAll(async () => {
  t = await startTestApp({ ...FAST_JOBS });
  ingestor = await t.clientWith(['INGESTOR']);
  await t.admin.request(RegisterSpecDocument, { kind: 'EVENT', spec: scoresSpec });
});

async function fileAfterJob(jobId: string, fileId: string) {
  await collectJobEvents(ingestor, jobId, { afterSeq: 0 });
  return (await ingestor.request(FileDocument, { id: fileId })).file;
}

describe('file.errorSummary', () => {
  const csv = scoresCsv();

  it('is the same for a direct upload, a CSV in a ZIP and a signed-URL upload, bounded, with sensitive values masked', async () => {
    const { uploadFile } = await ingestor.upload(
      UploadFileDocument,
      { program: 'state_prog', spec: 'scores', file: null },
      { file: { body: csv, filename: 'scores.csv', contentType: 'text/csv' } },
    );
    const direct = await fileAfterJob(uploadFile.job.id, uploadFile.file.id);
    expect(direct.state).toBe('SUCCEEDED_WITH_ERRORS');
    expect(direct.rows).toEqual({ total: 561, valid: 20, invalid: 541 });

    const { uploadNationalProgram } = await ingestor.upload(
      UploadNationalProgramDocument,
      { file: null },
      { file: { body: await zip('scores.csv', csv), filename: 'scores.zip' } },
    );
    const zipFile = await fileAfterJob(uploadNationalProgram.job.id, uploadNationalProgram.file.id);
    const member = zipFile.children.find((c) => c.fileName === 'scores.csv')!;
    expect(member.rows).toEqual(direct.rows);

    const { requestUploadUrl: u } = await ingestor.request(RequestUploadUrlDocument, {
      input: { fileName: 'scores.csv', program: 'state_prog', spec: 'scores', size: Buffer.byteLength(csv), sha256: sha256(csv) },
    });
    const put = await fetch(u.url, { method: 'PUT', headers: Object.fromEntries(u.headers.map((h) => [h.name, h.value])), body: csv });
    expect(put.status, await put.text()).toBe(200);
    const { importFile } = await ingestor.request(ImportFileDocument, { fileId: u.fileId, mode: 'ASYNC' });
    const signed = await fileAfterJob(importFile.job.id, u.fileId);

    const s = direct.errorSummary!;
    // A file's analytics are read one file at a time (the `file` query), the ZIP member's too.
    const { file: memberFile } = await ingestor.request(FileDocument, { id: member.id });
    expect(memberFile.errorSummary).toEqual(s);
    expect(signed.errorSummary).toEqual(s);
    // A ZIP of one CSV sums to that CSV's summary.
    expect(zipFile.errorSummary).toEqual(s);

    expect(s.total).toBe(541);
    expect(s.byCode).toEqual([
      { code: 'NOT_AN_INTEGER', count: 530 },
      { code: 'PATTERN_MISMATCH', count: 7 },
      { code: 'DUPLICATE_KEY', count: 3 },
      { code: 'WRONG_FIELD_COUNT', count: 1 },
    ]);
    const score = s.byColumn.find((c) => c.column === 'score')!;
    expect(score).toMatchObject({ count: 530, byCode: [{ code: 'NOT_AN_INTEGER', count: 530 }] });
    // 501 distinct bad values, 10 shown: bounded, and the frequent one is first with its exact count.
    expect(score.topValues).toHaveLength(10);
    expect(score.topValues[0]).toEqual({ value: 'x', count: 30 });
    const student = s.byColumn.find((c) => c.column === 'student')!;
    expect(student).toEqual({ column: 'student', count: 7, byCode: [{ code: 'PATTERN_MISMATCH', count: 7 }], topValues: [{ value: '••••', count: 7 }] });
    expect(JSON.stringify(s)).not.toContain('SECRET');
    const key = s.byColumn.find((c) => c.column === 'school_id')!;
    expect(key).toMatchObject({ count: 3, byCode: [{ code: 'DUPLICATE_KEY', count: 3 }] });
    expect(key.topValues[0]!.count).toBe(3);
    expect(s.byColumn.map((c) => c.column).sort()).toEqual(['school_id', 'score', 'student']);
  });

  it('sensitive is a spec keyword that takes true or false only', async () => {
    const res = await t.admin.raw(RegisterSpecDocument, {
      kind: 'EVENT',
      spec: { program: 'p', input: { type: 'object', properties: { a: { type: 'string', sensitive: 'yes' } }, required: [] } },
    });
    expect(codeOf(res.body), JSON.stringify(res.body)).toBe('BAD_USER_INPUT');
    const problems = res.body.errors![0]!.extensions!['problems'] as Array<{ path: string; message: string }>;
    expect(problems).toContainEqual(
      expect.objectContaining({ path: '/input/properties/a/sensitive', message: 'sensitive must be true or false, got string "yes"' }),
    );
  });

  it('counts nothing for a clean file and is null for a file refused before its rows', async () => {
    const { uploadFile: clean } = await ingestor.upload(
      UploadFileDocument,
      { program: 'state_prog', spec: 'scores', file: null },
      { file: { body: 'student,school_id,score\nstu_1,c1,1\n', filename: 'clean.csv' } },
    );
    expect((await fileAfterJob(clean.job.id, clean.file.id)).errorSummary).toEqual({ total: 0, byCode: [], byColumn: [] });
    const { uploadFile: bad } = await ingestor.upload(
      UploadFileDocument,
      { program: 'state_prog', spec: 'scores', file: null },
      { file: { body: 'nope\n1\n', filename: 'bad.csv' } },
    );
    const refused = await fileAfterJob(bad.job.id, bad.file.id);
    expect(refused.error?.code).toBe('HEADER_INVALID');
    expect(refused.errorSummary).toBeNull();
  });
});
