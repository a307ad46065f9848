import { codeValues } from '../../shared/codes';
import { SluiceError, type ErrorCode } from '../../shared/errors';

/**
 * `extensions.reason` of signed-upload errors, next to the `code`: what exactly went wrong.
 * Clients branch on these, never on messages.
 */
export const UPLOAD_ERROR_REASONS = {
  UPLOAD_URL_INVALID: 'The token of a Sluice upload URL is missing, malformed or does not match the file id and expiry (tampered).',
  UPLOAD_URL_EXPIRED: "The upload URL's expiry has passed (or the file expired).",
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

export function uploadError(code: ErrorCode, reason: UploadErrorReason, message: string, details: Record<string, unknown> = {}): SluiceError {
  return new SluiceError(code, message, { reason, ...details });
}
