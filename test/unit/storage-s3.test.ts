import { DeleteObjectsCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { createS3Storage, type S3Storage, type S3StorageOptions } from '../../src/storage/s3';
import { isPresigning, StorageError } from '../../src/storage/storage';
import { startFaultyProxy, type FaultyProxy } from '../helpers/tcp-proxy';
import { startTestS3, type TestS3 } from '../helpers/s3';
import { body, describeStorageContract, listKeys, sha256 } from '../helpers/storage-contract';

let s3: TestS3;

beforeAll(async () => {
  s3 = await startTestS3();
});

afterAll(async () => {
  await s3?.close();
});

function storageFor(server: TestS3): S3Storage {
  return createS3Storage({
    bucket: server.bucket,
    region: server.region,
    endpoint: server.endpoint,
    forcePathStyle: true,
    credentials: server.credentials,
    partSizeBytes: 5 * 1024 * 1024,
  });
}

async function emptyBucket(): Promise<void> {
  const keys = await s3.keys();
  if (keys.length) await s3.client.send(new DeleteObjectsCommand({ Bucket: s3.bucket, Delete: { Objects: keys.map((Key) => ({ Key })) } }));
}

describeStorageContract('S3 storage', async () => {
  await emptyBucket();
  return { storage: storageFor(s3), rawObjects: () => s3.keys(), cleanup: emptyBucket, listsInByteOrder: false };
});

describe('S3 storage: service specifics', () => {
  it('hands out a presigned PUT that stores the object under the key', async () => {
    await emptyBucket();
    const storage = storageFor(s3);
    try {
      expect(isPresigning(storage)).toBe(true);
      const content = 'id\n1\n';
      const put = await storage.presignPut('uploads/x/file.csv', {
        expiresInSeconds: 60,
        contentType: 'text/csv',
        size: content.length,
        sha256: sha256(content),
      });
      expect(put.method).toBe('PUT');
      expect(put.url).toContain('X-Amz-Signature=');
      expect(put.url).toContain('X-Amz-Expires=60');
      expect(decodeURIComponent(put.url)).toContain('X-Amz-SignedHeaders=content-length;content-type;host;x-amz-checksum-sha256');
      expect(put.headers).toEqual({ 'content-type': 'text/csv', 'x-amz-checksum-sha256': Buffer.from(sha256(content), 'hex').toString('base64') });
      const res = await fetch(put.url, { method: 'PUT', headers: put.headers, body: content });
      expect(res.status).toBe(200);
      expect(await storage.head('uploads/x/file.csv')).toMatchObject({ size: content.length, contentType: 'text/csv' });
      expect(await text(await storage.get('uploads/x/file.csv'))).toBe(content);
    } finally {
      await storage.dispose();
    }
  });

  it('never reports client-chosen metadata as a verified checksum', async () => {
    const storage = storageFor(s3);
    try {
      await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: 'forged.csv', Body: 'x', Metadata: { sha256: sha256('y') } }));
      expect(await storage.verifiedSha256('forged.csv')).toBeUndefined();
      expect(await storage.verifiedSha256('missing.csv')).toBeUndefined();
    } finally {
      await storage.dispose();
    }
  });

  it('skips keys Sluice would refuse when listing a bucket shared with other tools', async () => {
    await emptyBucket();
    const storage = storageFor(s3);
    try {
      await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: 'other/Ünïcode?.csv', Body: 'x' }));
      await storage.put('other/ok.csv', body('y'));
      expect(await listKeys(storage, 'other/')).toEqual(['other/ok.csv']);
    } finally {
      await storage.dispose();
    }
  });

  it('reports an unreachable service as IO_ERROR without naming the endpoint', async () => {
    const storage = createS3Storage({ bucket: 'b', region: 'us-east-1', endpoint: 'http://127.0.0.1:9', forcePathStyle: true, credentials: s3.credentials });
    try {
      const err = await storage.head('a.csv').then(
        () => undefined,
        (e: unknown) => e as { code: string; message: string },
      );
      expect(err?.code).toBe('IO_ERROR');
      expect(err?.message).not.toContain('127.0.0.1');
    } finally {
      await storage.dispose();
    }
  });
});

describe('S3 storage: network faults', () => {
  let proxy: FaultyProxy;
  let direct: S3Storage;
  const SIZE = 3 * 1024 * 1024 + 12345;
  const data = Buffer.alloc(SIZE);
  for (let i = 0; i < SIZE; i++) data[i] = (i * 7919 + (i >> 11)) & 0xff;

  beforeAll(async () => {
    const { hostname, port } = new URL(s3.endpoint);
    proxy = await startFaultyProxy({ host: hostname, port: Number(port) });
    direct = storageFor(s3);
  });

  // The file's storage contract empties the bucket around every test.
  beforeEach(async () => {
    await direct.put('faults/object.bin', Readable.from([data]));
  });

  afterAll(async () => {
    await direct?.dispose();
    await proxy?.close();
  });

  /** A storage that talks to s3rver through the faulty proxy, with short timeouts. */
  const viaProxy = (o: Partial<S3StorageOptions> = {}) =>
    createS3Storage({
      bucket: s3.bucket,
      region: s3.region,
      endpoint: proxy.url,
      forcePathStyle: true,
      credentials: s3.credentials,
      partSizeBytes: 5 * 1024 * 1024,
      connectTimeoutMs: 1000,
      idleTimeoutMs: 700,
      requestTimeoutMs: 2000,
      ...o,
    });

  async function readAll(stream: Readable): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const c of stream) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }

  it('resumes a read whose connection is reset mid-body, from the byte reached, with exact bytes', async () => {
    const storage = viaProxy();
    try {
      proxy.resetAfter(1024 * 1024, 700 * 1024);
      const before = proxy.connections();
      const got = await readAll(await storage.get('faults/object.bin'));
      expect(got.length).toBe(SIZE);
      expect(sha256(got)).toBe(sha256(data));
      // Two resets: the first request and two resumed ones, each on a new connection.
      expect(proxy.connections() - before).toBeGreaterThanOrEqual(3);
    } finally {
      await storage.dispose();
    }
  });

  it('gives up after the configured attempts with a coded IO_ERROR', async () => {
    const storage = viaProxy({ readAttempts: 2 });
    try {
      proxy.resetAfter(256 * 1024, 256 * 1024, 256 * 1024);
      const err = await readAll(await storage.get('faults/object.bin')).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(StorageError);
      expect((err as StorageError).code).toBe('IO_ERROR');
      expect((err as StorageError).message).toMatch(/2 attempts/);
      expect((err as StorageError).message).not.toContain(proxy.url);
    } finally {
      proxy.resetAfter();
      await storage.dispose();
    }
  });

  it('times out a stalled read and a stalled write with IO_ERROR instead of hanging', async () => {
    const storage = viaProxy({ readAttempts: 2 });
    const started = Date.now();
    try {
      proxy.stall();
      const readErr = await storage
        .get('faults/object.bin')
        .then(readAll)
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(readErr).toBeInstanceOf(StorageError);
      expect((readErr as StorageError).code).toBe('IO_ERROR');
      const writeErr = await storage.put('faults/stalled.bin', Readable.from([data])).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(writeErr).toBeInstanceOf(StorageError);
      expect((writeErr as StorageError).code).toBe('IO_ERROR');
      // Each request gives up after 0.7-2 s of silence; the SDK retries a few times. Generous bound.
      expect(Date.now() - started).toBeLessThan(30_000);
    } finally {
      proxy.resume();
      await storage.dispose();
    }
    expect(await s3.keys('faults/stalled')).toEqual([]);
  }, 60_000);

  it('sweeps incomplete multipart uploads where the service lists them (s3rver does not: nothing to do, no error)', async () => {
    expect(await direct.abortIncompleteUploads(new Date())).toBe(0);
  });
});

describe('S3 storage: sweeping incomplete multipart uploads', () => {
  it('aborts Sluice’s uploads older than the bound, page by page, and leaves newer ones and foreign keys', async () => {
    // s3rver does not implement ListMultipartUploads, so a minimal S3 endpoint answers these two calls.
    const old = new Date(Date.now() - 48 * 3600_000).toISOString();
    const recent = new Date().toISOString();
    const pages = [
      `<Upload><Key>uploads/2024-01-01/f1/a.csv</Key><UploadId>old-1</UploadId><Initiated>${old}</Initiated></Upload>` +
        `<Upload><Key>uploads/2024-01-01/f2/b.csv</Key><UploadId>new-1</UploadId><Initiated>${recent}</Initiated></Upload>` +
        `<IsTruncated>true</IsTruncated><NextKeyMarker>uploads/2024-01-01/f2/b.csv</NextKeyMarker><NextUploadIdMarker>new-1</NextUploadIdMarker>`,
      `<Upload><Key>../evil</Key><UploadId>foreign-1</UploadId><Initiated>${old}</Initiated></Upload>` +
        `<Upload><Key>process_input/p/01-Jan-2024/s-event.data.csv</Key><UploadId>old-2</UploadId><Initiated>${old}</Initiated></Upload>` +
        `<IsTruncated>false</IsTruncated>`,
    ];
    const aborted: string[] = [];
    const seenMarkers: Array<string | null> = [];
    const server = http.createServer((req, res) => {
      const url = new URL(req.url!, 'http://x');
      if (req.method === 'GET' && url.searchParams.has('uploads')) {
        seenMarkers.push(url.searchParams.get('key-marker'));
        const page = pages[url.searchParams.has('key-marker') ? 1 : 0]!;
        res.writeHead(200, { 'content-type': 'application/xml' });
        res.end(`<?xml version="1.0" encoding="UTF-8"?><ListMultipartUploadsResult><Bucket>b</Bucket>${page}</ListMultipartUploadsResult>`);
      } else if (req.method === 'DELETE' && url.searchParams.has('uploadId')) {
        aborted.push(`${decodeURIComponent(url.pathname)}#${url.searchParams.get('uploadId')}`);
        res.writeHead(204).end();
      } else {
        res.writeHead(400).end();
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const storage = createS3Storage({
      bucket: 'b',
      region: 'us-east-1',
      endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      forcePathStyle: true,
      credentials: s3.credentials,
    });
    try {
      expect(await storage.abortIncompleteUploads(new Date(Date.now() - 24 * 3600_000))).toBe(2);
      expect(aborted).toEqual(['/b/uploads/2024-01-01/f1/a.csv#old-1', '/b/process_input/p/01-Jan-2024/s-event.data.csv#old-2']);
      expect(seenMarkers).toEqual([null, 'uploads/2024-01-01/f2/b.csv']);
    } finally {
      await storage.dispose();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
