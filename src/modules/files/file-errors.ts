import { ZIP_ERROR_CODES, type ZipErrorCode } from '../../ingest/zip';
import { ERROR_CODES, type ErrorCode } from '../../shared/errors';
import { mergeCodeTables } from '../../shared/codes';
import { JOB_ERROR_CODES, type JobErrorCode } from '../../jobs/errors';
import { UPLOAD_ERROR_REASONS, type UploadErrorReason } from '../signed-uploads/upload-errors';

/**
 * Codes a file's error can hold that belong to no other set: set on the file itself
 * (ingest.job.ts, files.store.ts, signed-uploads.store.ts).
 */
export const FILE_ERROR_CODES = {
  CANCELLED: "The file's job was cancelled before this file was finished; no row of it was kept.",
  DUPLICATE_CONTENT: 'The same content as a file already ingested; nothing was ingested again (onDuplicateContent SKIP).',
  UPLOAD_EXPIRED: 'The file was not uploaded and imported before its upload URL expired.',
} as const;

/**
 * Why a file failed as a whole (files.error.code): its job's code, a ZIP refusal for the ZIP's own
 * file, one of the file's own codes above, or, for a signed upload whose PUT failed, the upload
 * reason (else the API error code) of that failure.
 */
export type FileErrorCode = JobErrorCode | ZipErrorCode | keyof typeof FILE_ERROR_CODES | UploadErrorReason | ErrorCode;
export const FILE_ERROR_CODE_TABLE = mergeCodeTables(JOB_ERROR_CODES, ZIP_ERROR_CODES, FILE_ERROR_CODES, UPLOAD_ERROR_REASONS, ERROR_CODES);
