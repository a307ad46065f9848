import { GraphQLJSON, GraphQLSafeInt } from 'graphql-scalars';
import { Field, GraphQLISODateTime, ID, Int, ObjectType, registerEnumType } from 'type-graphql';
import { Connection } from '../shared/connection';
import { JobType } from '../jobs/jobs.type';
import { OnUnknownColumnsEnum, Spec } from '../specs/specs.type';
import { FileDialectType } from './dialect.type';
import { registerCodeEnum } from '../shared/code-enum';
import { ROW_ERROR_CODES, type RowErrorCode } from '../../ingest/row-validator';
import { CORRECTION_ROW_CODES, type CorrectionRowCode } from './corrections';
import { FILE_ERROR_CODE_TABLE } from './file-errors';
import { FILE_WARNING_CODES } from './header-policy';

/** A row error of a file: the pipeline's codes and the ones a corrections upload adds. */
export type FileRowErrorCode = RowErrorCode | CorrectionRowCode;
const RowErrorCodeEnum = registerCodeEnum(
  { ...ROW_ERROR_CODES, ...CORRECTION_ROW_CODES },
  'RowErrorCode',
  'Why a row of a file was refused. Stable: clients branch on these, never on messages.',
);

const FileWarningCodeEnum = registerCodeEnum(
  FILE_WARNING_CODES,
  'FileWarningCode',
  'What a file-level warning is about (the file loaded, but something in it was not used).',
);
const FileErrorCodeEnum = registerCodeEnum(
  FILE_ERROR_CODE_TABLE,
  'FileErrorCode',
  "Why a file failed as a whole: its job's error code, a ZIP_* code when the ZIP itself was refused, CANCELLED, DUPLICATE_CONTENT or UPLOAD_EXPIRED, or why a signed upload's PUT failed.",
);

export enum OnInvalidRowsEnum {
  SKIP = 'SKIP',
  FAIL = 'FAIL',
}
registerEnumType(OnInvalidRowsEnum, {
  name: 'OnInvalidRows',
  description: 'SKIP: keep valid rows, report invalid ones (SUCCEEDED_WITH_ERRORS). FAIL: any invalid row fails the file and keeps no row.',
  valuesConfig: {
    SKIP: { description: 'Keep the valid rows and report the invalid ones (the job ends SUCCEEDED_WITH_ERRORS).' },
    FAIL: { description: 'Any invalid row fails the file (ROWS_INVALID); no row is kept.' },
  },
});

export enum OnDuplicateContentEnum {
  INGEST = 'INGEST',
  SKIP = 'SKIP',
}
registerEnumType(OnDuplicateContentEnum, {
  name: 'OnDuplicateContent',
  description:
    'INGEST: always ingest. SKIP: when an earlier file of yours with the same SHA-256, kind, spec version and program ended SUCCEEDED or SUCCEEDED_WITH_ERRORS, return that file and its job instead (outcome DUPLICATE_CONTENT); the new bytes are deleted.',
  valuesConfig: {
    INGEST: { description: 'Always ingest.' },
    SKIP: { description: 'Return the earlier file and job when the same content was already ingested (outcome DUPLICATE_CONTENT); the new bytes are deleted.' },
  },
});

export enum UploadOutcome {
  CREATED = 'CREATED',
  REPLAYED = 'REPLAYED',
  DUPLICATE_CONTENT = 'DUPLICATE_CONTENT',
}
registerEnumType(UploadOutcome, {
  name: 'UploadOutcome',
  description:
    'CREATED: a new file and job. REPLAYED: the same idempotency key (or a second import) returned the earlier file and job. DUPLICATE_CONTENT: onDuplicateContent SKIP found the same content already ingested; file and job are that earlier upload.',
  valuesConfig: {
    CREATED: { description: 'A new file and job.' },
    REPLAYED: { description: 'The same idempotency key (or a second import) returned the earlier file and job.' },
    DUPLICATE_CONTENT: { description: 'onDuplicateContent SKIP found the same content already ingested; file and job are that earlier upload.' },
  },
});

export { OnUnknownColumnsEnum };

@ObjectType({ description: 'A column a file warning is about.' })
export class FileWarningColumn {
  @Field(() => String, { description: 'The header cell as written (trimmed).' })
  name!: string;

  @Field(() => Int, { description: '1-based position of the cell in the header.' })
  position!: number;

  @Field(() => String, { nullable: true, description: 'The spec column it may have meant (a close name that no header cell matched), if any.' })
  suggestion!: string | null;
}

@ObjectType({ description: 'Something in a file that was not used, though the file loaded.' })
export class FileWarning {
  @Field(() => FileWarningCodeEnum, { description: 'Stable code. IGNORED_COLUMNS: columns the spec does not declare were dropped (onUnknownColumns IGNORE).' })
  code!: string;

  @Field(() => String, { description: 'Explanation naming the columns.' })
  message!: string;

  @Field(() => [FileWarningColumn], { description: 'The columns concerned (the first 100; count says how many in all).' })
  columns!: FileWarningColumn[];

  @Field(() => Int, { description: 'How many columns in all.' })
  count!: number;
}

export enum IngestModeEnum {
  MERGE = 'MERGE',
  APPEND = 'APPEND',
}
registerEnumType(IngestModeEnum, {
  name: 'IngestMode',
  description:
    'How a file’s valid rows are kept. Both keep them per file (the history). MERGE (default for a DIMENSION spec with unique columns) also merges them by key into the spec version’s current table: new keys inserted, changed rows updated, unchanged ones counted. APPEND (default otherwise; the only mode of EVENT and DATASET specs) keeps the history only.',
  valuesConfig: {
    MERGE: { description: 'Merge by the spec’s unique key into the current table (DIMENSION specs with unique columns only).' },
    APPEND: { description: 'Keep the file’s rows as a snapshot of their own; no current table is changed.' },
  },
});

@ObjectType({ description: 'What a merge did (or a dry run would do) to a dimension’s current table, in keys.' })
export class MergeCounts {
  @Field(() => GraphQLSafeInt, { description: 'Keys of the file that were not in the current table.' })
  inserted!: number;

  @Field(() => GraphQLSafeInt, { description: 'Keys whose row differs in at least one column; the file’s values replace it.' })
  updated!: number;

  @Field(() => GraphQLSafeInt, { description: 'Keys whose row is the same; left as they are (they keep the file that wrote them).' })
  unchanged!: number;

  @Field(() => GraphQLSafeInt, { description: 'deleteMissing: keys of the current table that the file does not have, removed. 0 otherwise.' })
  deleted!: number;
}

@ObjectType({ description: 'A value of one column.' })
export class ColumnValue {
  @Field(() => String, { description: 'Column name.' })
  column!: string;

  @Field(() => String, { nullable: true, description: 'The value as PostgreSQL prints it (dates YYYY-MM-DD, booleans true/false); null for NULL.' })
  value!: string | null;
}

@ObjectType({ description: 'One column of a changed row: before (current table) and after (the file).' })
export class ColumnChange {
  @Field(() => String, { description: 'Column name.' })
  column!: string;

  @Field(() => String, { nullable: true, description: 'Value in the current table; null for NULL.' })
  before!: string | null;

  @Field(() => String, { nullable: true, description: 'Value in the file; null for NULL (an empty cell).' })
  after!: string | null;
}

@ObjectType({ description: 'A key whose row the merge would change.' })
export class MergeChange {
  @Field(() => Int, { description: 'Line of the row in the file (header = 1).' })
  line!: number;

  @Field(() => [ColumnValue], { description: 'The key columns and their values.' })
  key!: ColumnValue[];

  @Field(() => ID, { description: 'The file that last wrote the current row.' })
  previousFileId!: string;

  @Field(() => Int, { description: 'Its line in that file.' })
  previousLine!: number;

  @Field(() => [ColumnChange], { description: 'Only the columns that change.' })
  changes!: ColumnChange[];
}

@ObjectType({ description: 'The diff a MERGE upload of the file would apply to the current table now.' })
export class MergeDiff extends MergeCounts {
  @Field(() => [MergeChange], { description: 'The first 20 updated keys, by line (updated counts all of them).' })
  changes!: MergeChange[];
}

export enum FileKindEnum {
  CSV = 'CSV',
  ZIP = 'ZIP',
}
registerEnumType(FileKindEnum, {
  name: 'FileKind',
  description: 'CSV, or a national program ZIP of CSVs.',
  valuesConfig: {
    CSV: { description: 'One CSV file.' },
    ZIP: { description: 'A national program ZIP of CSVs; each CSV becomes a file of its own.' },
  },
});

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

  @Field(() => String, {
    nullable: true,
    description:
      'Invalid rows as CSV: a leading _line column (the line number), the original cells, error_description (ingestion_error/… or emission-error/…). Fixed and sent back with uploadCorrections.',
  })
  errors!: string | null;
}

@ObjectType({ description: 'Why a file failed as a whole.' })
export class FileError {
  @Field(() => FileErrorCodeEnum, {
    description:
      'Stable code: EMPTY_FILE, HEADER_INVALID, ROWS_INVALID, ALL_ROWS_INVALID, CORRECTIONS_INVALID, NOT_A_CSV, UNSUPPORTED_ENCODING, MIXED_LINE_ENDINGS, SPEC_NOT_FOUND, ZIP_*.',
  })
  /** A FileErrorCode; typed as the stored text (the enum checks it on the way out). */
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

  @Field(() => RowErrorCodeEnum, {
    description:
      'Stable code, e.g. NOT_A_NUMBER, REQUIRED_VALUE_MISSING, DUPLICATE_KEY; for corrections uploads also ALREADY_CORRECTED (the line is in the file’s data already) and UNKNOWN_LINE (not an invalid line of the file).',
  })
  /** A FileRowErrorCode; typed as the stored text (the enum checks it on the way out). */
  code!: string;

  @Field(() => String, { description: 'Explanation naming the value and the rule.' })
  message!: string;
}

export const RowErrorConnection = Connection(RowErrorType, 'RowErrorConnection', {
  description: 'A page of row errors, by line.',
  nodes: 'Errors on this page.',
  totalCount: 'All errors of the file.',
});
export type RowErrorConnection = InstanceType<typeof RowErrorConnection>;

@ObjectType({ description: 'How many row errors carry one code.' })
export class ErrorCodeCount {
  @Field(() => RowErrorCodeEnum, { description: 'Row error code, e.g. NOT_A_NUMBER.' })
  /** A FileRowErrorCode; typed as the stored text (the enum checks it on the way out). */
  code!: string;

  @Field(() => GraphQLSafeInt, { description: 'Row errors with this code.' })
  count!: number;
}

@ObjectType({ description: 'One of the most frequent offending values of a column.' })
export class ErrorValueCount {
  @Field(() => String, { description: 'The cell text (cut at 200 characters); "••••" for a column the spec marks sensitive.' })
  value!: string;

  @Field(() => GraphQLSafeInt, {
    description:
      'Row errors with this value. Exact while the column has at most 64 distinct bad values; beyond that an estimate that may be too high by at most the smallest kept count (Space-Saving sketch).',
  })
  count!: number;
}

@ObjectType('ColumnErrorSummary', { description: 'Row errors of one column.' })
export class ColumnErrorSummaryType {
  @Field(() => String, { description: 'Column (SQL name; the unique key columns joined by commas for DUPLICATE_KEY).' })
  column!: string;

  @Field(() => GraphQLSafeInt, { description: 'Row errors about this column.' })
  count!: number;

  @Field(() => [ErrorCodeCount], { description: 'By code, most frequent first.' })
  byCode!: ErrorCodeCount[];

  @Field(() => [ErrorValueCount], { description: 'The 10 most frequent offending values, most frequent first (bounded memory: not every value is kept).' })
  topValues!: ErrorValueCount[];
}

@ObjectType('ErrorSummary', { description: 'Error analytics of a file, computed while its rows streamed.' })
export class ErrorSummaryType {
  @Field(() => GraphQLSafeInt, { description: 'Row errors in all (an invalid row may have several).' })
  total!: number;

  @Field(() => [ErrorCodeCount], { description: 'By code, most frequent first.' })
  byCode!: ErrorCodeCount[];

  @Field(() => [ColumnErrorSummaryType], {
    description: 'By column, most errors first; errors about a whole row (WRONG_FIELD_COUNT, MALFORMED_QUOTES) have no column.',
  })
  byColumn!: ColumnErrorSummaryType[];
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

  @Field(() => IngestModeEnum, {
    nullable: true,
    description:
      'MERGE or APPEND. Null for a ZIP uploaded without a mode (each CSV has its own), a signed upload not imported yet (importFile chooses it) and files from before modes (they appended).',
  })
  mode!: IngestModeEnum | null;

  @Field(() => Boolean, { description: 'MERGE: keys absent from the file are removed from the current table (a full snapshot).' })
  deleteMissing!: boolean;

  @Field(() => MergeCounts, { nullable: true, description: 'MERGE: what the merge did to the current table, once it committed. Null otherwise.' })
  merge!: MergeCounts | null;

  @Field(() => FileOutputs, { description: 'Storage keys of the upload and its outputs.' })
  outputs!: FileOutputs;

  @Field(() => FileError, { nullable: true, description: 'Why the file failed as a whole.' })
  error!: FileError | null;

  @Field(() => [FileWarning], { description: 'File-level warnings of its last processing, e.g. IGNORED_COLUMNS; empty when none.' })
  warnings!: FileWarning[];
  @Field(() => ErrorSummaryType, {
    nullable: true,
    description:
      'Row error analytics: counts by code and by column, top offending values per column. Null until processed, or when the file failed before its rows were read. A ZIP sums its CSVs.',
  })
  errorSummary!: ErrorSummaryType | null;

  @Field(() => ID, { nullable: true, description: 'A corrections upload (uploadCorrections): the file whose error report it corrects.' })
  correctsFileId!: string | null;

  @Field(() => FileDialectType, {
    nullable: true,
    description: 'How the CSV was read (delimiter, encoding, BOM, line ending); null until its header has been read, and for a ZIP.',
  })
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
  duplicateOfId!: string | null;
}

export const FileConnection = Connection(FileType, 'FileConnection', {
  description: 'A page of files, newest first.',
  nodes: 'Files on this page.',
  totalCount: 'Files matching the filter.',
});
export type FileConnection = InstanceType<typeof FileConnection>;

@ObjectType({ description: 'The stored file and the job processing it, returned at once.' })
export class UploadResult {
  @Field(() => FileType, { description: 'The file record (raw bytes already stored).' })
  file!: FileType;

  @Field(() => JobType, { description: 'The job; watch it with jobUpdated.' })
  job!: JobType;

  @Field(() => Boolean, { description: 'False when the idempotency key, or onDuplicateContent: SKIP, returned an earlier upload.' })
  created!: boolean;

  @Field(() => UploadOutcome, { description: 'Why this file and job were returned.' })
  outcome!: UploadOutcome;

  @Field(() => FileType, { nullable: true, description: 'With outcome DUPLICATE_CONTENT: the earlier file whose content matched (the same as `file`).' })
  duplicateOf!: FileType | null;
}

@ObjectType({ description: 'A header problem found by validateFile.' })
export class HeaderProblemType {
  @Field(() => String, { description: 'MISSING_REQUIRED_COLUMN, UNKNOWN_COLUMN, DUPLICATE_COLUMN, EMPTY_HEADER, INVALID_CHARACTER or INVALID_UTF8.' })
  code!: string;

  @Field(() => String, { nullable: true, description: 'The column concerned.' })
  column!: string | null;

  @Field(() => String, { description: 'Explanation.' })
  message!: string;

  @Field(() => String, {
    nullable: true,
    description:
      'The closest name on the other side, when one is close: for UNKNOWN_COLUMN the spec column it may mean; for MISSING_REQUIRED_COLUMN the header cell that may be it.',
  })
  suggestion!: string | null;
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

  @Field(() => [FileWarning], { description: 'What an upload of this file would be warned about, e.g. IGNORED_COLUMNS.' })
  warnings!: FileWarning[];
  @Field(() => IngestModeEnum, { description: 'The mode the file was checked with (the upload default when not given).' })
  mode!: IngestModeEnum;

  @Field(() => MergeDiff, {
    nullable: true,
    description: 'MERGE: what an upload of this file would do to the current table now (valid rows only). Null for APPEND or when the header is refused.',
  })
  diff!: MergeDiff | null;

  @Field(() => FileDialectType, { nullable: true, description: 'How the CSV was read; null when it was refused before its header was read.' })
  dialect!: FileDialectType | null;
}

export { Spec };
