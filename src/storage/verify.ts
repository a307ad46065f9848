import { createHash } from 'node:crypto';
import { read } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { pipeline, Readable, Transform, type TransformCallback } from 'node:stream';
import { checkComplete, checkGrowth, fileSystemStorageError, StorageError, type ObjectStorage, type PutOptions } from './storage';

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

/** A stored file open for reading, as a thread can read it: its descriptor, key and record. */
export interface StoredFileSource {
  /** An open descriptor of the object's file (positioned reads only; the opener closes it). */
  fd: number;
  key: string;
  expected: ExpectedObject;
}

/**
 * One positioned read of up to `buf.length` bytes of a stored file at `position` (any thread may
 * share the descriptor); a read error is an IO_ERROR naming the key. Resolves with the bytes read.
 */
export function readAt(source: { fd: number; key: string }, buf: Buffer, position: number): Promise<number> {
  return new Promise<number>((resolve, reject) =>
    read(source.fd, buf, 0, buf.length, position, (err, n) => (err ? reject(fileSystemStorageError(err, source.key, 'read')) : resolve(n))),
  );
}

/** Bytes per read of readStoredFile. */
export const STORED_FILE_CHUNK_BYTES = 256 * 1024;

/**
 * The bytes of a stored file, read from its start with positioned reads (so any number of
 * readers, on any thread, may share the descriptor), counted and hashed, and checked against the
 * record as VerifyingStream checks them: SIZE_MISMATCH past the recorded size as soon as it is
 * read, SIZE_MISMATCH or CHECKSUM_MISMATCH before the end is reported. A read error is an
 * IO_ERROR naming the key. Each chunk is fresh memory (a consumer may keep it).
 */
export async function* readStoredFile(source: StoredFileSource, chunkBytes = STORED_FILE_CHUNK_BYTES): AsyncGenerator<Buffer> {
  const opts = putOptions(source.expected);
  const hash = createHash('sha256');
  let position = 0;
  for (;;) {
    const buf = Buffer.allocUnsafeSlow(chunkBytes);
    const bytesRead = await readAt(source, buf, position);
    if (bytesRead === 0) break;
    position += bytesRead;
    checkGrowth(source.key, position, opts);
    const chunk = bytesRead === chunkBytes ? buf : buf.subarray(0, bytesRead);
    hash.update(chunk);
    yield chunk;
  }
  checkComplete(source.key, position, hash.digest('hex'), opts);
}

/**
 * A stored local file as a verified stream (what verifyingRead gives for other backends), which a
 * reader on another thread can take over instead: `claim()` hands out the descriptor once, before
 * anything was read here (see ingest/pipeline-thread.ts); that reader verifies the bytes itself
 * and reports it with `markVerified()`. Destroying the stream closes the file.
 */
export class StoredFileStream extends Readable {
  private chunks: AsyncGenerator<Buffer> | null = null;
  private claimed = false;
  private ok = false;
  private reading = false;

  constructor(
    private readonly handle: FileHandle,
    readonly key: string,
    private readonly expected: ExpectedObject,
  ) {
    super({ highWaterMark: STORED_FILE_CHUNK_BYTES });
  }

  /** True once every byte has been read and matched the record (here or by the claimant). */
  get verified(): boolean {
    return this.ok;
  }

  /** The file for a reader elsewhere, once, if this stream has read nothing; null otherwise. */
  claim(): StoredFileSource | null {
    if (this.claimed || this.chunks !== null || this.destroyed) return null;
    this.claimed = true;
    return this.source();
  }

  private source(): StoredFileSource {
    return { fd: this.handle.fd, key: this.key, expected: this.expected };
  }

  /** The claimant read every byte and they matched the record. */
  markVerified(): void {
    if (this.claimed) this.ok = true;
  }

  override _read(): void {
    if (this.claimed) {
      this.destroy(new Error(`${JSON.stringify(this.key)} is being read by another reader`));
      return;
    }
    if (this.reading) return;
    this.chunks ??= readStoredFile(this.source());
    this.reading = true;
    this.chunks.next().then(
      (next) => {
        this.reading = false;
        if (next.done) {
          this.ok = true;
          this.push(null);
        } else if (this.push(next.value)) this._read();
      },
      (err: unknown) => {
        this.reading = false;
        this.destroy(err as Error);
      },
    );
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.handle.close().then(
      () => callback(err),
      () => callback(err),
    );
  }
}
