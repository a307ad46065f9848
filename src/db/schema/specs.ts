import { sql } from 'drizzle-orm';
import { bigint, boolean, index, integer, jsonb, pgEnum, pgTable, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
// Types only (`.$type<…>()` narrows the row type; no SQL): the shapes the stores write into these columns.
import type { ErrorSummary } from '../../ingest/error-summary';
import type { CsvDialect, CsvDialectOptions } from '../../ingest/csv-dialect';
import type { FileWarning } from '../../modules/files/header-policy';
import type { CompiledSpec } from '../../ingest/contract';

// Shapes of the files table's columns, owned here (the stores and services import them).
export type OnInvalidRows = 'SKIP' | 'FAIL';

export interface StoredDialect {
  requested?: CsvDialectOptions;
  detected?: CsvDialect;
}

export type FileError = { code: string; message: string; problems?: unknown };

export type IngestMode = 'MERGE' | 'APPEND';

export interface MergeCounts {
  inserted: number;
  updated: number;
  unchanged: number;
  deleted: number;
}

export const specKindEnum = pgEnum('spec_kind', ['EVENT', 'DIMENSION', 'DATASET']);

/** Registered dataset schemas. Each (name, version) owns one typed table `table_name`. */
export const specs = pgTable(
  'specs',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    name: text('name').notNull(),
    version: integer('version').notNull(),
    kind: specKindEnum('kind').notNull(),
    program: text('program').notNull(),
    /** The spec JSON exactly as registered. */
    raw: jsonb('raw').notNull(),
    /** The compiled form the validator and the table were built from. */
    compiled: jsonb('compiled').$type<CompiledSpec>().notNull(),
    tableName: text('table_name').notNull().unique(),
    createdBy: text('created_by').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [uniqueIndex('specs_name_version_idx').on(t.name, t.version)],
);

export const fileKindEnum = pgEnum('file_kind', ['CSV', 'ZIP']);

/**
 * Where a file requested with requestUploadUrl is before its import: PENDING_UPLOAD (URL handed
 * out) -> UPLOADING (Sluice's own URL is receiving the body) -> UPLOADED -> IMPORTED (a job owns
 * it), or EXPIRED (never imported in time; the object is deleted). NULL for direct uploads.
 */
export const fileUploadStateEnum = pgEnum('file_upload_state', ['PENDING_UPLOAD', 'UPLOADING', 'UPLOADED', 'IMPORTED', 'EXPIRED']);

/** An uploaded file (or a CSV inside an uploaded ZIP), its raw object and its outputs. */
export const files = pgTable(
  'files',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    kind: fileKindEnum('kind').notNull(),
    /** The ZIP this CSV came from. */
    parentId: uuid('parent_id'),
    specId: uuid('spec_id').references(() => specs.id),
    program: text('program'),
    fileName: text('file_name').notNull(),
    contentType: text('content_type'),
    storageKey: text('storage_key'),
    size: bigint('size', { mode: 'number' }),
    sha256: text('sha256'),
    jobId: uuid('job_id'),
    onInvalidRows: text('on_invalid_rows').$type<OnInvalidRows>().notNull().default('SKIP'),
    totalRows: integer('total_rows'),
    validRows: integer('valid_rows'),
    invalidRows: integer('invalid_rows'),
    validOutputKey: text('valid_output_key'),
    errorOutputKey: text('error_output_key'),
    /** `{ code, message, problems? }` when the file as a whole failed (header, empty, ZIP). */
    error: jsonb('error').$type<FileError>(),
    /** File-level warnings of the last processing (`[{ code, message, columns, count }]`); NULL = none. */
    warnings: jsonb('warnings').$type<FileWarning[]>(),
    /** `{ requested: { encoding?, delimiter? }, detected?: { delimiter, encoding, bom, lineEnding } }`: how the CSV is to be and was read. */
    dialect: jsonb('dialect').$type<StoredDialect>(),
    idempotencyKey: text('idempotency_key'),
    createdBy: text('created_by').notNull(),
    /** Milliseconds, as JavaScript dates and list cursors carry them: a cursor then names a row exactly. */
    createdAt: timestamp('created_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
    /** Signed-URL uploads only (NULL for direct uploads), see fileUploadStateEnum. */
    uploadState: fileUploadStateEnum('upload_state'),
    /** Size and SHA-256 the client declared when it asked for the URL; the import checks the object against them. */
    declaredSize: bigint('declared_size', { mode: 'number' }),
    declaredSha256: text('declared_sha256'),
    /** The upload URL accepts no PUT after this. */
    uploadExpiresAt: timestamp('upload_expires_at', { withTimezone: true }),
    /** When Sluice's own single-use URL was claimed by a PUT (UPLOADING); cleared if that PUT fails its checks. */
    uploadTokenUsedAt: timestamp('upload_token_used_at', { withTimezone: true }),
    uploadedAt: timestamp('uploaded_at', { withTimezone: true }),
    /** Client labels from requestUploadUrl: a logical folder, tags and a small JSON object. */
    folder: text('folder'),
    tags: text('tags').array(),
    metadata: jsonb('metadata').$type<Record<string, unknown>>(),
    /** A signed upload imported with onDuplicateContent: SKIP whose content matched this earlier file; its object was deleted. */
    duplicateOf: uuid('duplicate_of'),
    /**
     * MERGE (dimension rows are merged by key into the spec version's current table) or APPEND
     * (history only). NULL for files stored before modes existed (APPEND), and for a ZIP uploaded
     * without a mode (each CSV gets its spec's default).
     */
    ingestMode: text('ingest_mode').$type<IngestMode>(),
    /** MERGE only: keys of the current table absent from the file are removed (a full snapshot). */
    deleteMissing: boolean('delete_missing').notNull().default(false),
    /** `{ inserted, updated, unchanged, deleted }`, written in the transaction that merged the file. */
    merge: jsonb('merge').$type<MergeCounts>(),
    /** Error analytics `{ total, byCode, byColumn }` computed while the rows streamed (see ingest/error-summary.ts). */
    errorSummary: jsonb('error_summary').$type<ErrorSummary>(),
    /** A corrections upload: the file whose error report it fixes (its rows join that file's). */
    correctsFileId: uuid('corrects_file_id'),
  },
  (t) => [
    uniqueIndex('files_idempotency_idx').on(t.createdBy, t.idempotencyKey),
    index('files_upload_expiry_idx').on(t.uploadExpiresAt).where(sql`${t.uploadState} in ('PENDING_UPLOAD', 'UPLOADING', 'UPLOADED')`),
    index('files_created_at_idx').on(t.createdAt.desc(), t.id.desc()),
    index('files_file_name_idx').on(t.fileName),
    index('files_parent_idx').on(t.parentId),
    // onDuplicateContent: SKIP looks up an earlier upload of the same bytes by the same client.
    index('files_content_idx').on(t.createdBy, t.sha256).where(sql`${t.parentId} is null`),
    index('files_corrects_idx').on(t.correctsFileId),
  ],
);

/** Invalid rows of a file: line number, column, code and message. */
export const rowErrors = pgTable(
  'row_errors',
  {
    fileId: uuid('file_id')
      .notNull()
      .references(() => files.id, { onDelete: 'cascade' }),
    line: integer('line').notNull(),
    idx: integer('idx').notNull(),
    column: text('column'),
    code: text('code').notNull(),
    message: text('message').notNull(),
  },
  (t) => [uniqueIndex('row_errors_pk').on(t.fileId, t.line, t.idx)],
);

/**
 * A file's rows, loaded while the file was being uploaded (modules/files/load-during-upload.ts):
 * its partition `dsf_<file id>` of `table_name` exists, committed and detached, holding every row
 * of the stored bytes (`size`, `sha256`); `result` is the pipeline's result for them. The file's
 * job attaches that partition instead of reading the file again, and removes the row in the same
 * transaction. No foreign key: the row commits before (or without) the file's own.
 */
export const filePreloads = pgTable('file_preloads', {
  fileId: uuid('file_id').primaryKey(),
  tableName: text('table_name').notNull(),
  size: bigint('size', { mode: 'number' }).notNull(),
  sha256: text('sha256').notNull(),
  result: jsonb('result').notNull(),
  /** The valid-rows CSV the load wrote to storage (key, size, SHA-256); null when it is the upload itself. */
  validCsv: jsonb('valid_csv'),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
});

/**
 * How far a load during upload got (modules/files/load-during-upload.ts), written outside its
 * transaction every SLUICE_JOB_PROGRESS_INTERVAL_MS or so: the file's job, waiting for the load
 * to commit, reports it as its own progress. Removed with the load's record.
 */
export const fileLoadProgress = pgTable('file_load_progress', {
  fileId: uuid('file_id').primaryKey(),
  processed: bigint('processed', { mode: 'number' }).notNull(),
  succeeded: bigint('succeeded', { mode: 'number' }).notNull(),
  bytes: bigint('bytes', { mode: 'number' }).notNull(),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
});
