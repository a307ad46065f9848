import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import yazl from 'yazl';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  ImportFileDocument,
  RegisterSpecDocument,
  RequestUploadUrlDocument,
  SignedUploadFileDocument,
  UploadFileDocument,
  UploadNationalProgramDocument,
  type SluiceClient,
} from '../../src/sdk/client';
import { codeOf, startTestApp, type TestApp } from '../helpers/app';
import { collectJobEvents, FAST_JOBS } from '../helpers/jobs';

let t: TestApp;
let ingestor: SluiceClient;

const specOf = (name: string, extra: Record<string, unknown> = {}) => ({
  program: name,
  input: {
    type: 'object',
    properties: { school_id: { type: 'string', shouldNotNull: true }, present: { type: 'integer', minimum: 0 }, ...extra },
    required: ['school_id'],
  },
});

const CSV = 'school_id,present\nS1,3\nS2,4\n';
const sha256 = (b: string | Buffer) => createHash('sha256').update(b).digest('hex');

beforeAll(async () => {
  t = await startTestApp({ ...FAST_JOBS });
  ingestor = await t.clientWith(['INGESTOR']);
  await t.admin.request(RegisterSpecDocument, { kind: 'EVENT', spec: specOf('dedupe') });
});

async function upload(
  client: SluiceClient,
  body: string,
  opts: { spec?: string; program?: string; onDuplicateContent?: 'INGEST' | 'SKIP'; onInvalidRows?: 'SKIP' | 'FAIL'; idempotencyKey?: string } = {},
) {
  const { uploadFile } = await client.upload(
    UploadFileDocument,
    {
      program: opts.program ?? 'prog',
      spec: opts.spec ?? 'dedupe',
      file: null,
      onDuplicateContent: opts.onDuplicateContent,
      onInvalidRows: opts.onInvalidRows,
      idempotencyKey: opts.idempotencyKey,
    },
    { file: { body, filename: 'dedupe.csv', contentType: 'text/csv' } },
  );
  return uploadFile;
}

async function uploadAndFinish(client: SluiceClient, body: string, opts: Parameters<typeof upload>[2] = {}) {
  const res = await upload(client, body, opts);
  const events = await collectJobEvents(client, res.job.id, { afterSeq: 0 });
  return { ...res, state: events.at(-1)!.state };
}

/** Every object in local storage (raw uploads and outputs). */
async function storedObjects(): Promise<string[]> {
  const root = path.join(t.dataDir, 'storage');
  const out: string[] = [];
  async function walk(dir: string): Promise<void> {
    for (const e of await fs.readdir(dir, { withFileTypes: true }).catch(() => [])) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else out.push(path.relative(root, p));
    }
  }
  await walk(root);
  return out.sort();
}

async function count(sql: string): Promise<number> {
  const [row] = await t.database.sql.unsafe(sql);
  return Number(row!['n']);
}

describe('onDuplicateContent', () => {
  it('SKIP returns the earlier SUCCEEDED file and job, stores nothing and ingests nothing', async () => {
    const csv = `${CSV}S3,1\n`;
    const first = await uploadAndFinish(ingestor, csv);
    expect(first).toMatchObject({ created: true, outcome: 'CREATED', duplicateOf: null, state: 'SUCCEEDED' });
    const files = await count('select count(*) from files');
    const rows = await count('select count(*) from ds_dedupe_v1');
    const objects = await storedObjects();
    expect(objects.some((o) => o.includes(first.file.id))).toBe(true);

    const again = await upload(ingestor, csv, { onDuplicateContent: 'SKIP' });
    expect(again).toMatchObject({
      created: false,
      outcome: 'DUPLICATE_CONTENT',
      duplicateOf: { id: first.file.id },
      file: { id: first.file.id, state: 'SUCCEEDED' },
      job: { id: first.job.id },
    });
    expect(await count('select count(*) from files')).toBe(files);
    expect(await count('select count(*) from ds_dedupe_v1')).toBe(rows);
    // The new copy was stored to learn its SHA-256, then removed.
    expect(await storedObjects()).toEqual(objects);

    // The default is INGEST: the same bytes make a new file and job.
    const ingested = await uploadAndFinish(ingestor, csv);
    expect(ingested).toMatchObject({ created: true, outcome: 'CREATED', state: 'SUCCEEDED' });
    expect(ingested.file.id).not.toBe(first.file.id);
    expect(await count('select count(*) from ds_dedupe_v1')).toBe(rows + 3);
    // With several earlier copies, SKIP names the earliest.
    expect((await upload(ingestor, csv, { onDuplicateContent: 'SKIP' })).file.id).toBe(first.file.id);
  });

  it('counts SUCCEEDED_WITH_ERRORS as ingested, but not FAILED', async () => {
    const partial = `${CSV}S9,-1\n`;
    const first = await uploadAndFinish(ingestor, partial);
    expect(first.state).toBe('SUCCEEDED_WITH_ERRORS');
    expect(await upload(ingestor, partial, { onDuplicateContent: 'SKIP' })).toMatchObject({ outcome: 'DUPLICATE_CONTENT', file: { id: first.file.id } });

    const failing = `${CSV}S8,-1\n`;
    const failed = await uploadAndFinish(ingestor, failing, { onInvalidRows: 'FAIL' });
    expect(failed.state).toBe('FAILED');
    const retried = await uploadAndFinish(ingestor, failing, { onDuplicateContent: 'SKIP' });
    expect(retried).toMatchObject({ outcome: 'CREATED', created: true, state: 'SUCCEEDED_WITH_ERRORS' });
  });

  it('matches only the same client, program and spec version', async () => {
    const csv = `${CSV}S4,1\n`;
    const first = await uploadAndFinish(ingestor, csv);
    const other = await t.clientWith(['INGESTOR']);
    expect((await uploadAndFinish(other, csv, { onDuplicateContent: 'SKIP' })).outcome).toBe('CREATED');
    expect((await uploadAndFinish(ingestor, csv, { onDuplicateContent: 'SKIP', program: 'other_prog' })).outcome).toBe('CREATED');
    expect((await upload(ingestor, csv, { onDuplicateContent: 'SKIP' })).file.id).toBe(first.file.id);

    await t.admin.request(RegisterSpecDocument, { kind: 'EVENT', spec: specOf('dedupe_versions') });
    const v1 = await uploadAndFinish(ingestor, csv, { spec: 'dedupe_versions' });
    await t.admin.request(RegisterSpecDocument, { kind: 'EVENT', spec: specOf('dedupe_versions', { note: { type: 'string' } }) });
    const v2 = await uploadAndFinish(ingestor, csv, { spec: 'dedupe_versions', onDuplicateContent: 'SKIP' });
    expect(v2.outcome).toBe('CREATED');
    expect(v2.file.spec?.version).toBe(2);
    expect(v2.file.id).not.toBe(v1.file.id);
  });

  it('an idempotency key replay is REPLAYED, not a duplicate', async () => {
    const csv = `${CSV}S5,1\n`;
    const first = await uploadAndFinish(ingestor, csv, { idempotencyKey: 'dedupe-key-1' });
    const replay = await upload(ingestor, csv, { idempotencyKey: 'dedupe-key-1', onDuplicateContent: 'SKIP' });
    expect(replay).toMatchObject({ created: false, outcome: 'REPLAYED', duplicateOf: null, file: { id: first.file.id } });
  });

  it('national program ZIPs: the same archive again is skipped', async () => {
    await t.admin.request(RegisterSpecDocument, { kind: 'EVENT', spec: specOf('dedupe_zip') });
    const z = new yazl.ZipFile();
    z.addBuffer(Buffer.from(CSV), 'dedupe_zip.csv');
    z.end();
    const body = await new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      z.outputStream
        .on('data', (c: Buffer) => chunks.push(c))
        .on('end', () => resolve(Buffer.concat(chunks)))
        .on('error', reject);
    });
    const send = (onDuplicateContent?: 'SKIP') =>
      ingestor.upload(
        UploadNationalProgramDocument,
        { file: null, onDuplicateContent },
        { file: { body, filename: 'dedupe_zip.zip', contentType: 'application/zip' } },
      );
    const { uploadNationalProgram: first } = await send();
    const events = await collectJobEvents(ingestor, first.job.id, { afterSeq: 0 });
    expect(events.at(-1)!.state).toBe('SUCCEEDED');
    const { uploadNationalProgram: again } = await send('SKIP');
    expect(again).toMatchObject({ outcome: 'DUPLICATE_CONTENT', file: { id: first.file.id, kind: 'ZIP' }, job: { id: first.job.id } });
  });

  it('importFile with SKIP: the signed upload is marked as a duplicate, its object deleted, and the earlier file returned', async () => {
    const csv = `${CSV}S6,1\n`;
    const first = await uploadAndFinish(ingestor, csv);
    const { requestUploadUrl: u } = await ingestor.request(RequestUploadUrlDocument, {
      input: { fileName: 'again.csv', program: 'prog', spec: 'dedupe', size: Buffer.byteLength(csv), sha256: sha256(csv) },
    });
    const put = await fetch(u.url, { method: 'PUT', headers: Object.fromEntries(u.headers.map((h) => [h.name, h.value])), body: csv });
    expect(put.status).toBeLessThan(300);
    const rows = await count('select count(*) from ds_dedupe_v1');
    const { importFile } = await ingestor.request(ImportFileDocument, { fileId: u.fileId, onDuplicateContent: 'SKIP' });
    expect(importFile).toMatchObject({
      created: false,
      finished: true,
      outcome: 'DUPLICATE_CONTENT',
      duplicateOf: { id: first.file.id },
      file: { id: first.file.id },
      job: { id: first.job.id },
    });
    const { file } = await ingestor.request(SignedUploadFileDocument, { id: u.fileId });
    expect(file).toMatchObject({ state: 'EXPIRED', duplicateOf: { id: first.file.id }, error: { code: 'DUPLICATE_CONTENT' }, outputs: { raw: null } });
    expect(await count('select count(*) from ds_dedupe_v1')).toBe(rows);
    expect((await storedObjects()).some((o) => o.includes(u.fileId))).toBe(false);
    // Importing it again gives the same answer; so does INGEST now (the bytes are gone).
    const { importFile: again } = await ingestor.request(ImportFileDocument, { fileId: u.fileId });
    expect(again).toMatchObject({ outcome: 'DUPLICATE_CONTENT', file: { id: first.file.id } });

    // Without SKIP the signed upload is imported as usual.
    const { requestUploadUrl: u2 } = await ingestor.request(RequestUploadUrlDocument, {
      input: { fileName: 'again2.csv', program: 'prog', spec: 'dedupe', size: Buffer.byteLength(csv), sha256: sha256(csv) },
    });
    await fetch(u2.url, { method: 'PUT', headers: Object.fromEntries(u2.headers.map((h) => [h.name, h.value])), body: csv });
    const { importFile: ingested } = await ingestor.request(ImportFileDocument, { fileId: u2.fileId });
    expect(ingested).toMatchObject({ created: true, outcome: 'CREATED', duplicateOf: null, file: { id: u2.fileId } });
  });

  it('refuses an unknown onDuplicateContent value', async () => {
    const res = await ingestor.raw(ImportFileDocument, { fileId: '00000000-0000-0000-0000-000000000000', onDuplicateContent: 'MAYBE' as never });
    expect(codeOf(res.body), JSON.stringify(res.body)).toBe('BAD_USER_INPUT');
  });
});
