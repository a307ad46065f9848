import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CreateBucketCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import S3rver from 's3rver';

/** s3rver's built-in account; it accepts any well-formed signature with `allowMismatchedSignatures`. */
const ACCESS_KEY = 'S3RVER';
const SECRET_KEY = 'S3RVER';

export interface TestS3 {
  endpoint: string;
  bucket: string;
  region: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  /** The SLUICE_* variables that point Sluice at this server. */
  env: Record<string, string>;
  /** A plain client for assertions made around Sluice. */
  client: S3Client;
  /** Every key in the bucket (default: the one created at start), unfiltered. */
  keys(prefix?: string, bucket?: string): Promise<string[]>;
  /** Creates another bucket on the same server; returns the SLUICE_* variables that use it. */
  withBucket(name: string): Promise<Record<string, string>>;
  close(): Promise<void>;
}

/**
 * A real S3-protocol server (s3rver, from npm) on a free port with one empty bucket, in a temp
 * folder. Why `allowMismatchedSignatures`: s3rver does not implement SigV4 verification and would
 * otherwise refuse every SDK request; it still parses the signature, and the expiry and tampering
 * of S3's presigned URLs are left to the real service.
 */
export async function startTestS3(bucket = 'sluice-test'): Promise<TestS3> {
  const directory = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-s3rver-'));
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory,
    allowMismatchedSignatures: true,
    vhostBuckets: false,
    configureBuckets: [{ name: bucket }],
  });
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  const region = 'us-east-1';
  const credentials = { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY };
  const client = new S3Client({ endpoint, region, forcePathStyle: true, credentials });
  const env = {
    SLUICE_STORAGE: 's3',
    SLUICE_S3_ENDPOINT: endpoint,
    SLUICE_S3_REGION: region,
    SLUICE_S3_BUCKET: bucket,
    SLUICE_S3_FORCE_PATH_STYLE: 'true',
    SLUICE_S3_ACCESS_KEY_ID: ACCESS_KEY,
    SLUICE_S3_SECRET_ACCESS_KEY: SECRET_KEY,
  };
  return {
    endpoint,
    bucket,
    region,
    credentials,
    env,
    client,
    async keys(prefix = '', inBucket = bucket) {
      const keys: string[] = [];
      let token: string | undefined;
      do {
        const page = await client.send(new ListObjectsV2Command({ Bucket: inBucket, Prefix: prefix || undefined, ContinuationToken: token }));
        for (const o of page.Contents ?? []) keys.push(o.Key!);
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
      return keys.sort();
    },
    async withBucket(name) {
      await client.send(new CreateBucketCommand({ Bucket: name }));
      return { ...env, SLUICE_S3_BUCKET: name };
    },
    async close() {
      client.destroy();
      await server.close();
      await fs.rm(directory, { recursive: true, force: true });
    },
  };
}
