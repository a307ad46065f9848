import { randomUUID } from 'node:crypto';
import type { Viewer } from '../../shared/auth';
import { BadInputError, ErrorCode, PayloadTooLargeError } from '../../shared/errors';
import { checkIdempotencyKey } from '../../shared/idempotency';
import type { Logger } from '../../shared/logger';
import { storageKeys } from '../../storage/keys';
import { isPresigning, isValidKey, type ObjectStorage } from '../../storage/storage';
import { checkProgram } from '../files/files.service';
import type { FileRecord, FilesStore, OnInvalidRows } from '../files/files.store';
import type { SpecsService } from '../specs/specs.service';
import { refreshUploadState } from './receive-upload';
import type { SignedUploadsConfig } from './signed-uploads.config';
import type { SignedUploadsStore } from './signed-uploads.store';
import { uploadError, UploadErrorReason } from './upload-errors';
import { wholeSeconds, type UploadUrlSigner } from './upload-token';

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

const FILE_NAME_MAX = 255;
const CONTENT_TYPE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}(?:\s*;\s*[A-Za-z0-9_.-]+=[A-Za-z0-9_.-]+)*$/;
const SHA256_HEX = /^[0-9a-fA-F]{64}$/;
const TAG = /^[A-Za-z0-9_.:-]{1,64}$/;
const MAX_TAGS = 20;
/** Bytes of the metadata object as JSON. */
const MAX_METADATA_BYTES = 4096;

/** Step 1 of a signed-URL upload: declares the file and hands out a URL for one PUT of its bytes. */
export class UploadUrlIssuer {
  private baseUrl: string | undefined;

  constructor(
    private readonly store: SignedUploadsStore,
    private readonly filesStore: FilesStore,
    private readonly specs: SpecsService,
    private readonly storage: ObjectStorage,
    private readonly log: Logger,
    private readonly config: SignedUploadsConfig,
    private readonly signer: UploadUrlSigner,
  ) {
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
    const existing = await refreshUploadState(
      { store: this.store, filesStore: this.filesStore, storage: this.storage },
      (await this.filesStore.byIdempotencyKey(viewer.clientId, input.idempotencyKey!))!,
    );
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
      throw new PayloadTooLargeError(`size ${input.size} exceeds the limit of ${this.config.maxFileBytes} bytes`, {
        limitBytes: this.config.maxFileBytes,
        field: 'size',
      });
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
}
