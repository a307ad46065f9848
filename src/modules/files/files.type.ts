import { GraphQLJSON, GraphQLSafeInt } from 'graphql-scalars';
import { Field, GraphQLISODateTime, ID, Int, ObjectType, registerEnumType } from 'type-graphql';
import { JobType, PageInfo } from '../jobs/jobs.type';
import { Spec } from '../specs/specs.type';
import { FileDialectType } from './dialect.type';

export enum OnInvalidRowsEnum {
  SKIP = 'SKIP',
  FAIL = 'FAIL',
}
registerEnumType(OnInvalidRowsEnum, {
  name: 'OnInvalidRows',
  description: 'SKIP: keep valid rows, report invalid ones (SUCCEEDED_WITH_ERRORS). FAIL: any invalid row fails the file and keeps no row.',
});

export enum FileKindEnum {
  CSV = 'CSV',
  ZIP = 'ZIP',
}
registerEnumType(FileKindEnum, { name: 'FileKind', description: 'CSV, or a national program ZIP of CSVs.' });

/** A file's state: its upload phase (signed-URL uploads), then its job's state. */
export enum FileState {
  PENDING_UPLOAD = 'PENDING_UPLOAD',
  UPLOADING = 'UPLOADING',
  UPLOADED = 'UPLOADED',
  EXPIRED = 'EXPIRED',
  QUEUED = 'QUEUED',
  RUNNING = 'RUNNING',
  SUCCEEDED = 'SUCCEEDED',
  SUCCEEDED_WITH_ERRORS = 'SUCCEEDED_WITH_ERRORS',
  FAILED = 'FAILED',
  CANCELLED = 'CANCELLED',
}
registerEnumType(FileState, {
  name: 'FileState',
  description:
    'Signed-URL uploads: PENDING_UPLOAD -> (UPLOADING) -> UPLOADED -> importFile -> the job states; EXPIRED when not imported in time. Direct uploads start at QUEUED. From QUEUED on, the state is the job’s (see JobState).',
  valuesConfig: {
    PENDING_UPLOAD: { description: 'An upload URL was issued; the bytes have not arrived (or did not match what was declared: see error).' },
    UPLOADING: { description: 'Sluice’s own upload URL is receiving the bytes.' },
    UPLOADED: { description: 'The bytes are stored; call importFile.' },
    EXPIRED: { description: 'Not uploaded and imported before the URL expired (plus the grace period); the object was deleted. Final.' },
    QUEUED: { description: 'Imported; waiting for a worker.' },
    RUNNING: { description: 'A worker is processing it.' },
    SUCCEEDED: { description: 'Every row was valid and stored.' },
    SUCCEEDED_WITH_ERRORS: { description: 'Valid rows stored; invalid rows reported in rowErrors.' },
    FAILED: { description: 'Nothing usable; see error.' },
    CANCELLED: { description: 'Stopped on request; no rows kept.' },
  },
});

@ObjectType({ description: 'Row counts of a file.' })
export class FileRows {
  @Field(() => GraphQLSafeInt, { nullable: true, description: 'Data rows read (not counting the header); null until processed.' })
  total!: number | null;

  @Field(() => GraphQLSafeInt, { nullable: true, description: 'Rows kept in the spec’s table.' })
  valid!: number | null;

  @Field(() => GraphQLSafeInt, { nullable: true, description: 'Rows refused; see rowErrors.' })
  invalid!: number | null;
}

@ObjectType({ description: 'Where a file and its outputs are in storage.' })
export class FileOutputs {
  @Field(() => String, { nullable: true, description: 'The raw upload.' })
  raw!: string | null;

  @Field(() => String, { nullable: true, description: 'Valid rows as CSV (process_input/… or emission/…).' })
  valid!: string | null;

  @Field(() => String, { nullable: true, description: 'Invalid rows plus error_description (ingestion_error/… or emission-error/…).' })
  errors!: string | null;
}

@ObjectType({ description: 'Why a file failed as a whole.' })
export class FileError {
  @Field(() => String, { description: 'Stable code: EMPTY_FILE, HEADER_INVALID, ROWS_INVALID, ALL_ROWS_INVALID, NOT_A_CSV, UNSUPPORTED_ENCODING, MIXED_LINE_ENDINGS, SPEC_NOT_FOUND, ZIP_*.' })
  code!: string;

  @Field(() => String, { description: 'Explanation.' })
  message!: string;

  @Field(() => GraphQLJSON, { nullable: true, description: 'Details, e.g. the header problems (the first 20; the message gives the count).' })
  problems!: unknown;
}

@ObjectType({ description: 'One problem with one row.' })
export class RowErrorType {
  @Field(() => Int, { description: 'Line in the file where the record starts (header = 1).' })
  line!: number;

  @Field(() => String, { nullable: true, description: 'Column, when the problem is one cell.' })
  column!: string | null;

  @Field(() => String, { description: 'Stable code, e.g. NOT_A_NUMBER, REQUIRED_VALUE_MISSING, DUPLICATE_KEY.' })
  code!: string;

  @Field(() => String, { description: 'Explanation naming the value and the rule.' })
  message!: string;
}

@ObjectType({ description: 'A page of row errors, by line.' })
export class RowErrorConnection {
  @Field(() => [RowErrorType], { description: 'Errors on this page.' })
  nodes!: RowErrorType[];

  @Field(() => PageInfo, { description: 'Where the page ends.' })
  pageInfo!: PageInfo;

  @Field(() => Int, { description: 'All errors of the file.' })
  totalCount!: number;
}

@ObjectType('File', { description: 'An uploaded file (or a CSV inside an uploaded ZIP) and what became of it.' })
export class FileType {
  @Field(() => ID, { description: 'File id.' })
  id!: string;

  @Field(() => FileKindEnum, { description: 'CSV or ZIP.' })
  kind!: FileKindEnum;

  @Field(() => String, { description: 'Name as uploaded (or as inside the ZIP).' })
  fileName!: string;

  @Field(() => String, { nullable: true, description: 'Program it was uploaded for.' })
  program!: string | null;

  @Field(() => FileState, { description: 'Upload phase, then processing state (the job’s state; for a CSV inside a ZIP, its own outcome).' })
  state!: FileState;

  @Field(() => GraphQLSafeInt, { nullable: true, description: 'Size in bytes as stored.' })
  size!: number | null;

  @Field(() => String, { nullable: true, description: 'SHA-256 of the stored bytes (hex).' })
  sha256!: string | null;

  @Field(() => OnInvalidRowsEnum, { description: 'Policy for invalid rows.' })
  onInvalidRows!: OnInvalidRowsEnum;

  @Field(() => FileRows, { description: 'Row counts.' })
  rows!: FileRows;

  @Field(() => FileOutputs, { description: 'Storage keys of the upload and its outputs.' })
  outputs!: FileOutputs;

  @Field(() => FileError, { nullable: true, description: 'Why the file failed as a whole.' })
  error!: FileError | null;

  @Field(() => FileDialectType, { nullable: true, description: 'How the CSV was read (delimiter, encoding, BOM, line ending); null until its header has been read, and for a ZIP.' })
  dialect!: FileDialectType | null;

  @Field(() => String, { description: 'clientId that uploaded it.' })
  createdBy!: string;

  @Field(() => GraphQLISODateTime, { description: 'When it was uploaded.' })
  createdAt!: Date;

  @Field(() => GraphQLISODateTime, { description: 'When it last changed.' })
  updatedAt!: Date;

  @Field(() => GraphQLSafeInt, { nullable: true, description: 'Signed-URL uploads: the size declared in requestUploadUrl, in bytes.' })
  declaredSize!: number | null;

  @Field(() => String, { nullable: true, description: 'Signed-URL uploads: the SHA-256 declared in requestUploadUrl (hex).' })
  declaredSha256!: string | null;

  @Field(() => GraphQLISODateTime, { nullable: true, description: 'Signed-URL uploads: when the upload URL stops accepting the bytes.' })
  uploadExpiresAt!: Date | null;

  @Field(() => GraphQLISODateTime, { nullable: true, description: 'Signed-URL uploads: when the bytes were stored (or first seen in S3).' })
  uploadedAt!: Date | null;

  @Field(() => String, { nullable: true, description: 'Logical folder given in requestUploadUrl (a label; storage keys do not depend on it).' })
  folder!: string | null;

  @Field(() => [String], { description: 'Tags given in requestUploadUrl.' })
  tags!: string[];

  @Field(() => GraphQLJSON, { nullable: true, description: 'Metadata object given in requestUploadUrl.' })
  metadata!: Record<string, unknown> | null;

  /** Internal: resolved by field resolvers. */
  specId!: string | null;
  jobId!: string | null;
  parentId!: string | null;
}

@ObjectType({ description: 'A page of files, newest first.' })
export class FileConnection {
  @Field(() => [FileType], { description: 'Files on this page.' })
  nodes!: FileType[];

  @Field(() => PageInfo, { description: 'Where the page ends.' })
  pageInfo!: PageInfo;

  @Field(() => Int, { description: 'Files matching the filter.' })
  totalCount!: number;
}

@ObjectType({ description: 'The stored file and the job processing it, returned at once.' })
export class UploadResult {
  @Field(() => FileType, { description: 'The file record (raw bytes already stored).' })
  file!: FileType;

  @Field(() => JobType, { description: 'The job; watch it with jobUpdated.' })
  job!: JobType;

  @Field(() => Boolean, { description: 'False when the idempotency key returned an earlier upload.' })
  created!: boolean;
}

@ObjectType({ description: 'A header problem found by validateFile.' })
export class HeaderProblemType {
  @Field(() => String, { description: 'MISSING_REQUIRED_COLUMN, UNKNOWN_COLUMN, DUPLICATE_COLUMN or EMPTY_HEADER.' })
  code!: string;

  @Field(() => String, { nullable: true, description: 'The column concerned.' })
  column!: string | null;

  @Field(() => String, { description: 'Explanation.' })
  message!: string;
}

@ObjectType({ description: 'Result of a dry run: nothing was stored.' })
export class ValidationReportType {
  @Field(() => Boolean, { description: 'True when the header matches and every row is valid.' })
  valid!: boolean;

  @Field(() => [String], { description: 'The header as read.' })
  header!: string[];

  @Field(() => [HeaderProblemType], { description: 'Header problems (the rows are not read when there are any); the first 20 at most.' })
  headerProblems!: HeaderProblemType[];

  @Field(() => Int, { description: 'How many header problems there are in all (headerProblems lists the first 20).' })
  headerProblemCount!: number;

  @Field(() => GraphQLSafeInt, { description: 'Data rows read.' })
  total!: number;

  @Field(() => GraphQLSafeInt, { description: 'Valid rows.' })
  validRows!: number;

  @Field(() => GraphQLSafeInt, { description: 'Invalid rows.' })
  invalidRows!: number;

  @Field(() => Boolean, { description: 'The file has no data rows.' })
  empty!: boolean;

  @Field(() => [RowErrorType], { description: 'The first maxErrors row errors.' })
  errors!: RowErrorType[];

  @Field(() => FileDialectType, { nullable: true, description: 'How the CSV was read; null when it was refused before its header was read.' })
  dialect!: FileDialectType | null;
}

export { Spec };
