import { createHash } from 'node:crypto';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  AbortMultipartUploadCommand,
  CopyObjectCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { GiB, MiB } from '../shared/units';
import {
  assertValidKey,
  assertValidPrefix,
  checkComplete,
  checkGrowth,
  isValidKey,
  putThroughWriter,
  StorageError,
  type HeadResult,
  type ListItem,
  type ObjectStorage,
  type PresignedPut,
  type PresigningStorage,
  type PutOptions,
  type PutResult,
  type StorageWriter,
} from './storage';

export interface S3StorageOptions {
  bucket: string;
  /** e.g. `eu-west-1`; S3-compatible servers usually accept any value, often `us-east-1`. */
  region: string;
  /** Endpoint of an S3-compatible service (MinIO, Ceph, R2...); unset for AWS S3 itself. */
  endpoint?: string;
  /** `https://host/bucket/key` instead of `https://bucket.host/key`; most S3-compatible servers need it. */
  forcePathStyle?: boolean;
  /** Unset: the AWS SDK's standard chain (AWS_ACCESS_KEY_ID..., shared config files, instance roles). */
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /** Bytes per multipart part (S3 minimum 5 MiB). Memory per write is about `partSizeBytes * (queueSize + 1)`. */
  partSizeBytes?: number;
  /** Parts uploaded at the same time by one write. */
  queueSize?: number;
  /** Time to open a TCP (and TLS) connection, in milliseconds. Default 5000. */
  connectTimeoutMs?: number;
  /** A request's socket may stay silent (no byte sent or received) this long, in milliseconds; also bounds a stalled body read. Default 30000. */
  idleTimeoutMs?: number;
  /** Time from sending a request until its response headers arrive (a part upload included), in milliseconds. Default 120000. */
  requestTimeoutMs?: number;
  /** Requests of an object read, the first one included, when the connection fails mid-body; each resumes at the byte reached. Default 4. */
  readAttempts?: number;
}

export interface S3Storage extends ObjectStorage, PresigningStorage {
  readonly bucket: string;
  /**
   * Aborts multipart uploads begun before `olderThan` and never completed (a crash mid-write, an
   * abort that failed on a dead link): their parts are invisible but billed. Returns how many were
   * aborted; 0 when the service does not implement ListMultipartUploads.
   */
  abortIncompleteUploads(olderThan: Date): Promise<number>;
  /** Aborts writers still open (their multipart uploads are aborted); later calls fail with IO_ERROR. */
  dispose(): Promise<void>;
}

/** True for storage that can sweep incomplete multipart uploads (S3). */
export function sweepsIncompleteUploads(s: object): s is Pick<S3Storage, 'abortIncompleteUploads'> {
  return typeof (s as Partial<S3Storage>).abortIncompleteUploads === 'function';
}

const defaultPartSize = 8 * MiB;
/** CopyObject's limit; larger objects keep no `sha256` metadata (see `recordSha256`). */
const maxSingleCopyBytes = 5 * GiB;
/** The metadata entry (`x-amz-meta-sha256`) that makes `head` return the SHA-256. */
const SHA256_META = 'sha256';
const HEX_SHA256 = /^[0-9a-f]{64}$/;

/**
 * S3 backend. Keys are object keys in `bucket` as they are, so folders such as process_input/,
 * ingestion_error/, emission/ or emission-error/ are plain key prefixes: the backend attaches no
 * meaning to any folder name.
 *
 * Writes stream through a multipart `Upload` (flat memory whatever the size), counted and hashed on
 * the way; the size and checksum checks run before the upload completes, so a refused body never
 * becomes visible (the multipart upload is aborted instead). The SHA-256 is kept as object metadata
 * so `head` returns it: sent up front when the caller declared it (and then verified before
 * commit), otherwise stamped on after commit by an in-place CopyObject guarded by the ETag.
 */
export function createS3Storage(options: S3StorageOptions): S3Storage {
  const config: S3ClientConfig = {
    region: options.region,
    forcePathStyle: options.forcePathStyle ?? false,
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    ...(options.credentials ? { credentials: options.credentials } : {}),
    // Why: the SDK's default CRC32 trailers (aws-chunked bodies) are not understood by many
    // S3-compatible servers; Sluice computes its own SHA-256 anyway.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // Why: without these a dead link hangs a request for minutes (Node's socket has no timeout).
    // socketTimeout is inactivity, so a large part on a slow but live link is not cut off;
    // requestTimeout only warns unless throwOnRequestTimeout is set.
    requestHandler: {
      connectionTimeout: options.connectTimeoutMs ?? 5000,
      socketTimeout: options.idleTimeoutMs ?? 30_000,
      requestTimeout: options.requestTimeoutMs ?? 120_000,
      throwOnRequestTimeout: true,
    },
  };
  const client = new S3Client(config);
  const { bucket } = options;
  const partSize = Math.max(options.partSizeBytes ?? defaultPartSize, 5 * MiB);
  const queueSize = options.queueSize ?? 2;
  const readAttempts = Math.max(1, options.readAttempts ?? 4);
  const aborters = new Set<() => Promise<void>>();
  let disposed = false;

  function checkOpen(): void {
    if (disposed) throw new StorageError('IO_ERROR', 'Storage has been disposed');
  }

  function openWriter(key: string, opts: PutOptions = {}): StorageWriter {
    checkOpen();
    assertValidKey(key);
    const body = new CheckedBody(key, opts);
    const declared = opts.expectedSha256?.toLowerCase();
    const upload = new Upload({
      client,
      params: {
        Bucket: bucket,
        Key: key,
        Body: body,
        ...(opts.contentType ? { ContentType: opts.contentType } : {}),
        ...(declared ? { Metadata: { [SHA256_META]: declared } } : {}),
      },
      partSize,
      queueSize,
      leavePartsOnError: false,
    });
    let aborted = false;
    const uploading = upload.done();
    const result = (async (): Promise<PutResult> => {
      let etag: string | undefined;
      try {
        etag = (await uploading).ETag;
      } catch (err) {
        throw body.failure ?? (aborted ? abortedError(key) : asStorageError(err, key, 'write'));
      }
      const sha256 = body.digest!;
      if (!declared) await recordSha256(key, sha256, body.received, etag, opts.contentType);
      return { key, size: body.received, sha256 };
    })();
    // Callers that never call done() must not see an unhandled rejection; those that do, get it.
    result.catch(() => undefined);
    const abort = async (): Promise<void> => {
      aborted = true;
      if (!body.destroyed) body.destroy();
      await upload.abort();
      await result.catch(() => undefined);
    };
    aborters.add(abort);
    void result.finally(() => aborters.delete(abort)).catch(() => undefined);
    return {
      key,
      stream: body,
      done: () => {
        if (!body.destroyed && !body.writableEnded) body.end();
        return result;
      },
      abort,
    };
  }

  /**
   * Best effort: the object is committed already, and `head` simply reports no sha256 when this
   * fails. The ETag guard makes sure a concurrent put of the same key is never stamped with our
   * checksum.
   */
  async function recordSha256(key: string, sha256: string, size: number, etag: string | undefined, contentType: string | undefined): Promise<void> {
    if (size > maxSingleCopyBytes || !etag) return;
    try {
      await client.send(
        new CopyObjectCommand({
          Bucket: bucket,
          Key: key,
          CopySource: `${bucket}/${encodeKey(key)}`,
          CopySourceIfMatch: etag,
          MetadataDirective: 'REPLACE',
          Metadata: { [SHA256_META]: sha256 },
          ...(contentType ? { ContentType: contentType } : {}),
        }),
      );
    } catch {
      // See above: no sha256 is better than a wrong one.
    }
  }

  async function put(key: string, body: Readable, opts: PutOptions = {}, onWriter?: (writer: StorageWriter) => void): Promise<PutResult> {
    const writer = openWriter(key, opts);
    onWriter?.(writer);
    return putThroughWriter(writer, body, (err) => asStorageError(err, key, 'write'));
  }

  async function getObject(key: string, range?: { from: number; etag: string | undefined }) {
    try {
      return await client.send(
        new GetObjectCommand({ Bucket: bucket, Key: key, ...(range ? { Range: `bytes=${range.from}-`, ...(range.etag ? { IfMatch: range.etag } : {}) } : {}) }),
      );
    } catch (err) {
      if (isMissing(err)) throw new StorageError('NOT_FOUND', `No object at ${JSON.stringify(key)}`, key);
      if (range && (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 412) {
        const changed = new StorageError('IO_ERROR', `Object ${JSON.stringify(key)} changed while it was being read`, key, { cause: err });
        notRetryable.add(changed);
        throw changed;
      }
      throw asStorageError(err, key, 'read');
    }
  }

  /**
   * The object's bytes. A connection that fails mid-body (reset, idle timeout) is not the end:
   * the read resumes with a Range request from the byte reached, pinned to the first response's
   * ETag, at most `readAttempts` requests in all; then it fails with IO_ERROR.
   */
  async function get(key: string): Promise<Readable> {
    checkOpen();
    assertValidKey(key);
    const first = await getObject(key);
    const etag = first.ETag;
    const size = first.ContentLength;
    async function* bytes(): AsyncGenerator<Buffer> {
      let offset = 0;
      let body = first.Body as Readable;
      for (let attempt = 1; ; attempt++) {
        let failure: unknown;
        try {
          for await (const chunk of body as AsyncIterable<Buffer>) {
            offset += chunk.length;
            yield chunk;
          }
          if (size === undefined || offset >= size) return;
          failure = new Error(`body ended after ${offset} of ${size} bytes`);
        } catch (err) {
          failure = err;
        }
        body.destroy();
        // Resume requests that fail are attempts too: a link that stays dead ends the read.
        for (;;) {
          if (attempt >= readAttempts) throw asStorageError(failure, key, `read (${attempt} attempts, ${offset} bytes received)`);
          await sleep(Math.min(100 * 2 ** (attempt - 1), 2000));
          if (disposed) throw abortedError(key);
          try {
            body = (await getObject(key, { from: offset, etag })).Body as Readable;
            break;
          } catch (err) {
            if (err instanceof StorageError && (err.code === 'NOT_FOUND' || notRetryable.has(err))) throw err;
            failure = err;
            attempt++;
          }
        }
      }
    }
    return Readable.from(bytes(), { objectMode: false });
  }

  async function head(key: string): Promise<HeadResult | undefined> {
    checkOpen();
    assertValidKey(key);
    try {
      const res = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      const sha256 = res.Metadata?.[SHA256_META]?.toLowerCase();
      return {
        size: res.ContentLength ?? 0,
        modifiedAt: res.LastModified ?? new Date(0),
        ...(sha256 && HEX_SHA256.test(sha256) ? { sha256 } : {}),
        ...(res.ContentType ? { contentType: res.ContentType } : {}),
      };
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw asStorageError(err, key, 'read');
    }
  }

  async function remove(key: string): Promise<void> {
    checkOpen();
    assertValidKey(key);
    try {
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    } catch (err) {
      if (!isMissing(err)) throw asStorageError(err, key, 'delete');
    }
  }

  async function* list(prefix: string): AsyncIterable<ListItem> {
    checkOpen();
    assertValidPrefix(prefix);
    let token: string | undefined;
    do {
      let page;
      try {
        page = await client.send(
          new ListObjectsV2Command({ Bucket: bucket, ...(prefix ? { Prefix: prefix } : {}), ...(token ? { ContinuationToken: token } : {}) }),
        );
      } catch (err) {
        throw asStorageError(err, prefix, 'list');
      }
      for (const o of page.Contents ?? []) {
        // Objects other tools put in the bucket under names Sluice would refuse are not listed,
        // as the local backend skips files it cannot name.
        if (o.Key && isValidKey(o.Key)) yield { key: o.Key, size: o.Size ?? 0, modifiedAt: o.LastModified ?? new Date(0) };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async function presignPut(key: string, opts: { expiresInSeconds: number; contentType?: string; size?: number; sha256?: string }): Promise<PresignedPut> {
    checkOpen();
    assertValidKey(key);
    const checksum = opts.sha256 ? Buffer.from(opts.sha256, 'hex').toString('base64') : undefined;
    const command = new PutObjectCommand({
      Bucket: bucket,
      Key: key,
      ...(opts.contentType ? { ContentType: opts.contentType } : {}),
      ...(opts.size !== undefined ? { ContentLength: opts.size } : {}),
      ...(checksum ? { ChecksumSHA256: checksum } : {}),
    });
    // Signing Content-Length and the SHA-256 checksum makes AWS S3 itself refuse a body of another
    // size or content. S3-compatible servers may not check them: the import verifies regardless.
    const url = await getSignedUrl(client, command, {
      expiresIn: opts.expiresInSeconds,
      signableHeaders: new Set(['content-type', 'content-length']),
      unhoistableHeaders: new Set(['x-amz-checksum-sha256']),
    });
    const headers: Record<string, string> = {};
    if (opts.contentType) headers['content-type'] = opts.contentType;
    if (checksum) headers['x-amz-checksum-sha256'] = checksum;
    return { url, method: 'PUT', headers };
  }

  async function verifiedSha256(key: string): Promise<string | undefined> {
    checkOpen();
    assertValidKey(key);
    try {
      const res = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key, ChecksumMode: 'ENABLED' }));
      const b64 = res.ChecksumSHA256;
      // A composite (per-part) checksum ends in `-<parts>` and is not the SHA-256 of the object.
      if (!b64 || b64.includes('-') || (res.ChecksumType && res.ChecksumType !== 'FULL_OBJECT')) return undefined;
      const hex = Buffer.from(b64, 'base64').toString('hex');
      return HEX_SHA256.test(hex) ? hex : undefined;
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw asStorageError(err, key, 'read');
    }
  }

  async function abortIncompleteUploads(olderThan: Date): Promise<number> {
    checkOpen();
    let aborted = 0;
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    do {
      let page;
      try {
        page = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }));
      } catch (err) {
        // s3rver and some S3-compatible servers do not implement it: nothing to sweep there.
        if ((err as { name?: string }).name === 'NotImplemented') return aborted;
        throw asStorageError(err, '', 'list of incomplete uploads');
      }
      for (const u of page.Uploads ?? []) {
        // Only Sluice's own keys: the bucket may be shared with other tools.
        if (!u.Key || !u.UploadId || !isValidKey(u.Key) || !u.Initiated || u.Initiated >= olderThan) continue;
        // Age is the only sign of staleness S3 gives: the bound must exceed the longest real upload.
        try {
          await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key, UploadId: u.UploadId }));
          aborted++;
        } catch (err) {
          if (!isMissing(err)) throw asStorageError(err, u.Key, 'abort of an incomplete upload');
        }
      }
      keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
      uploadIdMarker = page.IsTruncated ? page.NextUploadIdMarker : undefined;
    } while (keyMarker);
    return aborted;
  }

  async function dispose(): Promise<void> {
    disposed = true;
    await Promise.all([...aborters].map((abort) => abort()));
    client.destroy();
  }

  return { bucket, put, openWriter, get, head, delete: remove, list, presignPut, verifiedSha256, abortIncompleteUploads, dispose };
}

/** Counts, hashes and checks the bytes on their way to the multipart upload. */
class CheckedBody extends Transform {
  // Why not `size`: lib-storage reads `Body.size` as the total length of the body.
  received = 0;
  digest: string | undefined;
  /** The check that failed, so the caller sees it rather than the upload's wrapping of it. */
  failure: StorageError | undefined;
  private readonly hash = createHash('sha256');

  constructor(
    private readonly key: string,
    private readonly opts: PutOptions,
  ) {
    // Above the 64 KiB chunks a request delivers, so a chunk does not pause its source by itself.
    super({ highWaterMark: 1 * MiB });
    // The error reaches callers through done() and pipeline(); without a listener, an 'error'
    // event on a stream written to directly would crash the process.
    this.on('error', () => undefined);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const next = this.received + chunk.length;
    try {
      checkGrowth(this.key, next, this.opts);
    } catch (err) {
      callback(this.fail(err));
      return;
    }
    this.hash.update(chunk);
    this.received = next;
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    const sha256 = this.hash.digest('hex');
    try {
      checkComplete(this.key, this.received, sha256, this.opts);
    } catch (err) {
      callback(this.fail(err));
      return;
    }
    this.digest = sha256;
    callback();
  }

  private fail(err: unknown): StorageError {
    this.failure = err as StorageError;
    return this.failure;
  }
}

/** S3 copy sources are URL-encoded; keys here are ASCII letters, digits, `_ . -`, space and `/`. */
function encodeKey(key: string): string {
  return key.split('/').map(encodeURIComponent).join('/');
}

/** Read errors a resumed request cannot fix (the object changed). */
const notRetryable = new WeakSet<StorageError>();

function abortedError(key: string): StorageError {
  return new StorageError('IO_ERROR', `Write of ${JSON.stringify(key)} was aborted`, key);
}

function isMissing(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } } | null;
  return e?.name === 'NoSuchKey' || e?.name === 'NotFound' || e?.$metadata?.httpStatusCode === 404;
}

/** Keeps typed errors; wraps everything else (network, access denied, a failing body) as IO_ERROR. */
function asStorageError(err: unknown, key: string, action: string): StorageError {
  if (err instanceof StorageError) return err;
  const e = err as { name?: string; code?: string; $metadata?: { httpStatusCode?: number } } | null;
  const status = e?.$metadata?.httpStatusCode;
  // Node's socket errors are all named "Error"; their code (ECONNRESET, ETIMEDOUT) says more.
  const name = e?.name && e.name !== 'Error' ? e.name : (e?.code ?? e?.name ?? 'unknown error');
  const reason = [name, status ? `HTTP ${status}` : undefined].filter(Boolean).join(', ');
  // Names the key and the S3 error name, never the endpoint or credentials: the message may reach clients.
  return new StorageError('IO_ERROR', `Storage ${action} of ${JSON.stringify(key)} failed (${reason})`, key, { cause: err });
}
