import type { Readable } from 'node:stream';
import { isUuid } from '../../shared/cursor';
import { ErrorCode, NotFoundError, PayloadTooLargeError, RateLimitedError, SluiceError, sluiceErrorIn, StorageFullError } from '../../shared/errors';
import type { Logger } from '../../shared/logger';
import { addressKey, FailureLimiter } from '../../shared/rate-limit';
import { isPresigning, StorageError, type ObjectStorage } from '../../storage/storage';
import type { FileRecord, FilesStore } from '../files/files.store';
import type { SignedUploadsConfig } from './signed-uploads.config';
import type { SignedUploadsStore } from './signed-uploads.store';
import { uploadError, UploadErrorReason } from './upload-errors';
import type { UploadUrlSigner } from './upload-token';

/** Step 2 of a signed-URL upload through Sluice's own URL: the PUT of the bytes. */
export class UploadReceiver {
  private readonly tokenFailures: FailureLimiter;

  constructor(
    private readonly store: SignedUploadsStore,
    private readonly filesStore: FilesStore,
    private readonly storage: ObjectStorage,
    private readonly log: Logger,
    private readonly config: SignedUploadsConfig,
    private readonly signer: UploadUrlSigner,
  ) {
    this.tokenFailures = new FailureLimiter({ maxFailures: config.maxTokenFailuresPerMinute ?? 10, windowMs: 60_000 });
  }

  /**
   * `PUT /uploads/<fileId>?token=...`: checks the token (tampering, expiry), claims the file's
   * single-use URL, and streams the body into storage with the declared size and SHA-256 checked on
   * the way (nothing is stored when they do not match). A PUT that fails its checks frees the URL
   * again until it expires; a PUT that succeeded spends it.
   */
  async receiveUpload(
    fileId: string,
    token: string | undefined,
    body: Readable,
    contentLength: number | undefined,
    remoteAddress?: string,
  ): Promise<FileRecord> {
    if (!isUuid(fileId)) throw new NotFoundError('File', fileId);
    // Tampered tokens count per file id and per address: a guesser is refused before any check.
    const limitKeys = [`file:${fileId.toLowerCase()}`, ...(remoteAddress ? [`address:${addressKey(remoteAddress)}`] : [])];
    const limited = this.tokenFailures.check(limitKeys);
    if (limited) {
      this.log.warn({ fileId, address: remoteAddress, retryAfterSeconds: limited.retryAfterSeconds }, 'upload URL token rate limited');
      throw new RateLimitedError(
        `Too many invalid upload URL tokens for this file or from this address; retry in ${limited.retryAfterSeconds} s`,
        limited.retryAfterSeconds,
      );
    }
    const check = this.signer.verify(fileId, token);
    if (!check.ok && check.reason === 'INVALID') {
      this.tokenFailures.fail(limitKeys);
      throw uploadError(
        ErrorCode.FORBIDDEN,
        UploadErrorReason.UPLOAD_URL_INVALID,
        'The upload URL is not valid: its token is missing, malformed or does not match (was the URL changed?)',
      );
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
        throw uploadError(
          ErrorCode.BAD_USER_INPUT,
          UploadErrorReason.SIZE_MISMATCH,
          `The body has ${contentLength} bytes (Content-Length), but ${declared} bytes were declared`,
          { declaredSize: declared },
        );
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
        return uploadError(
          ErrorCode.CONFLICT,
          UploadErrorReason.UPLOAD_URL_USED,
          `The upload URL of file ${fileId} was already used; a URL accepts one upload`,
        );
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
        return uploadError(ErrorCode.BAD_USER_INPUT, UploadErrorReason.SIZE_MISMATCH, `The body does not have the declared ${f.declaredSize} bytes`, {
          declaredSize: f.declaredSize,
        });
      }
      if (err.code === 'CHECKSUM_MISMATCH') {
        return uploadError(ErrorCode.BAD_USER_INPUT, UploadErrorReason.CHECKSUM_MISMATCH, `The body's SHA-256 is not the declared ${f.declaredSha256}`, {
          declaredSha256: f.declaredSha256,
        });
      }
      if (err.code === 'PAYLOAD_TOO_LARGE') {
        return new PayloadTooLargeError(`The body exceeds the limit of ${this.config.maxFileBytes} bytes`, { limitBytes: this.config.maxFileBytes });
      }
    }
    this.log.error({ err, fileId: f.id }, 'signed upload failed');
    return new SluiceError(ErrorCode.INTERNAL_SERVER_ERROR, 'The upload could not be stored; try again');
  }
}

/**
 * For `file(id)`: a file waiting for a presigned S3 PUT shows UPLOADED once its object exists
 * (S3 does not tell Sluice when a PUT completes).
 */
export async function refreshUploadState(
  deps: { store: SignedUploadsStore; filesStore: FilesStore; storage: ObjectStorage },
  f: FileRecord,
): Promise<FileRecord> {
  if (f.uploadState !== 'PENDING_UPLOAD' || !isPresigning(deps.storage) || !f.storageKey) return f;
  const head = await deps.storage.head(f.storageKey);
  if (!head) return f;
  return (
    (await deps.store.markUploaded(f.id, 'PENDING_UPLOAD', { size: head.size, sha256: null, at: head.modifiedAt })) ?? (await deps.filesStore.get(f.id)) ?? f
  );
}
