import { createHash } from 'node:crypto';
import { pipeline, Transform, type Readable, type TransformCallback } from 'node:stream';
import { checkComplete, checkGrowth, StorageError, type ObjectStorage, type PutOptions } from './storage';

/** What was recorded about an object when it was stored; `null` = not recorded, not checked. */
export interface ExpectedObject {
  /** Bytes. */
  size: number | null;
  /** Lowercase or uppercase hex SHA-256. */
  sha256: string | null;
}

/** True for the errors that mean "the stored bytes are not the bytes that were recorded". */
export function isCorruptionError(err: unknown): err is StorageError {
  return err instanceof StorageError && (err.code === 'CHECKSUM_MISMATCH' || err.code === 'SIZE_MISMATCH');
}

function putOptions(expected: ExpectedObject): PutOptions {
  return {
    ...(expected.size !== null ? { expectedSize: expected.size } : {}),
    ...(expected.sha256 !== null ? { expectedSha256: expected.sha256 } : {}),
  };
}

/**
 * Passes an object's bytes through unchanged while counting and hashing them, and fails the
 * stream (SIZE_MISMATCH, CHECKSUM_MISMATCH) when they are not what was recorded at upload: past
 * the recorded size as soon as the first extra byte arrives, otherwise at the end. Why fail in
 * `_flush`: a stream emits 'end' only after it, so a consumer (the CSV pipeline inside the COPY
 * transaction) can never see a complete, unverified input; the error reaches it first and its
 * transaction rolls back.
 */
export class VerifyingStream extends Transform {
  private readonly hash = createHash('sha256');
  private readonly opts: PutOptions;
  private received = 0;
  private ok = false;

  constructor(
    readonly key: string,
    expected: ExpectedObject,
  ) {
    super();
    this.opts = putOptions(expected);
  }

  /** True once every byte has passed and matched the record. */
  get verified(): boolean {
    return this.ok;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      checkGrowth(this.key, this.received + chunk.length, this.opts);
    } catch (err) {
      callback(err as Error);
      return;
    }
    this.received += chunk.length;
    this.hash.update(chunk);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    try {
      checkComplete(this.key, this.received, this.hash.digest('hex'), this.opts);
    } catch (err) {
      callback(err as Error);
      return;
    }
    this.ok = true;
    callback();
  }
}

/**
 * `body` (a stored object being read) through a VerifyingStream. A failure of `body` (a reset
 * connection) fails the returned stream, and destroying the returned stream (a reader that stops
 * early) releases `body`.
 */
export function verifyingRead(body: Readable, key: string, expected: ExpectedObject): VerifyingStream {
  const verifier = new VerifyingStream(key, expected);
  // The callback form: errors are delivered to the streams (destroyed with it), not thrown.
  pipeline(body, verifier, () => undefined);
  return verifier;
}

/**
 * Reads `key` whole and checks it against `expected` (throws SIZE_MISMATCH or CHECKSUM_MISMATCH).
 * For a reader that stopped early (a bad header fails a file on its first line): the rest was
 * never hashed, so the object is read again from the start.
 */
export async function verifyStoredObject(storage: ObjectStorage, key: string, expected: ExpectedObject): Promise<void> {
  const opts = putOptions(expected);
  const hash = createHash('sha256');
  let received = 0;
  for await (const chunk of await storage.get(key)) {
    received += (chunk as Buffer).length;
    checkGrowth(key, received, opts);
    hash.update(chunk as Buffer);
  }
  checkComplete(key, received, hash.digest('hex'), opts);
}

/**
 * Compares an object's stored size with the record before reading it: a truncated or extended
 * object is refused without reading a byte. `head` failing is left to the read that follows.
 */
export async function checkStoredSize(storage: ObjectStorage, key: string, expected: ExpectedObject): Promise<void> {
  if (expected.size === null) return;
  const head = await storage.head(key).catch(() => undefined);
  if (head && head.size !== expected.size) {
    throw new StorageError('SIZE_MISMATCH', `${JSON.stringify(key)} has ${head.size} bytes in storage; ${expected.size} bytes were recorded at upload`, key);
  }
}
