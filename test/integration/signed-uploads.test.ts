import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { text } from 'node:stream/consumers';
import yazl from 'yazl';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ImportFileDocument,
  RegisterSpecDocument,
  RequestUploadUrlDocument,
  RetryJobDocument,
  SignedUploadFileDocument,
  UploadFileDocument,
  type RequestUploadUrlInput,
  type SluiceClient,
} from '../../src/sdk/client';
import { codeOf, startTestApp, type TestApp } from '../helpers/app';
import { attendanceSpec } from '../helpers/attendance';
import { collectJobEvents, FAST_JOBS } from '../helpers/jobs';
import { startTestS3, type TestS3 } from '../helpers/s3';

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

const GOOD_CSV = 'date,school_id,present\n01/03/23,s1,10\n02/03/23,s2,12\n';
const MIXED_CSV = 'date,school_id,present\n01/03/23,m1,10\nnot-a-date,m2,12\n';

/** No background sweeps: the tests run them when they want to. */
const NO_TIMERS = { SLUICE_UPLOAD_SWEEP_INTERVAL_MS: '0', SLUICE_ORPHAN_SWEEP_INTERVAL_MS: '0' };

function zip(entries: Array<{ name: string; body: string | Buffer }>): Promise<Buffer> {
  const z = new yazl.ZipFile();
  for (const e of entries) z.addBuffer(Buffer.from(e.body), e.name);
  z.end();
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    z.outputStream
      .on('data', (c: Buffer) => chunks.push(c))
      .on('end', () => resolve(Buffer.concat(chunks)))
      .on('error', reject);
  });
}

type UploadUrl = Awaited<ReturnType<typeof request>>;

async function request(client: SluiceClient, body: string | Buffer, input: Partial<RequestUploadUrlInput> = {}) {
  const { requestUploadUrl } = await client.request(RequestUploadUrlDocument, {
    input: { fileName: 'attendance.csv', program: 'state_prog', spec: 'attendance', size: Buffer.byteLength(body), sha256: sha256(body), ...input },
  });
  return requestUploadUrl;
}

/** Step 2 as a client does it: PUT the bytes to the URL with the headers it came with. */
async function put(u: Pick<UploadUrl, 'url' | 'headers'>, body: string | Buffer, url = u.url) {
  const res = await fetch(url, { method: 'PUT', headers: Object.fromEntries(u.headers.map((h) => [h.name, h.value])), body });
  const raw = await res.text();
  let json: { errors?: Array<{ message: string; extensions: { code: string; reason?: string } }>; state?: string; size?: number; sha256?: string } = {};
  try {
    json = raw ? JSON.parse(raw) : {};
  } catch {
    // S3 answers in XML.
  }
  return { status: res.status, json, raw };
}

const reasonOf = (body: { errors?: ReadonlyArray<{ extensions?: Record<string, unknown> }> }) => body.errors?.[0]?.extensions?.['reason'];

async function fileState(client: SluiceClient, id: string) {
  return (await client.request(SignedUploadFileDocument, { id })).file;
}

interface Backend {
  name: 'local' | 's3';
  /** Storage settings for a test app; each app gets a bucket of its own, so sweeps see only its objects. */
  env: (bucket: string) => Promise<Record<string, string>>;
}

let s3: TestS3;

beforeAll(async () => {
  s3 = await startTestS3();
});

afterAll(async () => {
  await s3?.close();
});

const backends: Backend[] = [
  { name: 'local', env: async () => ({}) },
  { name: 's3', env: (bucket) => s3.withBucket(bucket) },
];

describe.each(backends)('signed-URL uploads on $name storage', (backend) => {
  let t: TestApp;
  let ingestor: SluiceClient;

  beforeAll(async () => {
    t = await startTestApp({ ...FAST_JOBS, ...NO_TIMERS, ...(await backend.env('sluice-flow')), SLUICE_MAX_FILE_SIZE_BYTES: String(1024 * 1024) });
    ingestor = await t.clientWith(['INGESTOR']);
    await t.admin.request(RegisterSpecDocument, { kind: 'EVENT', spec: attendanceSpec });
  });

  const storage = () => t.app.services.storage;

  it('runs the three steps: request a URL, PUT the bytes, import (ASYNC), and shows every state', async () => {
    const u = await request(ingestor, GOOD_CSV, { folder: 'reports/2023', tags: ['march', 'state'], metadata: { source: 'test' } });
    expect(u).toMatchObject({
      method: 'PUT',
      created: true,
      file: {
        state: 'PENDING_UPLOAD',
        finished: false,
        declaredSize: GOOD_CSV.length,
        declaredSha256: sha256(GOOD_CSV),
        folder: 'reports/2023',
        tags: ['march', 'state'],
        metadata: { source: 'test' },
      },
    });
    expect(u.headers).toContainEqual({ name: 'content-type', value: 'text/csv' });
    expect(new Date(u.expiresAt).getTime() - Date.now()).toBeGreaterThan(14 * 60 * 1000);
    if (backend.name === 'local') expect(u.url).toMatch(new RegExp(`^${t.url}/uploads/${u.fileId}\\?token=\\d+\\.[A-Za-z0-9_-]{43}$`));
    else
      expect(u.url).toMatch(
        new RegExp(`^${s3.endpoint}/${t.env['SLUICE_S3_BUCKET']}/uploads/\\d{4}-\\d{2}-\\d{2}/${u.fileId}/attendance\\.csv\\?.*X-Amz-Signature=`),
      );
    expect((await fileState(ingestor, u.fileId)).state).toBe('PENDING_UPLOAD');

    const res = await put(u, GOOD_CSV);
    expect(res.status, res.raw).toBe(200);
    if (backend.name === 'local') expect(res.json).toEqual({ fileId: u.fileId, state: 'UPLOADED', size: GOOD_CSV.length, sha256: sha256(GOOD_CSV) });
    const uploaded = await fileState(ingestor, u.fileId);
    expect(uploaded).toMatchObject({ state: 'UPLOADED', finished: false, job: null });
    expect(uploaded.uploadedAt).not.toBeNull();

    const { importFile } = await ingestor.request(ImportFileDocument, { fileId: u.fileId, mode: 'ASYNC' });
    expect(importFile).toMatchObject({
      created: true,
      file: { state: 'QUEUED', size: GOOD_CSV.length, sha256: sha256(GOOD_CSV) },
      job: { type: 'cqube.ingest-file' },
    });
    const events = await collectJobEvents(ingestor, importFile.job.id, { afterSeq: 0 });
    expect(events.at(-1)).toMatchObject({ state: 'SUCCEEDED', progress: { total: 2, succeeded: 2 } });
    const done = await fileState(ingestor, u.fileId);
    expect(done).toMatchObject({ state: 'SUCCEEDED', finished: true, rows: { total: 2, valid: 2, invalid: 0 }, error: null });

    // Raw upload and output live in the configured store.
    expect(await text(await storage().get(done.outputs.raw!))).toBe(GOOD_CSV);
    expect(done.outputs.valid).toMatch(/^process_input\/state_prog\/\d{2}-[A-Z][a-z]{2}-\d{4}\/attendance-event(\.[0-9a-f-]+)?\.data\.csv$/);
    expect(await text(await storage().get(done.outputs.valid!))).toContain('s2');
    if (backend.name === 's3') {
      const inBucket = await s3.keys('', t.env['SLUICE_S3_BUCKET']);
      expect(inBucket).toEqual(expect.arrayContaining([done.outputs.raw, done.outputs.valid]));
    }
  });

  it('imports SYNC: waits for the job and returns the outcome, with invalid rows under ingestion_error/', async () => {
    const u = await request(ingestor, MIXED_CSV);
    expect((await put(u, MIXED_CSV)).status).toBe(200);
    const { importFile } = await ingestor.request(ImportFileDocument, { fileId: u.fileId, mode: 'SYNC' });
    expect(importFile).toMatchObject({
      created: true,
      finished: true,
      job: { state: 'SUCCEEDED_WITH_ERRORS' },
      file: { state: 'SUCCEEDED_WITH_ERRORS', rows: { total: 2, valid: 1, invalid: 1 } },
    });
    expect(importFile.file.outputs.errors).toMatch(/^ingestion_error\/state_prog\/\d{2}-[A-Z][a-z]{2}-\d{4}\/state_prog_[0-9a-f-]+_errors\.csv$/);
    expect(await text(await storage().get(importFile.file.outputs.errors!))).toContain('not-a-date');
  });

  it('imports a national program ZIP; outputs under emission/ and emission-error/', async () => {
    const body = await zip([{ name: 'attendance.csv', body: 'date,school_id,present\n01/03/23,z1,10\nbad,z2,1\n' }]);
    const u = await request(ingestor, body, { kind: 'ZIP', program: null, spec: null, fileName: 'attendance.zip' });
    expect(u.headers).toContainEqual({ name: 'content-type', value: 'application/zip' });
    expect((await put(u, body)).status).toBe(200);
    const { importFile } = await ingestor.request(ImportFileDocument, { fileId: u.fileId, mode: 'SYNC' });
    expect(importFile).toMatchObject({ finished: true, job: { type: 'cqube.ingest-national-zip', state: 'SUCCEEDED_WITH_ERRORS' } });
    const child = (await t.database.sql`select valid_output_key, error_output_key from files where parent_id = ${u.fileId}`)[0]!;
    expect(child['valid_output_key']).toMatch(/^emission\/\d{2}-[A-Z][a-z]{2}-\d{4}\/attendance(\.[0-9a-f-]+)?\.csv$/);
    expect(child['error_output_key']).toMatch(/^emission-error\/\d{2}-[A-Z][a-z]{2}-\d{4}\/attendance_[0-9a-f-]+_errors\.csv$/);
    expect(await text(await storage().get(child['valid_output_key'] as string))).toContain('z1');
    expect(await text(await storage().get(child['error_output_key'] as string))).toContain('bad');
  });

  it('imports with a named encoding and a detected delimiter; every CSV of a ZIP is read so, and reports its dialect', async () => {
    const member = Buffer.concat([Buffer.from('date;school_id;present\r\n01/03/23;caf'), Buffer.from([0xe9]), Buffer.from(';10\r\n')]);
    const body = await zip([{ name: 'attendance.csv', body: member }]);
    const u = await request(ingestor, body, { kind: 'ZIP', program: null, spec: null, fileName: 'attendance.zip' });
    expect((await put(u, body)).status).toBe(200);
    const { importFile } = await ingestor.request(ImportFileDocument, { fileId: u.fileId, mode: 'SYNC', encoding: 'WINDOWS_1252' });
    expect(importFile).toMatchObject({ finished: true, job: { state: 'SUCCEEDED' } });
    const child = (await t.database.sql`select valid_output_key, dialect from files where parent_id = ${u.fileId}`)[0]!;
    expect(child['dialect']).toEqual({
      requested: { encoding: 'WINDOWS_1252' },
      detected: { delimiter: ';', encoding: 'WINDOWS_1252', bom: false, lineEnding: 'CRLF' },
    });
    // The valid-rows file is UTF-8 with commas.
    expect(await text(await storage().get(child['valid_output_key'] as string))).toBe('date,school_id,present\n01/03/23,café,10\n');
  });

  it('issues a ZIP URL when program and spec are left out, not only when they are null (as `sluice import-url x.zip` sends it)', async () => {
    const body = await zip([{ name: 'attendance.csv', body: 'date,school_id,present\n01/03/23,o1,10\n' }]);
    // Omitted keys arrive as undefined, which the database driver refused: a masked INTERNAL_SERVER_ERROR.
    const res = await ingestor.raw(RequestUploadUrlDocument, {
      input: { fileName: 'omitted.zip', kind: 'ZIP', size: body.length, sha256: sha256(body) },
    });
    expect(res.body.errors, JSON.stringify(res.body)).toBeUndefined();
    const u = res.body.data!.requestUploadUrl;
    expect((await put(u, body)).status).toBe(200);
    const { importFile } = await ingestor.request(ImportFileDocument, { fileId: u.fileId, mode: 'SYNC' });
    expect(importFile).toMatchObject({ finished: true, job: { state: 'SUCCEEDED' } });
  });

  it('serves direct uploads (uploadFile) from the same storage, and refuses to import them again', async () => {
    const body = GOOD_CSV.replace('s1', 'u1').replace('s2', 'u2');
    const { uploadFile } = await ingestor.upload(
      UploadFileDocument,
      { program: 'state_prog', spec: 'attendance', file: null },
      { file: { body, filename: 'direct.csv', contentType: 'text/csv' } },
    );
    expect((await collectJobEvents(ingestor, uploadFile.job.id, { afterSeq: 0 })).at(-1)).toMatchObject({ state: 'SUCCEEDED' });
    expect(await storage().head(uploadFile.file.outputs.raw!)).toMatchObject({ size: body.length, sha256: sha256(body) });
    const res = await ingestor.raw(ImportFileDocument, { fileId: uploadFile.file.id });
    expect(codeOf(res.body)).toBe('CONFLICT');
    expect(reasonOf(res.body)).toBe('NOT_A_SIGNED_UPLOAD');
  });

  it('refuses an import before the upload, and imports once it has arrived', async () => {
    const u = await request(ingestor, GOOD_CSV.replace('s1', 'b1'));
    const early = await ingestor.raw(ImportFileDocument, { fileId: u.fileId });
    expect(codeOf(early.body), JSON.stringify(early.body)).toBe('CONFLICT');
    expect(reasonOf(early.body)).toBe('NOT_UPLOADED');
    expect(early.body.errors![0]!.message).toMatch(/has not been uploaded yet/);
    expect((await fileState(ingestor, u.fileId)).state).toBe('PENDING_UPLOAD');
    expect((await put(u, GOOD_CSV.replace('s1', 'b1'))).status).toBe(200);
    expect((await ingestor.request(ImportFileDocument, { fileId: u.fileId, mode: 'SYNC' })).importFile.job.state).toBe('SUCCEEDED');
  });

  it('imports a file once: a second import returns the same job', async () => {
    const body = GOOD_CSV.replace('s1', 'd1').replace('s2', 'd2');
    const u = await request(ingestor, body);
    expect((await put(u, body)).status).toBe(200);
    const [a, b] = await Promise.all([ingestor.request(ImportFileDocument, { fileId: u.fileId }), ingestor.request(ImportFileDocument, { fileId: u.fileId })]);
    expect(a.importFile.job.id).toBe(b.importFile.job.id);
    expect([a.importFile.created, b.importFile.created].sort()).toEqual([false, true]);
    await collectJobEvents(ingestor, a.importFile.job.id, { afterSeq: 0 });
    const again = await ingestor.request(ImportFileDocument, { fileId: u.fileId, mode: 'SYNC' });
    expect(again.importFile).toMatchObject({ created: false, finished: true, job: { id: a.importFile.job.id, state: 'SUCCEEDED' } });
    const jobs = await t.database.sql`select count(*)::int as n from jobs where input->>'fileId' = ${u.fileId}`;
    expect(jobs[0]!['n']).toBe(1);
  });

  it('refuses a body whose SHA-256 is not the declared one; the right bytes to the same URL are then accepted', async () => {
    const u = await request(ingestor, GOOD_CSV);
    const wrong = GOOD_CSV.replace('s1', 'x1'); // same size, other content
    if (backend.name === 'local') {
      const res = await put(u, wrong);
      expect(res.status, res.raw).toBe(400);
      expect(res.json.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'CHECKSUM_MISMATCH' });
      expect(await storage().head((await fileState(ingestor, u.fileId)).outputs.raw!)).toBeUndefined();
    } else {
      // s3rver does not check the signed x-amz-checksum-sha256 (AWS S3 would refuse the PUT): the import must.
      expect((await put(u, wrong)).status).toBe(200);
      const res = await ingestor.raw(ImportFileDocument, { fileId: u.fileId });
      expect(codeOf(res.body), JSON.stringify(res.body)).toBe('BAD_USER_INPUT');
      expect(reasonOf(res.body)).toBe('CHECKSUM_MISMATCH');
      expect(res.body.errors![0]!.message).toContain(sha256(wrong));
    }
    expect(await fileState(ingestor, u.fileId)).toMatchObject({ state: 'PENDING_UPLOAD', job: null, error: { code: 'CHECKSUM_MISMATCH' } });
    expect((await put(u, GOOD_CSV)).status).toBe(200);
    const { importFile } = await ingestor.request(ImportFileDocument, { fileId: u.fileId, mode: 'SYNC' });
    expect(importFile).toMatchObject({ finished: true, file: { error: null, sha256: sha256(GOOD_CSV) } });
  });

  /** Changes a stored object behind Sluice's back: a flipped bit on disk, or a rewrite in the bucket. */
  async function tamper(key: string, change: (b: Buffer) => Buffer): Promise<void> {
    if (backend.name === 'local') {
      const file = path.join(t.dataDir, 'storage', key);
      await fs.writeFile(file, change(await fs.readFile(file)));
      return;
    }
    const Bucket = t.env['SLUICE_S3_BUCKET']!;
    const got = await s3.client.send(new GetObjectCommand({ Bucket, Key: key }));
    const body = Buffer.from(await got.Body!.transformToByteArray());
    await s3.client.send(new PutObjectCommand({ Bucket, Key: key, Body: change(body) }));
  }

  /** Marks a finished job FAILED (as a lost worker would) and retries it: the worker reads the stored object again. */
  async function failAndRetry(jobId: string) {
    const before = (await collectJobEvents(ingestor, jobId, { afterSeq: 0 })).at(-1)!.seq;
    await t.database.sql`update jobs set state = 'FAILED', error = ${t.database.sql.json({ code: 'WORKER_LOST', message: 'test' })} where id = ${jobId}`;
    await t.admin.request(RetryJobDocument, { id: jobId });
    return (await collectJobEvents(ingestor, jobId, { afterSeq: before })).at(-1)!;
  }

  const flipDigit = (b: Buffer) => Buffer.from(b.toString().replace(',10', ',19'));

  it('fails the job with STORAGE_CORRUPT and keeps no row when the stored CSV changes after the import', async () => {
    const body = GOOD_CSV.replace('s1', 'k1').replace('s2', 'k2');
    const u = await request(ingestor, body);
    expect((await put(u, body)).status).toBe(200);
    const { importFile } = await ingestor.request(ImportFileDocument, { fileId: u.fileId, mode: 'SYNC' });
    expect(importFile).toMatchObject({ finished: true, file: { state: 'SUCCEEDED', rows: { valid: 2 } } });
    const rows = async () => (await t.database.sql`select count(*)::int as n from ds_attendance_v1 where _file_id = ${u.fileId}`)[0]!['n'];
    expect(await rows()).toBe(2);

    await tamper(importFile.file.outputs.raw!, flipDigit);
    expect(await failAndRetry(importFile.job.id)).toMatchObject({ state: 'FAILED', error: { code: 'STORAGE_CORRUPT' } });
    expect(await fileState(ingestor, u.fileId)).toMatchObject({ state: 'FAILED', rows: { valid: 0 }, error: { code: 'STORAGE_CORRUPT' } });
    expect(await rows()).toBe(0);
  });

  it('fails the job with STORAGE_CORRUPT when the stored ZIP changes after the import', async () => {
    const body = await zip([{ name: 'attendance.csv', body: 'date,school_id,present\n01/03/23,kz1,10\n' }]);
    const u = await request(ingestor, body, { kind: 'ZIP', program: null, spec: null, fileName: 'attendance.zip' });
    expect((await put(u, body)).status).toBe(200);
    const { importFile } = await ingestor.request(ImportFileDocument, { fileId: u.fileId, mode: 'SYNC' });
    expect(importFile).toMatchObject({ finished: true, job: { state: 'SUCCEEDED' } });

    await tamper(importFile.file.outputs.raw!, (b) => Buffer.concat([b, Buffer.from('trailing')]));
    expect(await failAndRetry(importFile.job.id)).toMatchObject({ state: 'FAILED', error: { code: 'STORAGE_CORRUPT' } });
    const children = await t.database.sql`select id from files where parent_id = ${u.fileId}`;
    expect(children).toHaveLength(0);
    expect(await t.database.sql`select 1 from ds_attendance_v1 where school_id = 'kz1'`).toHaveLength(0);
  });

  if (backend.name === 'local') {
    it('fails the job with STORAGE_CORRUPT when the stored bytes change between the PUT and the import', async () => {
      const body = GOOD_CSV.replace('s1', 'j1').replace('s2', 'j2');
      const u = await request(ingestor, body);
      expect((await put(u, body)).status).toBe(200);
      await tamper((await fileState(ingestor, u.fileId)).outputs.raw!, flipDigit);
      // The import trusts the SHA-256 Sluice computed while the PUT arrived; the job checks the bytes it reads.
      const { importFile } = await ingestor.request(ImportFileDocument, { fileId: u.fileId, mode: 'SYNC' });
      expect(importFile).toMatchObject({ finished: true, job: { state: 'FAILED', error: { code: 'STORAGE_CORRUPT' } }, file: { rows: { valid: 0 } } });
      expect(await t.database.sql`select 1 from ds_attendance_v1 where _file_id = ${u.fileId}`).toHaveLength(0);
    });
  }

  it('refuses a body whose size is not the declared one', async () => {
    const u = await request(ingestor, GOOD_CSV);
    const longer = `${GOOD_CSV}03/03/23,s3,1\n`;
    if (backend.name === 'local') {
      const res = await put(u, longer);
      expect(res.status, res.raw).toBe(400);
      expect(res.json.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'SIZE_MISMATCH' });
      expect(res.json.errors![0]!.message).toContain(`${GOOD_CSV.length} bytes`);
    } else {
      // A presigned PUT is not capped by s3rver (AWS S3 checks the signed Content-Length): the import enforces the size.
      expect((await put(u, longer)).status).toBe(200);
      const res = await ingestor.raw(ImportFileDocument, { fileId: u.fileId });
      expect(codeOf(res.body), JSON.stringify(res.body)).toBe('BAD_USER_INPUT');
      expect(reasonOf(res.body)).toBe('SIZE_MISMATCH');
      expect(res.body.errors![0]!.message).toMatch(new RegExp(`has ${longer.length} bytes, but ${GOOD_CSV.length} bytes were declared`));
    }
    expect(await fileState(ingestor, u.fileId)).toMatchObject({ state: 'PENDING_UPLOAD', error: { code: 'SIZE_MISMATCH' } });
  });

  it('returns the same file and URL for a repeated idempotency key', async () => {
    const key = `idem-${randomUUID()}`;
    const a = await request(ingestor, GOOD_CSV, { idempotencyKey: key });
    const b = await request(ingestor, GOOD_CSV, { idempotencyKey: key });
    expect(b).toMatchObject({ fileId: a.fileId, expiresAt: a.expiresAt, created: false });
    if (backend.name === 'local') expect(b.url).toBe(a.url);
    expect((await put(b, GOOD_CSV)).status).toBe(200);
    const c = await ingestor.raw(RequestUploadUrlDocument, {
      input: { fileName: 'a.csv', program: 'state_prog', spec: 'attendance', size: 1, sha256: sha256('x'), idempotencyKey: key },
    });
    expect(codeOf(c.body), JSON.stringify(c.body)).toBe('CONFLICT');
    expect(reasonOf(c.body)).toBe('IDEMPOTENCY_KEY_USED');
  });

  it('validates the declaration', async () => {
    const cases: Array<[Partial<RequestUploadUrlInput>, string, string]> = [
      [{ sha256: 'abc' }, 'BAD_USER_INPUT', 'sha256'],
      [{ size: -1 }, 'BAD_USER_INPUT', 'size'],
      [{ size: 2 * 1024 * 1024 }, 'PAYLOAD_TOO_LARGE', 'size'],
      [{ fileName: '' }, 'BAD_USER_INPUT', 'fileName'],
      [{ program: 'Bad Program' }, 'BAD_USER_INPUT', 'program'],
      [{ folder: '../etc' }, 'BAD_USER_INPUT', 'folder'],
      [{ tags: ['ok', 'not ok'] }, 'BAD_USER_INPUT', 'tags'],
      [{ metadata: [1, 2] }, 'BAD_USER_INPUT', 'metadata'],
      [{ metadata: { big: 'x'.repeat(5000) } }, 'BAD_USER_INPUT', 'metadata'],
      [{ contentType: 'not a type' }, 'BAD_USER_INPUT', 'contentType'],
      [{ kind: 'ZIP' }, 'BAD_USER_INPUT', 'program'],
      [{ spec: 'no_such_spec' }, 'NOT_FOUND', ''],
    ];
    for (const [input, code, field] of cases) {
      const res = await ingestor.raw(RequestUploadUrlDocument, {
        input: { fileName: 'a.csv', program: 'state_prog', spec: 'attendance', size: 1, sha256: sha256('x'), ...input },
      });
      expect(codeOf(res.body), `${JSON.stringify(input)} -> ${JSON.stringify(res.body)}`).toBe(code);
      if (field) expect(res.body.errors![0]!.extensions!['field'], JSON.stringify(res.body)).toBe(field);
    }
    const viewer = await t.clientWith(['VIEWER']);
    const res = await viewer.raw(RequestUploadUrlDocument, {
      input: { fileName: 'a.csv', program: 'state_prog', spec: 'attendance', size: 1, sha256: sha256('x') },
    });
    expect(codeOf(res.body)).toBe('FORBIDDEN');
  });

  it('keeps files private: another client can neither see nor import them', async () => {
    const u = await request(ingestor, GOOD_CSV);
    const other = await t.clientWith(['INGESTOR']);
    const res = await other.raw(ImportFileDocument, { fileId: u.fileId });
    expect(codeOf(res.body)).toBe('NOT_FOUND');
    expect(codeOf((await other.raw(ImportFileDocument, { fileId: 'not-a-uuid' })).body)).toBe('NOT_FOUND');
  });
});

describe('Sluice’s own upload URLs (local storage)', () => {
  let t: TestApp;
  let ingestor: SluiceClient;

  beforeAll(async () => {
    t = await startTestApp({ ...FAST_JOBS, ...NO_TIMERS });
    ingestor = await t.clientWith(['INGESTOR']);
    await t.admin.request(RegisterSpecDocument, { kind: 'EVENT', spec: attendanceSpec });
  });

  it('refuses a tampered token, a changed expiry and another file’s id, naming the reason', async () => {
    const a = await request(ingestor, GOOD_CSV);
    const b = await request(ingestor, GOOD_CSV);
    const token = new URL(a.url).searchParams.get('token')!;
    const [exp, mac] = token.split('.') as [string, string];
    const flipped = `${exp}.${mac[0] === 'A' ? 'B' : 'A'}${mac.slice(1)}`;
    const tampered = [
      `${t.url}/uploads/${a.fileId}?token=${flipped}`,
      `${t.url}/uploads/${a.fileId}?token=${Number(exp) + 3600}.${mac}`,
      `${t.url}/uploads/${b.fileId}?token=${token}`,
      `${t.url}/uploads/${a.fileId}`,
      `${t.url}/uploads/${a.fileId}?token=garbage`,
    ];
    for (const url of tampered) {
      const res = await put(a, GOOD_CSV, url);
      expect(res.status, `${url}: ${res.raw}`).toBe(403);
      expect(res.json.errors![0]!.extensions).toEqual({ code: 'FORBIDDEN', reason: 'UPLOAD_URL_INVALID' });
      expect(res.json.errors![0]!.message).toMatch(/not valid/);
    }
    // Nothing was claimed or stored: the genuine URLs still work.
    expect((await fileState(ingestor, a.fileId)).state).toBe('PENDING_UPLOAD');
    expect((await put(a, GOOD_CSV)).status).toBe(200);
    expect((await put(b, GOOD_CSV)).status).toBe(200);
  });

  it('refuses a URL used twice', async () => {
    const u = await request(ingestor, GOOD_CSV);
    expect((await put(u, GOOD_CSV)).status).toBe(200);
    const again = await put(u, GOOD_CSV);
    expect(again.status, again.raw).toBe(409);
    expect(again.json.errors![0]!.extensions).toEqual({ code: 'CONFLICT', reason: 'UPLOAD_URL_USED' });
  });

  it('lets exactly one of two concurrent PUTs to the same URL through', async () => {
    const u = await request(ingestor, GOOD_CSV);
    const results = await Promise.all([put(u, GOOD_CSV), put(u, GOOD_CSV)]);
    expect(results.map((r) => r.status).sort()).toEqual([200, 409]);
    expect(results.find((r) => r.status === 409)!.json.errors![0]!.extensions.reason).toMatch(/^UPLOAD_(URL_USED|IN_PROGRESS)$/);
  });

  it('answers an unknown file id with 404', async () => {
    const res = await put({ url: '', headers: [] }, 'x', `${t.url}/uploads/not-a-uuid?token=1.${'A'.repeat(43)}`);
    expect(res.status).toBe(404);
    expect(res.json.errors![0]!.extensions.code).toBe('NOT_FOUND');
  });
});

describe('brute force on Sluice’s own upload URLs', () => {
  let t: TestApp;
  let ingestor: SluiceClient;

  beforeAll(async () => {
    // Addresses come from X-Forwarded-For (one trusted proxy), so one test machine can be many callers.
    t = await startTestApp({ ...FAST_JOBS, ...NO_TIMERS, SLUICE_AUTH_MAX_FAILURES_PER_MINUTE: '3', SLUICE_TRUST_PROXY_HOPS: '1' });
    ingestor = await t.clientWith(['INGESTOR']);
    await t.admin.request(RegisterSpecDocument, { kind: 'EVENT', spec: attendanceSpec });
  });

  async function putFrom(address: string, u: UploadUrl, url: string) {
    const res = await fetch(url, {
      method: 'PUT',
      headers: { ...Object.fromEntries(u.headers.map((h) => [h.name, h.value])), 'x-forwarded-for': address },
      body: GOOD_CSV,
    });
    const json = (await res.json()) as { errors?: Array<{ message: string; extensions: Record<string, unknown> }> };
    return { status: res.status, retryAfter: res.headers.get('retry-after'), json };
  }

  const forged = (u: UploadUrl) => {
    const [exp] = new URL(u.url).searchParams.get('token')!.split('.') as [string];
    return `${u.url.split('?')[0]}?token=${exp}.${'A'.repeat(43)}`;
  };

  it('answers 429 RATE_LIMITED with Retry-After once an address has sent too many bad tokens, before checking the token', async () => {
    const files = await Promise.all([0, 1, 2, 3].map(() => request(ingestor, GOOD_CSV)));
    for (const f of files.slice(0, 3)) expect((await putFrom('198.51.100.1', f, forged(f))).status).toBe(403);
    const limited = await putFrom('198.51.100.1', files[3]!, files[3]!.url);
    expect(limited.status, JSON.stringify(limited.json)).toBe(429);
    expect(limited.json.errors![0]!.extensions).toEqual({ code: 'RATE_LIMITED', retryAfterSeconds: expect.any(Number) });
    const after = limited.json.errors![0]!.extensions['retryAfterSeconds'] as number;
    expect(after).toBeGreaterThanOrEqual(1);
    expect(after).toBeLessThanOrEqual(60);
    expect(limited.retryAfter).toBe(String(after));
    // Nothing was claimed: the genuine URL works from another address.
    expect((await fileState(ingestor, files[3]!.fileId)).state).toBe('PENDING_UPLOAD');
    expect((await putFrom('198.51.100.2', files[3]!, files[3]!.url)).status).toBe(200);
  });

  it('limits guesses at one file’s token from many addresses', async () => {
    const f = await request(ingestor, GOOD_CSV);
    for (let i = 0; i < 3; i++) expect((await putFrom(`203.0.113.${i + 1}`, f, forged(f))).status).toBe(403);
    const limited = await putFrom('203.0.113.99', f, forged(f));
    expect(limited.status, JSON.stringify(limited.json)).toBe(429);
    expect(limited.json.errors![0]!.extensions['code']).toBe('RATE_LIMITED');
  });
});

describe.each(backends)('expiry and sweeps on $name storage', (backend) => {
  let t: TestApp;
  let ingestor: SluiceClient;

  beforeAll(async () => {
    // URLs live 1 s, files expire as soon as their URL has: the tests drive the sweeps directly.
    t = await startTestApp({
      ...FAST_JOBS,
      ...NO_TIMERS,
      ...(await backend.env('sluice-sweeps')),
      SLUICE_UPLOAD_URL_TTL_SECONDS: '1',
      SLUICE_UPLOAD_EXPIRY_GRACE_SECONDS: '0',
    });
    ingestor = await t.clientWith(['INGESTOR']);
    await t.admin.request(RegisterSpecDocument, { kind: 'EVENT', spec: attendanceSpec });
  });

  const uploads = () => t.app.services.signedUploads;
  const storage = () => t.app.services.storage;
  const pastExpiry = (u: { expiresAt: string }) => new Promise((r) => setTimeout(r, Math.max(0, new Date(u.expiresAt).getTime() - Date.now()) + 50));

  it('expires a file that was requested but never uploaded', async () => {
    const u = await request(ingestor, GOOD_CSV);
    await pastExpiry(u);
    if (backend.name === 'local') {
      const res = await put(u, GOOD_CSV);
      expect(res.status, res.raw).toBe(403);
      expect(res.json.errors![0]!.extensions).toMatchObject({ code: 'FORBIDDEN', reason: 'UPLOAD_URL_EXPIRED' });
      expect(res.json.errors![0]!.message).toMatch(/expired at .*request a new one/);
    }
    expect(await uploads().sweepExpired()).toBeGreaterThanOrEqual(1);
    expect(await fileState(ingestor, u.fileId)).toMatchObject({ state: 'EXPIRED', finished: true, error: { code: 'UPLOAD_EXPIRED' } });
    const res = await ingestor.raw(ImportFileDocument, { fileId: u.fileId });
    expect(codeOf(res.body)).toBe('CONFLICT');
    expect(reasonOf(res.body)).toBe('UPLOAD_URL_EXPIRED');
  });

  it('expires an uploaded file that was never imported and deletes its object', async () => {
    const u = await request(ingestor, GOOD_CSV);
    expect((await put(u, GOOD_CSV)).status).toBe(200);
    const raw = (await fileState(ingestor, u.fileId)).outputs.raw!;
    expect(await storage().head(raw)).toBeDefined();
    await pastExpiry(u);
    await uploads().sweepExpired();
    expect((await fileState(ingestor, u.fileId)).state).toBe('EXPIRED');
    expect(await storage().head(raw)).toBeUndefined();
  });

  it('leaves imported files alone', async () => {
    const u = await request(ingestor, GOOD_CSV);
    expect((await put(u, GOOD_CSV)).status).toBe(200);
    const { importFile } = await ingestor.request(ImportFileDocument, { fileId: u.fileId, mode: 'SYNC' });
    await pastExpiry(u);
    await uploads().sweepExpired();
    expect((await fileState(ingestor, u.fileId)).state).toBe(importFile.file.state);
    expect(await storage().head(importFile.file.outputs.raw!)).toBeDefined();
  });

  it('sweeps upload objects no file refers to, and nothing else', async () => {
    const orphan = `uploads/2020-01-01/${randomUUID()}/orphan.csv`;
    const output = 'process_input/prog/01-Jan-2020/kept-event.data.csv';
    const foreign = 'uploads/not-ours.csv';
    for (const key of [orphan, output, foreign]) {
      const w = storage().openWriter(key);
      w.stream.write('x');
      await w.done();
    }
    const u = await request(ingestor, GOOD_CSV);
    expect((await put(u, GOOD_CSV)).status).toBe(200);
    const kept = (await fileState(ingestor, u.fileId)).outputs.raw!;
    await new Promise((r) => setTimeout(r, 1100)); // older than the (zero) grace period, at S3's one-second resolution
    expect(await uploads().sweepOrphans()).toBe(1);
    expect(await storage().head(orphan)).toBeUndefined();
    for (const key of [output, foreign, kept]) expect(await storage().head(key), key).toBeDefined();
  });
});
