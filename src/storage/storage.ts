import type { FileHandle } from 'node:fs/promises';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/**
 * Object storage, shaped like S3 so the local-disk backend and the S3 backend are interchangeable:
 * flat string keys, whole-object writes that are invisible until complete, prefix listing.
 * Raw uploads land here before processing starts, so a crash loses nothing.
 */
export interface ObjectStorage {
  /**
   * Streams `body` into `key`, hashing and counting as it goes (memory stays flat whatever the
   * size). Nothing is visible under `key` until every check has passed; on any failure nothing is
   * left behind. Replaces an existing object atomically.
   */
  /** `onWriter` sees the writer before the first byte is written (to follow its GrowingFile). */
  put(key: string, body: Readable, opts?: PutOptions, onWriter?: (writer: StorageWriter) => void): Promise<PutResult>;
  /**
   * For producers that write incrementally (a CSV written row by row). Same guarantees as `put`:
   * the object appears only when `done()` resolves; `abort()` leaves nothing behind.
   */
  openWriter(key: string, opts?: PutOptions): StorageWriter;
  /** Reads an object; rejects with NOT_FOUND when it does not exist. */
  get(key: string): Promise<Readable>;
  /**
   * Backends that keep objects as local files: the object's file, open for reading (NOT_FOUND as
   * `get`). The caller closes it. Lets a reader on another thread read the object itself.
   */
  openFile?(key: string): Promise<FileHandle>;
  /**
   * Backends that keep objects as local files: a new object under `toKey` holding the bytes of
   * `fromKey`, made by the file system without the bytes passing through this process: a second
   * name for the same file where it can (objects are never changed in place, so the two stay
   * independent objects; the new one's modification time is the source's), else a clone or a
   * copy made by the kernel. Same guarantees as `put`: nothing is visible under `toKey` until
   * the copy is complete and durable; a source that is not `expected.size` bytes is refused
   * (SIZE_MISMATCH) and leaves nothing behind. `expected.sha256` is the source's SHA-256, which the
   * caller has checked (it read and verified the source): it is recorded for the copy.
   */
  copy?(fromKey: string, toKey: string, expected: { size: number; sha256: string }, opts?: Pick<PutOptions, 'contentType'>): Promise<PutResult>;
  /** Metadata without the body; `undefined` when the object does not exist. */
  head(key: string): Promise<HeadResult | undefined>;
  /** Removes an object. Deleting a missing key succeeds, as in S3. */
  delete(key: string): Promise<void>;
  /**
   * Every object whose key starts with `prefix` (a plain string prefix, as in S3, so `a/b` matches
   * `a/b.csv` and `a/b/c.csv`), in ascending byte order of key. `''` lists everything.
   */
  list(prefix: string): AsyncIterable<ListItem>;
}

export interface PutOptions {
  /** MIME type recorded with the object (returned by `head`). */
  contentType?: string;
  /** Refuse (PAYLOAD_TOO_LARGE) as soon as more than this many bytes arrive. Default: no limit. */
  maxBytes?: number;
  /** Lowercase or uppercase hex SHA-256 the body must have (CHECKSUM_MISMATCH otherwise). */
  expectedSha256?: string;
  /** Exact byte count the body must have (SIZE_MISMATCH otherwise, raised as early as possible). */
  expectedSize?: number;
}

export interface PutResult {
  key: string;
  /** Bytes stored. */
  size: number;
  /** Lowercase hex SHA-256 of the bytes stored. */
  sha256: string;
}

export interface HeadResult {
  /** Bytes. */
  size: number;
  /** Lowercase hex SHA-256, when the backend recorded it at write time. */
  sha256?: string;
  contentType?: string;
  modifiedAt: Date;
}

export interface ListItem {
  key: string;
  /** Bytes. */
  size: number;
  modifiedAt: Date;
}

/**
 * An object being written piece by piece. Write to `stream` (or pipe into it), then await
 * `done()`; until it resolves nothing is visible under the key.
 */
export interface StorageWriter {
  readonly key: string;
  readonly stream: Writable;
  /** Ends the stream if the caller has not, waits until the object is committed. */
  done(): Promise<PutResult>;
  /** Discards everything written so far. Safe to call at any time, also after a failure. */
  abort(): Promise<void>;
  /**
   * The object's file while it is being written, for a reader that follows it (local storage
   * only; see modules/files/load-during-upload.ts); absent where the backend has no such file.
   */
  readonly growing?: GrowingFile;
}

/** What happened to a file being written (GrowingFile.watch). */
export type GrowingFileEvent =
  /** `written` bytes from the start are in the file (readable; not yet fsynced). */
  | { t: 'grown'; written: number }
  /** The object is committed: fsynced, renamed onto its key, with this size and SHA-256. */
  | { t: 'stored'; result: PutResult }
  /** The write failed or was aborted: the file is gone. */
  | { t: 'lost' };

/** A file being written by a StorageWriter, readable as it grows. */
export interface GrowingFile {
  /** Bytes in the file so far. */
  readonly written: number;
  /** The write's end, once it came: the object's record, or null when the write failed. */
  readonly outcome: PutResult | null | undefined;
  /** Opens the file for positioned reads (on any thread); the caller closes it. Valid after a rename too. */
  openForReading(): Promise<import('node:fs/promises').FileHandle>;
  /** Calls `listener` after every write and at the end; returns the unsubscribe. */
  watch(listener: (e: GrowingFileEvent) => void): () => void;
}

export type StorageErrorCode =
  /** `get` of a key that holds no object. */
  | 'NOT_FOUND'
  /** The key or prefix fails validation (see `assertValidKey`). */
  | 'INVALID_KEY'
  /** The body exceeded `maxBytes`. */
  | 'PAYLOAD_TOO_LARGE'
  /** The body's SHA-256 differs from `expectedSha256`. */
  | 'CHECKSUM_MISMATCH'
  /** The body's size differs from `expectedSize`. */
  | 'SIZE_MISMATCH'
  /** The backend has no room left (local disk full: ENOSPC, or over quota: EDQUOT). */
  | 'STORAGE_FULL'
  /** The backend failed (permissions, network), or the body stream itself failed. */
  | 'IO_ERROR';

/** Every error a storage backend raises. Callers branch on `code`, never on the message. */
export class StorageError extends Error {
  constructor(
    readonly code: StorageErrorCode,
    message: string,
    readonly key?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'StorageError';
  }
}

/**
 * Keeps typed errors; wraps everything else (a file system error, a failing body stream) as
 * STORAGE_FULL or IO_ERROR, by its errno (local storage, and a stored file read on another thread).
 */
export function fileSystemStorageError(err: unknown, key: string, action: string): StorageError {
  if (err instanceof StorageError) return err;
  const errno = typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : 'unknown error';
  if (errno === 'ENOSPC' || errno === 'EDQUOT') {
    return new StorageError('STORAGE_FULL', `Storage ${action} of ${JSON.stringify(key)} failed: no space left (${errno})`, key, { cause: err });
  }
  // Names the key and the errno code, never the absolute path: the message may reach clients.
  return new StorageError('IO_ERROR', `Storage ${action} of ${JSON.stringify(key)} failed (${errno})`, key, { cause: err });
}

/** Longest key accepted, in UTF-8 bytes (S3's own limit). */
export const maxKeyBytes = 1024;
/**
 * Longest key segment, in bytes. Below the usual 255-byte file name limit so the local backend can
 * derive temp and sidecar names from a segment.
 */
export const maxSegmentBytes = 200;

/**
 * The allowlist for one key segment: ASCII letters, digits, `_`, and after the first character
 * also `.`, `-` and space, not ending in `.` or space.
 *
 * Why so narrow: keys become file names on every platform the local backend may run on, and URL
 * paths in S3. Starting with a letter, digit or `_` rules out `.`, `..` and hidden names (which the
 * local backend reserves for its temp and sidecar files) and leading `-` (option injection in shell
 * tools). No trailing dot or space because Windows silently strips them, making two keys one file.
 */
const segmentPattern = /^[A-Za-z0-9_](?:[A-Za-z0-9_. -]*[A-Za-z0-9_-])?$/;
/** Characters a prefix's last, partial segment may contain. */
const partialSegmentPattern = /^[A-Za-z0-9_. -]*$/;

/**
 * Throws INVALID_KEY unless `key` is `segment/segment/...` with every segment matching the
 * allowlist above: no absolute paths, no `..` or `.`, no backslashes, no NUL, no empty segments
 * (so no leading, trailing or doubled `/`), at most `maxKeyBytes`.
 */
export function assertValidKey(key: string): void {
  const problem = keyProblem(key);
  if (problem) throw new StorageError('INVALID_KEY', `Invalid storage key ${JSON.stringify(key)}: ${problem}`, key);
}

/**
 * Throws INVALID_KEY unless `prefix` is `''` or a valid key cut anywhere: its complete segments
 * follow the key rules, its last segment may be partial (`reports/2024-0`).
 */
export function assertValidPrefix(prefix: string): void {
  if (prefix === '') return;
  const cut = prefix.lastIndexOf('/');
  const problem =
    (cut >= 0 ? keyProblem(prefix.slice(0, cut)) : undefined) ??
    (partialSegmentPattern.test(prefix.slice(cut + 1)) ? undefined : 'last segment has characters outside [A-Za-z0-9_. -]') ??
    (Buffer.byteLength(prefix, 'utf8') > maxKeyBytes ? `longer than ${maxKeyBytes} bytes` : undefined);
  if (problem) {
    throw new StorageError('INVALID_KEY', `Invalid storage prefix ${JSON.stringify(prefix)}: ${problem}`, prefix);
  }
}

/** `true` when `key` passes `assertValidKey`. */
export function isValidKey(key: string): boolean {
  return keyProblem(key) === undefined;
}

function keyProblem(key: string): string | undefined {
  if (typeof key !== 'string' || key === '') return 'empty';
  // Specific reasons first: they make the message useful to whoever built the key.
  if (key.includes('\0')) return 'contains NUL';
  if (key.includes('\\')) return 'contains a backslash';
  if (key.startsWith('/') || /^[A-Za-z]:/.test(key)) return 'absolute path';
  const bytes = Buffer.byteLength(key, 'utf8');
  if (bytes > maxKeyBytes) return `${bytes} bytes, longer than the limit of ${maxKeyBytes} bytes`;
  for (const segment of key.split('/')) {
    if (segment === '') return 'empty segment (leading, trailing or doubled "/")';
    if (segment === '..' || segment === '.') return `"${segment}" segment`;
    if (Buffer.byteLength(segment, 'utf8') > maxSegmentBytes) {
      return `segment longer than the limit of ${maxSegmentBytes} bytes`;
    }
    if (!segmentPattern.test(segment)) {
      return `segment ${JSON.stringify(segment)} must start with A-Za-z0-9_, use only A-Za-z0-9_. - and not end in "." or space`;
    }
  }
  return undefined;
}

/** What a client needs to upload one object straight to the store, bypassing Sluice. */
export interface PresignedPut {
  url: string;
  method: 'PUT';
  /** Headers the client must send exactly as given (they are part of the signature). */
  headers: Record<string, string>;
}

/**
 * A backend that can hand out upload URLs of its own (S3). The local backend cannot: Sluice then
 * serves the upload itself (`PUT /uploads/<fileId>`).
 */
export interface PresigningStorage {
  /**
   * A URL that accepts one PUT of `key` until `expiresInSeconds` pass. `size`, `sha256` and
   * `contentType` are signed in where the service can enforce them (S3 checks the length and the
   * SHA-256 checksum itself); callers must still verify the object before trusting it.
   */
  presignPut(key: string, opts: { expiresInSeconds: number; contentType?: string; size?: number; sha256?: string }): Promise<PresignedPut>;
  /**
   * Lowercase hex SHA-256 of the object as computed and verified by the storage service itself
   * (S3 additional checksums), or `undefined` when the service has none. Never client-supplied
   * metadata: an uploader with a presigned URL may be able to choose that.
   */
  verifiedSha256(key: string): Promise<string | undefined>;
}

/**
 * A backend that can be left with debris by a crash mid-write (the local disk: `.tmp-*` files of
 * interrupted writes, folders emptied by deletes). S3 writes leave none of that.
 */
export interface LeftoverSweeping {
  /**
   * Deletes temp files last written before `olderThan` and empty folders last changed before it
   * (never the root, never a live write of this process). Returns what was removed.
   */
  sweepLeftovers(olderThan: Date): Promise<{ tempFiles: number; folders: number }>;
}

export function sweepsLeftovers(storage: ObjectStorage): storage is ObjectStorage & LeftoverSweeping {
  return typeof (storage as Partial<LeftoverSweeping>).sweepLeftovers === 'function';
}

export function isPresigning(storage: ObjectStorage): storage is ObjectStorage & PresigningStorage {
  return typeof (storage as Partial<PresigningStorage>).presignPut === 'function';
}

/**
 * The checks every backend applies while bytes arrive: throws PAYLOAD_TOO_LARGE past `maxBytes`
 * and SIZE_MISMATCH as soon as the body is longer than `expectedSize` (rather than after storing
 * all of it). `next` is the byte count including the chunk about to be accepted.
 */
export function checkGrowth(key: string, next: number, opts: PutOptions): void {
  if (opts.maxBytes !== undefined && next > opts.maxBytes) {
    throw new StorageError('PAYLOAD_TOO_LARGE', `${JSON.stringify(key)} exceeds the limit of ${opts.maxBytes} bytes`, key);
  }
  if (opts.expectedSize !== undefined && next > opts.expectedSize) {
    throw new StorageError('SIZE_MISMATCH', `${JSON.stringify(key)} is longer than the expected ${opts.expectedSize} bytes`, key);
  }
}

/** The checks every backend applies once the body has ended, before anything becomes visible. */
export function checkComplete(key: string, size: number, sha256: string, opts: PutOptions): void {
  if (opts.expectedSize !== undefined && size !== opts.expectedSize) {
    throw new StorageError('SIZE_MISMATCH', `${JSON.stringify(key)} has ${size} bytes, expected ${opts.expectedSize} bytes`, key);
  }
  if (opts.expectedSha256 !== undefined && opts.expectedSha256.toLowerCase() !== sha256) {
    throw new StorageError('CHECKSUM_MISMATCH', `${JSON.stringify(key)} has SHA-256 ${sha256}, expected ${opts.expectedSha256}`, key);
  }
}

/**
 * `put` for backends built on `openWriter`: pipes `body` into the writer and commits; any failure
 * (the body's, the writer's) aborts the write and is rethrown through `wrap` as a StorageError.
 */
export async function putThroughWriter(writer: StorageWriter, body: Readable, wrap: (err: unknown) => StorageError): Promise<PutResult> {
  try {
    await pipeline(body, writer.stream);
  } catch (err) {
    await writer.abort();
    throw wrap(err);
  }
  return writer.done();
}
