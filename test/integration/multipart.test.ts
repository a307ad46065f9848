import { execFileSync } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegisterSpecDocument, RequestUploadUrlDocument, UploadFileDocument, type SluiceClient } from '../../src/sdk/client';
import { codeOf, startTestApp, type TestApp } from '../helpers/app';
import { attendanceSpec } from '../helpers/attendance';
import {
  field,
  filePart,
  filler,
  hostileBodies,
  keepAliveAnswer,
  multipart,
  multipartHead,
  multipartHeaders,
  rawRequest,
  tempFiles,
  uploadFields,
  type RawResponse,
} from '../helpers/multipart';

const MAX_FILE_BYTES = 256 * 1024;
const IDLE_MS = 600;

let t: TestApp;
let ingestor: SluiceClient;
let auth: Record<string, string>;

beforeAll(async () => {
  t = await startTestApp({
    SLUICE_MAX_FILE_SIZE_BYTES: String(MAX_FILE_BYTES),
    SLUICE_UPLOAD_IDLE_TIMEOUT_MS: String(IDLE_MS),
    SLUICE_UPLOAD_SWEEP_INTERVAL_MS: '0',
    SLUICE_ORPHAN_SWEEP_INTERVAL_MS: '0',
  });
  await t.admin.request(RegisterSpecDocument, { kind: 'EVENT', spec: attendanceSpec });
  ingestor = await t.clientWith(['INGESTOR']);
  auth = { authorization: `Bearer ${ingestor.options.token}` };
});

const storageDir = () => path.join(t.dataDir, 'storage');
/** Upload temp files only: the app's workers write outputs of accepted uploads meanwhile. */
const uploadTemps = () => tempFiles(path.join(storageDir(), 'uploads'));
const show = (r: RawResponse) => `HTTP ${r.status} ${r.text.slice(0, 500)}`;

async function stillServing(): Promise<void> {
  const res = await fetch(`${t.url}/healthz`);
  expect(res.status).toBe(200);
}

async function filesInDb(): Promise<number> {
  const [row] = await t.database.sql<Array<{ n: number }>>`select count(*)::int as n from files`;
  return row!.n;
}

describe('malformed multipart requests get 400 BAD_REQUEST and the process keeps serving', () => {
  for (const h of hostileBodies()) {
    it(`${h.name} (with a token)`, async () => {
      const res = await rawRequest(t.url, { headers: multipartHeaders(auth), body: h.body });
      expect(res.status, show(res)).toBe(400);
      expect(codeOf(res.json!), show(res)).toBe('BAD_REQUEST');
      expect(res.json!.errors![0]!.message, show(res)).toMatch(h.message);
      expect(res.json!.errors![0]!.extensions, show(res)).not.toHaveProperty('http');
      await stillServing();
    });
  }

  it('the same bodies without a token: never a crash, never INTERNAL_SERVER_ERROR', async () => {
    for (const h of hostileBodies()) {
      const res = await rawRequest(t.url, { headers: multipartHeaders(), body: h.body });
      expect([400, 200], `${h.name}: ${show(res)}`).toContain(res.status);
      expect(['BAD_REQUEST', 'UNAUTHENTICATED'], `${h.name}: ${show(res)}`).toContain(codeOf(res.json!));
      await stillServing();
    }
  });

  it('an endless body without the preflight header is refused 400, answered rather than reset', async () => {
    const { 'apollo-require-preflight': _omitted, ...headers } = multipartHeaders(auth);
    const res = await rawRequest(t.url, { headers, timeoutMs: 30_000, stream: filler(0, { endless: true, pauseMs: 5 }) });
    expect(res.status, show(res)).toBe(400);
    expect(codeOf(res.json!), show(res)).toBe('BAD_REQUEST');
    await stillServing();
  });

  it('a multipart Content-Type without a boundary', async () => {
    const res = await rawRequest(t.url, { headers: { ...multipartHeaders(auth), 'content-type': 'multipart/form-data' }, body: Buffer.from('x') });
    expect(res.status, show(res)).toBe(400);
    expect(codeOf(res.json!)).toBe('BAD_REQUEST');
    await stillServing();
  });

  // A refused upload whose body the server does not read to its end is answered and the
  // connection closed (a lingering close, see src/server/request-body.ts). The answer must say so:
  // a client told `Connection: keep-alive` reuses the connection for its next request, which then
  // fails with ECONNRESET (found sending refused uploads and then other requests over one agent).
  it('an answer after which the server closes the connection says Connection: close (a kept-alive client would send its next request into it)', async () => {
    const [operations, map] = uploadFields();
    const bodies: { name: string; body: Buffer; unsent?: number }[] = [
      ...hostileBodies().map((h) => ({ name: h.name, body: h.body })),
      // Whether a body that was sent whole is complete when the answer goes out depends on timing;
      // one whose Content-Length promises more than was sent never is.
      { name: 'map before operations, 1 MB of its body still to come', body: multipart([map!, operations!], { close: false }), unsent: 1_000_000 },
      { name: 'map before operations', body: multipart([map!, operations!, filePart('0', 'a.csv', 'date\n')]) },
      { name: 'a map entry that is not a list', body: multipart([operations!, field('map', '{"0":"x"}'), filePart('0', 'a.csv', 'date\n')]) },
      { name: 'invalid JSON in map', body: multipart([operations!, field('map', '{'), filePart('0', 'a.csv', 'date\n')]) },
      { name: 'a file before map', body: multipart([operations!, filePart('0', 'a.csv', 'date\n'), map!]) },
    ];
    const closedSilently: string[] = [];
    let closes = 0;
    for (const b of bodies) {
      const a = await keepAliveAnswer(t.url, multipartHeaders(auth), b.body, 300, b.unsent ?? 0);
      expect(a.status, b.name).toBe(400);
      if (a.closed) closes++;
      if (a.closed && a.connection !== 'close') closedSilently.push(`${b.name} (Connection: ${a.connection})`);
    }
    expect(closedSilently).toEqual([]);
    // The case this guards is there: some of these answers do close the connection (at least the unfinished body's).
    expect(closes).toBeGreaterThan(0);
    await stillServing();
  });

  it('nothing is stored for any of them', async () => {
    expect(await uploadTemps()).toEqual([]);
    expect(await filesInDb()).toBe(0);
  });

  it('a well-formed upload still works after all of that', async () => {
    const csv = 'date,school_id,present\n01/03/23,s1,10\n';
    const res = await rawRequest(t.url, {
      headers: multipartHeaders(auth),
      body: multipart([...uploadFields(), { headers: ['Content-Disposition: form-data; name="0"; filename="a.csv"'], body: csv }]),
    });
    expect(res.status, show(res)).toBe(200);
    expect(res.json!.errors, show(res)).toBeUndefined();
    const { uploadFile } = await ingestor.upload(
      UploadFileDocument,
      { program: 'state_prog', spec: 'attendance', file: null },
      { file: { body: csv, filename: 'b.csv', contentType: 'text/csv' } },
    );
    expect(uploadFile.created).toBe(true);
  });
});

describe('oversize uploads end promptly and leave nothing', () => {
  /** Sends the head, the allowed bytes, then keeps sending: only crossing the limit can end it. */
  async function oversize(headers: Record<string, string>): Promise<RawResponse> {
    const before = await filesInDb();
    const head = multipartHead();
    const res = await rawRequest(t.url, {
      headers,
      timeoutMs: 30_000,
      stream: async (write, answered) => {
        await write(head);
        await filler(0, { endless: true, pauseMs: 5 })(write, answered);
      },
    });
    expect(res.status, show(res)).toBe(413);
    expect(codeOf(res.json!), show(res)).toBe('PAYLOAD_TOO_LARGE');
    expect(res.json!.errors![0]!.extensions, show(res)).toMatchObject({ limitBytes: MAX_FILE_BYTES });
    // Answered soon after the limit was crossed, not after the (endless) body.
    expect(res.bytesSent, show(res)).toBeLessThan(MAX_FILE_BYTES + 64 * 1024 * 1024);
    expect(await uploadTemps()).toEqual([]);
    expect(await filesInDb()).toBe(before);
    await stillServing();
    return res;
  }

  it('chunked (no Content-Length)', async () => {
    const res = await oversize(multipartHeaders(auth));
    expect(res.elapsedMs, show(res)).toBeLessThan(10_000);
  });

  it('with a Content-Length far beyond the limit', async () => {
    await oversize(multipartHeaders({ ...auth, 'content-length': String(1024 * 1024 * 1024) }));
  });

  it('a file of exactly the limit is accepted', async () => {
    const header = 'date,school_id,present\n';
    const row = '01/03/23,s1,10\n';
    const body = header + row.repeat(Math.floor((MAX_FILE_BYTES - header.length) / row.length));
    const padded = body + 'x'.repeat(MAX_FILE_BYTES - body.length);
    expect(padded.length).toBe(MAX_FILE_BYTES);
    const res = await rawRequest(t.url, {
      headers: multipartHeaders(auth),
      body: multipart([...uploadFields(), { headers: ['Content-Disposition: form-data; name="0"; filename="exact.csv"'], body: padded }]),
    });
    expect(res.status, show(res)).toBe(200);
    expect(res.json!.errors, show(res)).toBeUndefined();
  });
});

describe('stalled uploads end with REQUEST_TIMEOUT (408) after the idle timeout', () => {
  it('a body that stops in the middle of the file', async () => {
    const res = await rawRequest(t.url, {
      headers: multipartHeaders(auth),
      stream: async (write) => {
        await write(multipartHead());
        await write(Buffer.from('date,school_id,present\n01/03/23,s1,10\n'));
        await new Promise(() => undefined); // the client goes silent
      },
    });
    expect(res.status, show(res)).toBe(408);
    expect(codeOf(res.json!), show(res)).toBe('REQUEST_TIMEOUT');
    expect(res.json!.errors![0]!.extensions, show(res)).toMatchObject({ idleTimeoutMs: IDLE_MS });
    expect(res.elapsedMs, show(res)).toBeGreaterThanOrEqual(IDLE_MS - 50);
    expect(await uploadTemps()).toEqual([]);
    await stillServing();
  });

  it('a body that stops before the operations field is complete', async () => {
    const res = await rawRequest(t.url, {
      headers: multipartHeaders(auth),
      stream: async (write) => {
        await write(multipartHead().subarray(0, 60));
        await new Promise(() => undefined);
      },
    });
    expect(res.status, show(res)).toBe(408);
    expect(codeOf(res.json!), show(res)).toBe('REQUEST_TIMEOUT');
    await stillServing();
  });

  it('a slow but steady body is not cut off', async () => {
    const csv = Buffer.from('date,school_id,present\n01/03/23,s1,10\n');
    const res = await rawRequest(t.url, {
      headers: multipartHeaders(auth),
      stream: async (write) => {
        await write(multipartHead('slow.csv'));
        for (const b of csv) {
          await write(Buffer.from([b]));
          await new Promise((r) => setTimeout(r, IDLE_MS / 20));
        }
        await write(Buffer.from(`\r\n--sluice-test-boundary--\r\n`));
      },
    });
    expect(res.status, show(res)).toBe(200);
    expect(res.json!.errors, show(res)).toBeUndefined();
  });
});

describe('the orphan sweep removes stale temp files and empty folders', () => {
  it('removes .tmp-* files and empty folders older than SLUICE_STALE_TEMP_SECONDS, keeps fresh ones and real objects', async () => {
    const root = storageDir();
    const old = new Date(Date.now() - 2 * 3600_000);
    const staleUpload = path.join(root, 'uploads', '2020-01-01', randomUUID(), `.tmp-${randomUUID()}`);
    const staleOutput = path.join(root, 'process_input', 'prog', '01-Jan-2020', `.tmp-${randomUUID()}`);
    const freshTemp = path.join(root, 'uploads', '2020-01-02', randomUUID(), `.tmp-${randomUUID()}`);
    const emptyFolder = path.join(root, 'emission', '01-Jan-2020', 'empty');
    for (const f of [staleUpload, staleOutput, freshTemp]) {
      await fs.mkdir(path.dirname(f), { recursive: true });
      await fs.writeFile(f, 'half-written');
    }
    await fs.mkdir(emptyFolder, { recursive: true });
    for (const f of [staleUpload, staleOutput]) await fs.utimes(f, old, old);
    for (const d of [emptyFolder, path.dirname(emptyFolder), path.dirname(staleUpload), path.dirname(staleOutput)]) await fs.utimes(d, old, old);
    const kept = 'process_input/prog/01-Jan-2020/kept-event.data.csv';
    const w = t.app.services.storage.openWriter(kept);
    w.stream.write('x');
    await w.done();

    await t.app.services.signedUploads.sweepOrphans();

    for (const f of [staleUpload, staleOutput]) await expect(fs.stat(f), f).rejects.toThrow(/ENOENT/);
    expect((await fs.stat(freshTemp)).isFile()).toBe(true);
    await expect(fs.stat(emptyFolder)).rejects.toThrow(/ENOENT/);
    await expect(fs.stat(path.dirname(staleUpload))).rejects.toThrow(/ENOENT/);
    expect(await t.app.services.storage.head(kept)).toBeDefined();
    await fs.rm(path.dirname(freshTemp), { recursive: true });
  });
});

describe('signed upload PUT: oversize and stalled bodies are answered, not reset', () => {
  async function uploadUrl(size: number): Promise<string> {
    const { requestUploadUrl } = await ingestor.request(RequestUploadUrlDocument, {
      input: { fileName: 'a.csv', program: 'state_prog', spec: 'attendance', size, sha256: 'a'.repeat(64) },
    });
    return requestUploadUrl.url;
  }

  it('a chunked body past SLUICE_MAX_FILE_SIZE_BYTES gets 413 PAYLOAD_TOO_LARGE', async () => {
    const url = new URL(await uploadUrl(MAX_FILE_BYTES));
    const res = await rawRequest(t.url, {
      method: 'PUT',
      path: url.pathname + url.search,
      headers: { 'content-type': 'text/csv' },
      timeoutMs: 30_000,
      stream: filler(0, { endless: true, pauseMs: 5 }),
    });
    expect(res.status, show(res)).toBe(413);
    expect(codeOf(res.json!), show(res)).toBe('PAYLOAD_TOO_LARGE');
    expect(await uploadTemps()).toEqual([]);
    await stillServing();
  });

  it('a chunked body longer than declared gets 400 SIZE_MISMATCH', async () => {
    const url = new URL(await uploadUrl(1000));
    const res = await rawRequest(t.url, {
      method: 'PUT',
      path: url.pathname + url.search,
      headers: { 'content-type': 'text/csv' },
      stream: filler(0, { endless: true, pauseMs: 5 }),
    });
    expect(res.status, show(res)).toBe(400);
    expect(res.json!.errors![0]!.extensions, show(res)).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'SIZE_MISMATCH' });
  });

  it('a stalled PUT body gets 408 REQUEST_TIMEOUT and the URL can be used again', async () => {
    const url = new URL(await uploadUrl(1000));
    const res = await rawRequest(t.url, {
      method: 'PUT',
      path: url.pathname + url.search,
      headers: { 'content-type': 'text/csv', 'content-length': '1000' },
      stream: async (write) => {
        await write(Buffer.alloc(100, 'a'));
        await new Promise(() => undefined);
      },
    });
    expect(res.status, show(res)).toBe(408);
    expect(res.json!.errors![0]!.extensions, show(res)).toEqual({ code: 'REQUEST_TIMEOUT', idleTimeoutMs: IDLE_MS });
    expect(await uploadTemps()).toEqual([]);
    // The failed PUT released the single-use URL: a retry is judged on its bytes (wrong checksum here).
    const retry = await rawRequest(t.url, {
      method: 'PUT',
      path: url.pathname + url.search,
      headers: { 'content-type': 'text/csv' },
      body: Buffer.alloc(1000, 'a'),
    });
    expect(retry.json!.errors![0]!.extensions, show(retry)).toMatchObject({ reason: 'CHECKSUM_MISMATCH' });
  });
});

/**
 * Disk full, for real: local storage on a 1 MiB tmpfs. Mounting needs root (CAP_SYS_ADMIN);
 * without it the test is skipped.
 */
function mountTinyTmpfs(dir: string): boolean {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const fullDir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-full-'));
const mounted = mountTinyTmpfs(fullDir);
afterAll(async () => {
  if (mounted) execFileSync('umount', ['-l', fullDir], { stdio: 'ignore' });
  await fs.rm(fullDir, { recursive: true, force: true });
});

/** Declares `body` for a signed-URL upload as `writer` and PUTs it to the returned URL on `app`. */
async function putSigned(app: TestApp, writer: SluiceClient, body: Buffer) {
  const { requestUploadUrl } = await writer.request(RequestUploadUrlDocument, {
    input: { fileName: 'a.csv', program: 'state_prog', spec: 'attendance', size: body.length, sha256: createHash('sha256').update(body).digest('hex') },
  });
  const url = new URL(requestUploadUrl.url);
  return rawRequest(app.url, { method: 'PUT', path: url.pathname + url.search, headers: { 'content-type': 'text/csv' }, body });
}

describe.skipIf(!mounted)('local disk full (ENOSPC)', () => {
  let full: TestApp;
  let writer: SluiceClient;
  beforeAll(async () => {
    // No reserve: this is the disk itself running out (the reserve is tested below and in storage-local.test.ts).
    full = await startTestApp({
      SLUICE_STORAGE_DIR: fullDir,
      SLUICE_STORAGE_MIN_FREE_BYTES: '0',
      SLUICE_UPLOAD_SWEEP_INTERVAL_MS: '0',
      SLUICE_ORPHAN_SWEEP_INTERVAL_MS: '0',
    });
    await full.admin.request(RegisterSpecDocument, { kind: 'EVENT', spec: attendanceSpec });
    writer = await full.clientWith(['INGESTOR']);
  });

  it('a multipart upload larger than the free space gets STORAGE_FULL and leaves nothing', async () => {
    const big = 'date,school_id,present\n' + '01/03/23,s1,10\n'.repeat(200_000); // about 3 MB
    const res = await writer.uploadRaw(
      UploadFileDocument,
      { program: 'state_prog', spec: 'attendance', file: null },
      { file: { body: big, filename: 'big.csv', contentType: 'text/csv' } },
    );
    expect(codeOf(res.body), JSON.stringify(res.body)).toBe('STORAGE_FULL');
    expect(res.status).toBe(507);
    expect(await tempFiles(path.join(fullDir, 'uploads'))).toEqual([]);
    const [row] = await full.database.sql<Array<{ n: number }>>`select count(*)::int as n from files`;
    expect(row!.n).toBe(0);
    // Space is back once the failed write is gone: a small upload fits.
    const ok = await writer.uploadRaw(
      UploadFileDocument,
      { program: 'state_prog', spec: 'attendance', file: null },
      { file: { body: 'date,school_id,present\n01/03/23,s1,10\n', filename: 'small.csv', contentType: 'text/csv' } },
    );
    expect(ok.body.errors, JSON.stringify(ok.body)).toBeUndefined();
  });

  it('a signed-URL PUT larger than the free space gets 507 STORAGE_FULL', async () => {
    const res = await putSigned(full, writer, Buffer.alloc(3 * 1024 * 1024, 'a'));
    expect(res.status, show(res)).toBe(507);
    expect(codeOf(res.json!), show(res)).toBe('STORAGE_FULL');
    expect(await tempFiles(path.join(fullDir, 'uploads'))).toEqual([]);
  });
});

describe('the free-space reserve (SLUICE_STORAGE_MIN_FREE_BYTES)', () => {
  let kept: TestApp;
  let writer: SluiceClient;
  beforeAll(async () => {
    // A reserve larger than any disk's free space: every write is refused, as on a disk near full.
    kept = await startTestApp({ SLUICE_STORAGE_MIN_FREE_BYTES: String(1e15) });
    await kept.admin.request(RegisterSpecDocument, { kind: 'EVENT', spec: attendanceSpec });
    writer = await kept.clientWith(['INGESTOR']);
  });

  it('refuses a multipart upload and a signed-URL PUT with 507 STORAGE_FULL, and stores nothing', async () => {
    const res = await writer.uploadRaw(
      UploadFileDocument,
      { program: 'state_prog', spec: 'attendance', file: null },
      { file: { body: 'date,school_id,present\n01/03/23,s1,10\n', filename: 'a.csv', contentType: 'text/csv' } },
    );
    expect(res.status).toBe(507);
    expect(codeOf(res.body), JSON.stringify(res.body)).toBe('STORAGE_FULL');
    const [row] = await kept.database.sql<Array<{ n: number }>>`select count(*)::int as n from files`;
    expect(row!.n).toBe(0);
    const put = await putSigned(kept, writer, Buffer.from('date,school_id,present\n01/03/23,s1,10\n'));
    expect(put.status, show(put)).toBe(507);
    expect(codeOf(put.json!), show(put)).toBe('STORAGE_FULL');
    expect(await tempFiles(path.join(kept.dataDir, 'storage', 'uploads'))).toEqual([]);
  });
});
