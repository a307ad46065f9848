import { DeleteObjectsCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { text } from 'node:stream/consumers';
import { createS3Storage, type S3Storage } from '../../src/storage/s3';
import { isPresigning } from '../../src/storage/storage';
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
      const put = await storage.presignPut('uploads/x/file.csv', { expiresInSeconds: 60, contentType: 'text/csv', size: content.length, sha256: sha256(content) });
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
