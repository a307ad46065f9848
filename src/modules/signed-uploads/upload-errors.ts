import { SluiceError, type ErrorCode } from '../../shared/errors';

/**
 * `extensions.reason` of signed-upload errors, next to the `code`: what exactly went wrong.
 * Clients branch on these, never on messages.
 */
export enum UploadErrorReason {
  /** The token of a Sluice upload URL is missing, malformed or does not match the file id and expiry (tampered). */
  UPLOAD_URL_INVALID = 'UPLOAD_URL_INVALID',
  /** The upload URL's expiry has passed (or the file expired). */
  UPLOAD_URL_EXPIRED = 'UPLOAD_URL_EXPIRED',
  /** The upload URL was already used by a successful PUT. */
  UPLOAD_URL_USED = 'UPLOAD_URL_USED',
  /** Another PUT to this URL is still running. */
  UPLOAD_IN_PROGRESS = 'UPLOAD_IN_PROGRESS',
  /** importFile before the object was uploaded. */
  NOT_UPLOADED = 'NOT_UPLOADED',
  /** The body or stored object does not have the declared size. */
  SIZE_MISMATCH = 'SIZE_MISMATCH',
  /** The body or stored object does not have the declared SHA-256. */
  CHECKSUM_MISMATCH = 'CHECKSUM_MISMATCH',
  /** importFile on a file that was uploaded directly (uploadFile), not through requestUploadUrl. */
  NOT_A_SIGNED_UPLOAD = 'NOT_A_SIGNED_UPLOAD',
  /** requestUploadUrl with an idempotency key whose file is no longer waiting for its upload. */
  IDEMPOTENCY_KEY_USED = 'IDEMPOTENCY_KEY_USED',
}

export function uploadError(code: ErrorCode, reason: UploadErrorReason, message: string, details: Record<string, unknown> = {}): SluiceError {
  return new SluiceError(code, message, { reason, ...details });
}
