import type { CsvDialectOptions } from '../../ingest/csv-dialect';
import { createHash, randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Viewer } from '../../shared/auth';
import { isUuid } from '../../shared/cursor';
import { BadInputError, ErrorCode, NotFoundError, PayloadTooLargeError, RateLimitedError, SluiceError, sluiceErrorIn, StorageFullError } from '../../shared/errors';
import { addressKey, FailureLimiter } from '../../shared/rate-limit';
import type { Logger } from '../../shared/logger';
import type { Metrics } from '../../shared/metrics';
import { sweepsIncompleteUploads } from '../../storage/s3';
import { isPresigning, isValidKey, StorageError, sweepsLeftovers, type ObjectStorage } from '../../storage/storage';
import { isTerminal } from '../jobs/job-state';
import type { Job } from '../jobs/jobs.store';
import type { JobsService } from '../jobs/jobs.service';
import type { SpecsService } from '../specs/specs.service';
import { checkIdempotencyKey, checkProgram, INGEST_FILE_JOB, INGEST_ZIP_JOB, type FilesService } from './files.service';
import type { FileRecord, FilesStore, OnDuplicateContent, OnInvalidRows } from './files.store';
import { uploadMode, type IngestMode } from './ingest-mode';
import type { SignedUploadsStore } from './signed-uploads.store';
import { checkPolicyAgainst, DEFAULT_HEADER_POLICY, policyToJson, type HeaderPolicy } from './header-policy';
import { storageKeys } from './storage-keys';
import { UploadUrlSigner, wholeSeconds } from './upload-token';
import { codeValues } from '../../shared/codes';

/**
 * `extensions.reason` of signed-upload errors, next to the `code`: what exactly went wrong.
 * Clients branch on these, never on messages.
 */
export const UPLOAD_ERROR_REASONS = {
  UPLOAD_URL_INVALID: 'The token of a Sluice upload URL is missing, malformed or does not match the file id and expiry (tampered).',
  UPLOAD_URL_EXPIRED: 'The upload URL\'s expiry has passed (or the file expired).',
  UPLOAD_URL_USED: 'The upload URL was already used by a successful PUT.',
  UPLOAD_IN_PROGRESS: 'Another PUT to this URL is still running.',
  NOT_UPLOADED: 'importFile before the object was uploaded.',
  SIZE_MISMATCH: 'The body or stored object does not have the declared size.',
  CHECKSUM_MISMATCH: 'The body or stored object does not have the declared SHA-256.',
  NOT_A_SIGNED_UPLOAD: 'importFile on a file that was uploaded directly (uploadFile), not through requestUploadUrl.',
  IDEMPOTENCY_KEY_USED: 'requestUploadUrl with an idempotency key whose file is no longer waiting for its upload.',
} as const;
export type UploadErrorReason = keyof typeof UPLOAD_ERROR_REASONS;
export const UploadErrorReason = codeValues(UPLOAD_ERROR_REASONS);

export type ImportMode = 'SYNC' | 'ASYNC';

export interface RequestUploadInput {
  kind: 'CSV' | 'ZIP';
  fileName: string;
  program: string | null;
  spec: string | null;
  specVersion?: number | null;
  contentType?: string | null;
  size: number;
  sha256: string;
  folder?: string | null;
  tags?: string[] | null;
  metadata?: unknown;
  idempotencyKey?: string | null;
  onInvalidRows: OnInvalidRows;
}

export interface UploadUrl {
  file: FileRecord;
  url: string;
  method: 'PUT';
  headers: Record<string, string>;
  expiresAt: Date;
  created: boolean;
}

export interface SignedUploadsConfig {
  /** Lifetime of an upload URL, in seconds. */
  urlTtlSeconds: number;
  /** After the URL expires, how long the file may still be imported, in seconds. */
  graceSeconds: number;
  /** Age after which the sweep deletes local storage temp files and empty folders, in seconds. */
  staleTempSeconds?: number;
  /** Largest accepted file, in bytes. */
  maxFileBytes: number;
  /** Longest importFile(SYNC) wait, in milliseconds. */
  syncMaxWaitMs: number;
  /** Base URL of Sluice's own upload URLs (SLUICE_PUBLIC_URL); else set by `useListenUrl`. */
  publicUrl?: string;
  /** Incomplete S3 multipart uploads older than this are aborted by the orphan sweep, in seconds. Default 1 day. */
  incompleteUploadMaxAgeSeconds?: number;
  /** PUTs with a tampered upload URL token allowed per address and per file id in any 60 s. Default 10. */
  maxTokenFailuresPerMinute?: number;
}

const FILE_NAME_MAX = 255;
const CONTENT_TYPE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}(?:\s*;\s*[A-Za-z0-9_.-]+=[A-Za-z0-9_.-]+)*$/;
const SHA256_HEX = /^[0-9a-fA-F]{64}$/;
const TAG = /^[A-Za-z0-9_.:-]{1,64}$/;
const MAX_TAGS = 20;
/** Bytes of the metadata object as JSON. */
const MAX_METADATA_BYTES = 4096;
/** Objects per batch of the orphan sweep's database look-up. */
const ORPHAN_BATCH = 500;
/** `uploads/<YYYY-MM-DD>/<file id>/<name>`, see storageKeys.raw. */
const RAW_KEY = /^uploads\/\d{4}-\d{2}-\d{2}\/([0-9a-f-]{36})\/[^/]+$/;

function uploadError(code: ErrorCode, reason: UploadErrorReason, message: string, details: Record<string, unknown> = {}): SluiceError {
  return new SluiceError(code, message, { reason, ...details });
}

/**
 * The signed-URL flow (replacing the "appfile" system): requestUploadUrl hands out a URL for one
 * PUT (an S3 presigned URL, or Sluice's own HMAC-signed URL), importFile checks the object against
 * the declared size and SHA-256 and queues the same ingestion job as a direct upload, and the
 * sweeps expire files that were never imported and delete upload objects no file refers to.
 */
export class SignedUploadsService {
  private readonly signer: UploadUrlSigner;
  private readonly tokenFailures: FailureLimiter;
  private baseUrl: string | undefined;

  constructor(
    private readonly store: SignedUploadsStore,
    private readonly files: FilesService,
    private readonly filesStore: FilesStore,
    private readonly specs: SpecsService,
    private readonly jobs: JobsService,
    private readonly storage: ObjectStorage,
    private readonly log: Logger,
    private readonly config: SignedUploadsConfig,
    secret: string,
    private readonly metrics?: Metrics,
  ) {
    this.signer = new UploadUrlSigner(secret);
    this.tokenFailures = new FailureLimiter({ maxFailures: config.maxTokenFailuresPerMinute ?? 10, windowMs: 60_000 });
    this.baseUrl = config.publicUrl?.replace(/\/+$/, '');
  }

  /** The address the HTTP server listens on, used for Sluice's own URLs when SLUICE_PUBLIC_URL is unset. */
  useListenUrl(url: string): void {
    this.baseUrl ??= url.replace(/\/+$/, '');
  }

  async requestUploadUrl(viewer: Viewer, input: RequestUploadInput): Promise<UploadUrl> {
    const v = this.validate(input);
    const spec = input.kind === 'CSV' ? await this.specs.get(input.spec!, input.specVersion) : null;
    const id = randomUUID();
    const now = new Date();
    const expiresAt = wholeSeconds(new Date(now.getTime() + this.config.urlTtlSeconds * 1000));
    const file = await this.store.insertPending({
      id,
      kind: input.kind,
      specId: spec?.id ?? null,
      program: input.program ?? null,
      fileName: input.fileName,
      contentType: v.contentType,
      storageKey: storageKeys.raw(id, input.fileName, now),
      declaredSize: input.size,
      declaredSha256: v.sha256,
      expiresAt,
      onInvalidRows: input.onInvalidRows,
      idempotencyKey: input.idempotencyKey ?? null,
      folder: input.folder ?? null,
      tags: v.tags,
      metadata: v.metadata,
      createdBy: viewer.clientId,
    });
    if (file) {
      this.log.info({ fileId: id, size: input.size, expiresAt, by: viewer.clientId }, 'upload URL issued');
      return { file, ...(await this.urlFor(file)), created: true };
    }
    // The key was used before: the same URL again while that file still waits for its bytes.
    const existing = await this.refresh((await this.filesStore.byIdempotencyKey(viewer.clientId, input.idempotencyKey!))!);
    if (existing.uploadState === 'PENDING_UPLOAD' && existing.uploadExpiresAt && existing.uploadExpiresAt > new Date()) {
      return { file: existing, ...(await this.urlFor(existing)), created: false };
    }
    throw uploadError(
      ErrorCode.CONFLICT,
      UploadErrorReason.IDEMPOTENCY_KEY_USED,
      `idempotencyKey ${JSON.stringify(input.idempotencyKey)} already named file ${existing.id}, which is ${existing.uploadState ?? 'a direct upload'}; use a new key`,
      { fileId: existing.id },
    );
  }

  private validate(input: RequestUploadInput) {
    const bad = (field: string, message: string) => new BadInputError(message, { field });
    if (input.fileName.length === 0 || input.fileName.length > FILE_NAME_MAX || /[\u0000-\u001f\u007f]/.test(input.fileName)) {
      throw bad('fileName', `fileName must be 1-${FILE_NAME_MAX} characters without control characters`);
    }
    if (input.kind === 'CSV') {
      if (input.program == null || input.spec == null) throw bad(input.program == null ? 'program' : 'spec', 'A CSV upload needs program and spec');
      checkProgram(input.program);
    } else if (input.program != null || input.spec != null) {
      throw bad(input.program != null ? 'program' : 'spec', 'A national program ZIP takes neither program nor spec: each CSV inside names its spec');
    }
    checkIdempotencyKey(input.idempotencyKey);
    if (!Number.isSafeInteger(input.size) || input.size < 0) throw bad('size', `size must be a whole number of bytes, got ${input.size}`);
    if (input.size > this.config.maxFileBytes) {
      throw new PayloadTooLargeError(`size ${input.size} exceeds the limit of ${this.config.maxFileBytes} bytes`, { limitBytes: this.config.maxFileBytes, field: 'size' });
    }
    if (!SHA256_HEX.test(input.sha256)) throw bad('sha256', 'sha256 must be 64 hexadecimal characters (the SHA-256 of the file)');
    const contentType = input.contentType ?? (input.kind === 'ZIP' ? 'application/zip' : 'text/csv');
    if (!CONTENT_TYPE.test(contentType)) throw bad('contentType', `contentType ${JSON.stringify(contentType)} is not a MIME type such as text/csv`);
    if (input.folder != null && !isValidKey(input.folder)) {
      throw bad('folder', 'folder must be segments of A-Z a-z 0-9 _ . - and space separated by "/", like a storage path (no "..", no leading or trailing "/")');
    }
    const tags = input.tags ?? [];
    if (tags.length > MAX_TAGS) throw bad('tags', `at most ${MAX_TAGS} tags, got ${tags.length}`);
    const badTag = tags.find((t) => !TAG.test(t));
    if (badTag !== undefined) throw bad('tags', `tag ${JSON.stringify(badTag)} must be 1-64 characters of A-Z a-z 0-9 _ . : -`);
    let metadata: Record<string, unknown> | null = null;
    if (input.metadata != null) {
      if (typeof input.metadata !== 'object' || Array.isArray(input.metadata)) throw bad('metadata', 'metadata must be a JSON object');
      const bytes = Buffer.byteLength(JSON.stringify(input.metadata), 'utf8');
      if (bytes > MAX_METADATA_BYTES) throw bad('metadata', `metadata is ${bytes} bytes as JSON; the limit is ${MAX_METADATA_BYTES} bytes`);
      metadata = input.metadata as Record<string, unknown>;
    }
    return { contentType, sha256: input.sha256.toLowerCase(), tags: [...new Set(tags)], metadata };
  }

  private async urlFor(file: FileRecord): Promise<{ url: string; method: 'PUT'; headers: Record<string, string>; expiresAt: Date }> {
    const expiresAt = file.uploadExpiresAt!;
    const contentType = file.contentType ?? 'application/octet-stream';
    if (isPresigning(this.storage)) {
      const expiresInSeconds = Math.max(1, Math.ceil((expiresAt.getTime() - Date.now()) / 1000));
      const put = await this.storage.presignPut(file.storageKey!, { expiresInSeconds, contentType, size: file.declaredSize!, sha256: file.declaredSha256! });
      return { ...put, expiresAt };
    }
    if (!this.baseUrl) throw new Error('No base URL for upload URLs: set SLUICE_PUBLIC_URL or run the API role');
    const token = this.signer.sign(file.id, expiresAt);
    return { url: `${this.baseUrl}/uploads/${file.id}?token=${encodeURIComponent(token)}`, method: 'PUT', headers: { 'content-type': contentType }, expiresAt };
  }

  /**
   * `PUT /uploads/<fileId>?token=...`: checks the token (tampering, expiry), claims the file's
   * single-use URL, and streams the body into storage with the declared size and SHA-256 checked on
   * the way (nothing is stored when they do not match). A PUT that fails its checks frees the URL
   * again until it expires; a PUT that succeeded spends it.
   */
  async receiveUpload(fileId: string, token: string | undefined, body: Readable, contentLength: number | undefined, remoteAddress?: string): Promise<FileRecord> {
    if (!isUuid(fileId)) throw new NotFoundError('File', fileId);
    // Tampered tokens count per file id and per address: a guesser is refused before any check.
    const limitKeys = [`file:${fileId.toLowerCase()}`, ...(remoteAddress ? [`address:${addressKey(remoteAddress)}`] : [])];
    const limited = this.tokenFailures.check(limitKeys);
    if (limited) {
      this.log.warn({ fileId, address: remoteAddress, retryAfterSeconds: limited.retryAfterSeconds }, 'upload URL token rate limited');
      throw new RateLimitedError(`Too many invalid upload URL tokens for this file or from this address; retry in ${limited.retryAfterSeconds} s`, limited.retryAfterSeconds);
    }
    const check = this.signer.verify(fileId, token);
    if (!check.ok && check.reason === 'INVALID') {
      this.tokenFailures.fail(limitKeys);
      throw uploadError(ErrorCode.FORBIDDEN, UploadErrorReason.UPLOAD_URL_INVALID, 'The upload URL is not valid: its token is missing, malformed or does not match (was the URL changed?)');
    }
    if (!check.ok) throw this.expired(check.expiresAt!);
    const claimed = await this.store.claim(fileId);
    if (!claimed) throw await this.whyUnclaimable(fileId);
    if (claimed.uploadExpiresAt!.getTime() !== check.expiresAt.getTime()) {
      // A token for another issuance of this file id (cannot happen with random ids; defensive).
      await this.store.release(fileId, { code: UploadErrorReason.UPLOAD_URL_INVALID, message: 'Upload URL does not match the file' });
      throw uploadError(ErrorCode.FORBIDDEN, UploadErrorReason.UPLOAD_URL_INVALID, 'The upload URL does not belong to this file');
    }
    const declared = claimed.declaredSize!;
    try {
      if (contentLength !== undefined && contentLength !== declared) {
        throw uploadError(ErrorCode.BAD_USER_INPUT, UploadErrorReason.SIZE_MISMATCH, `The body has ${contentLength} bytes (Content-Length), but ${declared} bytes were declared`, { declaredSize: declared });
      }
      const stored = await this.storage.put(claimed.storageKey!, body, {
        expectedSize: declared,
        expectedSha256: claimed.declaredSha256!,
        maxBytes: this.config.maxFileBytes,
        contentType: claimed.contentType ?? undefined,
      });
      const file = await this.store.markUploaded(fileId, 'UPLOADING', { size: stored.size, sha256: stored.sha256, at: new Date() });
      if (!file) {
        // The PUT outlived the URL by more than the grace period and the sweep expired the file.
        await this.storage.delete(stored.key);
        throw this.expired(claimed.uploadExpiresAt!);
      }
      this.log.info({ fileId, size: stored.size }, 'signed upload received');
      return file;
    } catch (err) {
      const mapped = this.mapStorageError(err, claimed);
      await this.store.release(fileId, { code: String(mapped.extensions['reason'] ?? mapped.code), message: mapped.message });
      throw mapped;
    }
  }

  private expired(expiresAt: Date): SluiceError {
    return uploadError(ErrorCode.FORBIDDEN, UploadErrorReason.UPLOAD_URL_EXPIRED, `The upload URL expired at ${expiresAt.toISOString()}; request a new one`, {
      expiresAt: expiresAt.toISOString(),
    });
  }

  private async whyUnclaimable(fileId: string): Promise<SluiceError> {
    const f = await this.filesStore.get(fileId);
    if (!f || f.uploadState === null) return new NotFoundError('File', fileId);
    switch (f.uploadState) {
      case 'UPLOADING':
        return uploadError(ErrorCode.CONFLICT, UploadErrorReason.UPLOAD_IN_PROGRESS, `Another upload to file ${fileId} is in progress`);
      case 'UPLOADED':
      case 'IMPORTED':
        return uploadError(ErrorCode.CONFLICT, UploadErrorReason.UPLOAD_URL_USED, `The upload URL of file ${fileId} was already used; a URL accepts one upload`);
      default:
        return this.expired(f.uploadExpiresAt!);
    }
  }

  private mapStorageError(err: unknown, f: FileRecord): SluiceError {
    // The body itself failed with a reason of its own (stalled: REQUEST_TIMEOUT).
    const cause = sluiceErrorIn(err);
    if (cause) return cause;
    if (err instanceof StorageError) {
      if (err.code === 'STORAGE_FULL') return new StorageFullError();
      if (err.code === 'SIZE_MISMATCH') {
        return uploadError(ErrorCode.BAD_USER_INPUT, UploadErrorReason.SIZE_MISMATCH, `The body does not have the declared ${f.declaredSize} bytes`, { declaredSize: f.declaredSize });
      }
      if (err.code === 'CHECKSUM_MISMATCH') {
        return uploadError(ErrorCode.BAD_USER_INPUT, UploadErrorReason.CHECKSUM_MISMATCH, `The body's SHA-256 is not the declared ${f.declaredSha256}`, { declaredSha256: f.declaredSha256 });
      }
      if (err.code === 'PAYLOAD_TOO_LARGE') {
        return new PayloadTooLargeError(`The body exceeds the limit of ${this.config.maxFileBytes} bytes`, { limitBytes: this.config.maxFileBytes });
      }
    }
    this.log.error({ err, fileId: f.id }, 'signed upload failed');
    return new SluiceError(ErrorCode.INTERNAL_SERVER_ERROR, 'The upload could not be stored; try again');
  }

  /**
   * For `file(id)`: a file waiting for a presigned S3 PUT shows UPLOADED once its object exists
   * (S3 does not tell Sluice when a PUT completes).
   */
  async refresh(f: FileRecord): Promise<FileRecord> {
    if (f.uploadState !== 'PENDING_UPLOAD' || !isPresigning(this.storage) || !f.storageKey) return f;
    const head = await this.storage.head(f.storageKey);
    if (!head) return f;
    return (await this.store.markUploaded(f.id, 'PENDING_UPLOAD', { size: head.size, sha256: null, at: head.modifiedAt })) ?? (await this.filesStore.get(f.id)) ?? f;
  }

  /**
   * Checks the uploaded object against the declared size and SHA-256, then queues the ingestion
   * job (the same one a direct upload gets) in the transaction that marks the file IMPORTED. A
   * second import returns the first one's job. SYNC then waits for the job to finish, at most
   * `waitMs` (capped by SLUICE_IMPORT_SYNC_MAX_WAIT_MS).
   */
  async importFile(
    viewer: Viewer,
    fileId: string,
    mode: ImportMode,
    waitMs?: number | null,
    onDuplicateContent: OnDuplicateContent = 'INGEST',
    headers: HeaderPolicy = DEFAULT_HEADER_POLICY,
    ingest: { mode?: IngestMode | null; deleteMissing?: boolean | null } = {},
    dialect: CsvDialectOptions = {},
  ): Promise<{ file: FileRecord; job: Job; created: boolean; finished: boolean; duplicateOf?: FileRecord }> {
    if (waitMs != null && (!Number.isInteger(waitMs) || waitMs < 0)) throw new BadInputError('waitSeconds must be a non-negative whole number', { field: 'waitSeconds' });
    const f = await this.files.get(viewer, fileId);
    let job: Job;
    let created = false;
    let duplicateOf: FileRecord | undefined;
    if (f.duplicateOf) {
      // Imported before with SKIP and found to be a duplicate: the same answer again.
      duplicateOf = await this.files.get(viewer, f.duplicateOf);
      job = await this.jobs.get(viewer, duplicateOf.jobId!);
    } else if (f.uploadState === 'IMPORTED') {
      job = await this.jobs.get(viewer, f.jobId!);
    } else {
      const spec = f.specId ? await this.specs.getById(f.specId) : undefined;
      const compiled = spec ? { ...spec.compiled, name: spec.name } : null;
      if (compiled) checkPolicyAgainst(compiled, headers);
      const res = await this.verifyAndQueue(viewer, f, onDuplicateContent, headers, uploadMode(compiled, ingest.mode, ingest.deleteMissing), dialect);
      job = res.job;
      created = res.created;
      duplicateOf = res.duplicateOf;
    }
    if (duplicateOf) return { file: duplicateOf, job, created: false, finished: isTerminal(job.state), duplicateOf };
    if (mode === 'SYNC' && !isTerminal(job.state)) {
      job = await this.waitForJob(viewer, job, Math.min(waitMs ?? this.config.syncMaxWaitMs, this.config.syncMaxWaitMs));
    }
    return { file: (await this.filesStore.get(f.id))!, job, created, finished: isTerminal(job.state) };
  }

  private async verifyAndQueue(
    viewer: Viewer,
    f: FileRecord,
    onDuplicateContent: OnDuplicateContent,
    headers: HeaderPolicy,
    ingest: { mode: IngestMode | null; deleteMissing: boolean },
    dialect: CsvDialectOptions,
  ): Promise<{ job: Job; created: boolean; duplicateOf?: FileRecord }> {
    switch (f.uploadState) {
      case null:
        throw uploadError(ErrorCode.CONFLICT, UploadErrorReason.NOT_A_SIGNED_UPLOAD, `File ${f.id} was uploaded directly and is imported already; see its job`, { jobId: f.jobId });
      case 'EXPIRED':
        throw uploadError(ErrorCode.CONFLICT, UploadErrorReason.UPLOAD_URL_EXPIRED, `File ${f.id} expired before it was imported; request a new upload URL`);
      case 'UPLOADING':
        throw uploadError(ErrorCode.CONFLICT, UploadErrorReason.UPLOAD_IN_PROGRESS, `File ${f.id} is still being uploaded; import it when the PUT has finished`);
      default:
        break;
    }
    const key = f.storageKey!;
    const head = await this.storage.head(key);
    if (!head) {
      throw uploadError(
        ErrorCode.CONFLICT,
        UploadErrorReason.NOT_UPLOADED,
        `File ${f.id} has not been uploaded yet: PUT its bytes to the URL from requestUploadUrl (valid until ${f.uploadExpiresAt!.toISOString()}), then import it`,
        { expiresAt: f.uploadExpiresAt!.toISOString() },
      );
    }
    if (head.size !== f.declaredSize) {
      const message = `The uploaded object has ${head.size} bytes, but ${f.declaredSize} bytes were declared; it was deleted: upload the right file to the same URL before it expires, or request a new URL`;
      await this.refuseObject(f, { code: UploadErrorReason.SIZE_MISMATCH, message });
      throw uploadError(ErrorCode.BAD_USER_INPUT, UploadErrorReason.SIZE_MISMATCH, message, { size: head.size, declaredSize: f.declaredSize });
    }
    const sha256 = await this.sha256Of(f, key);
    if (sha256 !== f.declaredSha256) {
      const message = `The uploaded object's SHA-256 is ${sha256}, but ${f.declaredSha256} was declared; it was deleted: upload the right file to the same URL before it expires, or request a new URL`;
      await this.refuseObject(f, { code: UploadErrorReason.CHECKSUM_MISMATCH, message });
      throw uploadError(ErrorCode.BAD_USER_INPUT, UploadErrorReason.CHECKSUM_MISMATCH, message, { sha256, declaredSha256: f.declaredSha256 });
    }
    if (onDuplicateContent === 'SKIP') {
      const dup = await this.filesStore.findIngestedDuplicate({ createdBy: f.createdBy, sha256, kind: f.kind, specId: f.specId, program: f.program, excludeId: f.id });
      if (dup && (await this.filesStore.markDuplicate(f.id, dup.id, { size: head.size, sha256 }))) {
        await this.storage.delete(key);
        this.log.info({ fileId: f.id, duplicateOf: dup.id, by: viewer.clientId }, 'duplicate signed upload skipped');
        return { job: await this.jobs.get(viewer, dup.jobId!), created: false, duplicateOf: await this.files.get(viewer, dup.id) };
      }
    }
    const type = f.kind === 'ZIP' ? INGEST_ZIP_JOB : INGEST_FILE_JOB;
    const job = await this.jobs.inTransaction(async (tx) => {
      const imported = await this.store.markImported(tx, f.id, { size: head.size, sha256, ingestMode: ingest.mode, deleteMissing: ingest.deleteMissing });
      if (!imported) return undefined;
      await this.filesStore.setRequestedDialect(tx, f.id, dialect);
      const { job } = await this.jobs.submit(viewer, type, { fileId: f.id, headers: policyToJson(headers) }, { tx });
      await this.filesStore.setJob(tx, f.id, job.id);
      return job;
    });
    if (job) {
      this.metrics?.observeUpload('signed_url', head.size);
      this.log.info({ fileId: f.id, jobId: job.id, by: viewer.clientId }, 'signed upload imported');
      return { job, created: true };
    }
    // A concurrent import (or the expiry sweep) changed the file between our read and our update.
    const now = (await this.filesStore.get(f.id))!;
    if (now.uploadState === 'IMPORTED') return { job: await this.jobs.get(viewer, now.jobId!), created: false };
    if (now.duplicateOf) {
      const dup = await this.files.get(viewer, now.duplicateOf);
      return { job: await this.jobs.get(viewer, dup.jobId!), created: false, duplicateOf: dup };
    }
    return this.verifyAndQueue(viewer, now, onDuplicateContent, headers, ingest, dialect);
  }

  /**
   * A wrong object is deleted, so the file reads PENDING_UPLOAD (with the reason in `error`) until
   * the right bytes arrive, and nothing unverified lingers in storage.
   */
  private async refuseObject(f: FileRecord, error: { code: string; message: string }): Promise<void> {
    await this.store.recordMismatch(f.id, error);
    await this.storage.delete(f.storageKey!);
    this.log.info({ fileId: f.id, reason: error.code }, 'uploaded object refused');
  }

  /**
   * Sluice's own URL verified the SHA-256 while the bytes arrived (UPLOADED with a sha256); an S3
   * checksum verified by the service is trusted; anything else is read back and hashed (memory
   * stays flat; one extra read of the object).
   */
  private async sha256Of(f: FileRecord, key: string): Promise<string> {
    if (f.uploadState === 'UPLOADED' && f.sha256 && !isPresigning(this.storage)) return f.sha256;
    const verified = isPresigning(this.storage) ? await this.storage.verifiedSha256(key) : undefined;
    if (verified) return verified;
    const hash = createHash('sha256');
    await pipeline(
      await this.storage.get(key),
      new Writable({
        write(chunk: Buffer, _enc, cb) {
          hash.update(chunk);
          cb();
        },
      }),
    );
    return hash.digest('hex');
  }

  private async waitForJob(viewer: Viewer, job: Job, waitMs: number): Promise<Job> {
    if (waitMs <= 0) return job;
    const updates = await this.jobs.watch(viewer, job.id, null);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, waitMs);
    });
    try {
      const finished = (async () => {
        for await (const u of updates) if (isTerminal(u.state)) return;
      })();
      await Promise.race([finished, timeout]);
    } finally {
      clearTimeout(timer);
      await updates.return?.();
    }
    return this.jobs.get(viewer, job.id);
  }

  /** Expires files whose URL ran out more than the grace period ago without an import; deletes their objects. */
  async sweepExpired(): Promise<number> {
    const expired = await this.store.expire(this.config.graceSeconds);
    for (const { id, storageKey } of expired) {
      if (!storageKey) continue;
      await this.storage.delete(storageKey).catch((err: unknown) => this.log.warn({ err, fileId: id }, 'could not delete the object of an expired upload'));
    }
    if (expired.length) this.log.info({ count: expired.length }, 'expired signed uploads');
    return expired.length;
  }

  /**
   * Temp files of writes a crash interrupted (uploads and outputs alike) and the empty folders
   * left behind, once nothing has written to them for SLUICE_STALE_TEMP_SECONDS (local storage).
   */
  async sweepLeftovers(): Promise<{ tempFiles: number; folders: number }> {
    if (!sweepsLeftovers(this.storage)) return { tempFiles: 0, folders: 0 };
    const swept = await this.storage.sweepLeftovers(new Date(Date.now() - (this.config.staleTempSeconds ?? 3600) * 1000));
    if (swept.tempFiles || swept.folders) this.log.info(swept, 'deleted stale temp files and empty folders');
    return swept;
  }

  /**
   * Deletes objects under uploads/ that no file refers to (a crash between storing and recording,
   * a PUT after the file expired), once they are older than the grace period, so an upload being
   * recorded right now is never taken. Output objects (process_input/, ingestion_error/,
   * emission/, emission-error/) are never touched; then sweeps leftovers (sweepLeftovers).
   */
  async sweepOrphans(): Promise<number> {
    const cutoff = Date.now() - this.config.graceSeconds * 1000;
    let deleted = 0;
    let batch: Array<{ key: string; fileId: string }> = [];
    const flush = async () => {
      const owners = await this.store.rawObjectOwners([...new Set(batch.map((b) => b.fileId))]);
      for (const { key, fileId } of batch) {
        const owner = owners.get(fileId);
        if (owner && !owner.expired && owner.storageKey === key) continue;
        await this.storage.delete(key);
        deleted++;
      }
      batch = [];
    };
    for await (const item of this.storage.list('uploads/')) {
      const m = RAW_KEY.exec(item.key);
      if (!m || !isUuid(m[1]!) || item.modifiedAt.getTime() > cutoff) continue;
      batch.push({ key: item.key, fileId: m[1]!.toLowerCase() });
      if (batch.length >= ORPHAN_BATCH) await flush();
    }
    if (batch.length) await flush();
    if (deleted) this.log.info({ count: deleted }, 'deleted orphaned upload objects');
    if (sweepsIncompleteUploads(this.storage)) {
      const olderThan = new Date(Date.now() - (this.config.incompleteUploadMaxAgeSeconds ?? 24 * 3600) * 1000);
      const aborted = await this.storage.abortIncompleteUploads(olderThan);
      if (aborted) this.log.info({ count: aborted, olderThan }, 'aborted incomplete multipart uploads');
    }
    await this.sweepLeftovers();
    return deleted;
  }
}

/** A timer that runs `fn` every `intervalMs` (never two at once); 0 turns it off. Returns its stop. */
export function every(intervalMs: number, fn: () => Promise<unknown>, log: Logger, name: string): () => Promise<void> {
  if (intervalMs <= 0) return async () => undefined;
  let running: Promise<unknown> | undefined;
  const timer = setInterval(() => {
    running ??= fn()
      .catch((err: unknown) => log.error({ err, task: name }, 'periodic task failed'))
      .finally(() => {
        running = undefined;
      });
  }, intervalMs);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await running;
  };
}
