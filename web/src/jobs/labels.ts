import type { FileState, JobState } from '../../../src/sdk/client';
import { formatCount } from '../../../src/sdk/progress';

/** Plain-language names for what the API calls states, job types and error codes. */

export const FILE_JOB_TYPES = ['cqube.ingest-file', 'cqube.ingest-national-zip'] as const;
export const BULK_JOB = 'directory.bulk-upload';
export const CE_JOB = 'skills.import-credential-engine';

export const TERMINAL: ReadonlySet<string> = new Set(['SUCCEEDED', 'SUCCEEDED_WITH_ERRORS', 'FAILED', 'CANCELLED', 'EXPIRED']);

const STATE_LABELS: Record<JobState | FileState, string> = {
  PENDING_UPLOAD: 'waiting for the upload',
  UPLOADING: 'uploading',
  UPLOADED: 'uploaded, not imported',
  QUEUED: 'waiting',
  RUNNING: 'running',
  SUCCEEDED: 'done',
  SUCCEEDED_WITH_ERRORS: 'done, with problems',
  FAILED: 'failed',
  CANCELLED: 'cancelled',
  EXPIRED: 'expired',
};
export const stateLabel = (s: string): string => STATE_LABELS[s as JobState] ?? s.toLowerCase();
export const JOB_STATES: JobState[] = ['QUEUED', 'RUNNING', 'SUCCEEDED', 'SUCCEEDED_WITH_ERRORS', 'FAILED', 'CANCELLED'];

/** The job types the list filters by; `signed` is a file ingestion whose bytes came through an upload URL. */
export const TYPE_CHOICES: Array<{ value: string; label: string; types: string[] }> = [
  { value: 'cqube.ingest-file', label: 'State CSV upload', types: ['cqube.ingest-file'] },
  { value: 'cqube.ingest-national-zip', label: 'National ZIP', types: ['cqube.ingest-national-zip'] },
  { value: 'signed', label: 'Signed-URL import', types: ['cqube.ingest-file', 'cqube.ingest-national-zip'] },
  { value: BULK_JOB, label: 'Directory upload', types: [BULK_JOB] },
  { value: CE_JOB, label: 'Credential Engine import', types: [CE_JOB] },
];
export function typeLabel(type: string, signed = false): string {
  if (signed) return 'Signed-URL import';
  return TYPE_CHOICES.find((c) => c.value === type)?.label ?? type;
}

const OBJECT_LABELS: Record<string, string> = { LOCATION: 'Locations', ORGANISATION: 'Organisations', USER: 'Users' };
export const objectLabel = (k: string): string => OBJECT_LABELS[k] ?? k;

/** What an error code means to a person; the code itself stays visible in small print. */
const CODE_TEXT: Record<string, string> = {
  HEADER_INVALID: 'The first line (the column names) does not match the spec.',
  EMPTY_FILE: 'The file has no data rows.',
  ALL_ROWS_INVALID: 'No row could be stored: every row has a problem.',
  FILE_MISSING: 'The uploaded file is missing from storage.',
  INTERNAL_ERROR: 'Something went wrong on the server.',
  SOME_FRAMEWORKS_FAILED: 'Some frameworks could not be imported.',
  SOME_COMPETENCIES_INVALID: 'Some competencies were skipped.',
  SOME_FILES_FAILED: 'Some files in the ZIP failed.',
  ZIP_REFUSED: 'The ZIP could not be read.',
  CANCELLED: 'The job was cancelled.',
};
export const codeText = (code: string): string | undefined => CODE_TEXT[code];

export type Tone = 'success' | 'warning' | 'error' | 'info';
export function toneOf(state: string): Tone {
  if (state === 'SUCCEEDED') return 'success';
  if (state === 'SUCCEEDED_WITH_ERRORS') return 'warning';
  if (state === 'FAILED' || state === 'CANCELLED' || state === 'EXPIRED') return 'error';
  return 'info';
}

/** "60 of 300,000 rows had problems and were skipped; 299,940 were stored." */
export function rowsOutcome(total: number, valid: number, invalid: number, noun = 'rows'): string {
  if (invalid === 0) return `All ${formatCount(total)} ${noun} were stored.`;
  if (valid === 0) return `None of the ${formatCount(total)} ${noun} could be stored.`;
  return `${formatCount(valid)} of ${formatCount(total)} ${noun} were stored. ${formatCount(invalid)} ${invalid === 1 ? 'had a problem and was' : 'had problems and were'} skipped: ${invalid === 1 ? 'it is' : 'they are'} listed below.`;
}
