import type { Writable } from 'node:stream';
import type { CsvDialect, CsvDialectOptions } from '../../ingest/csv-dialect';
import type postgres from 'postgres';
import type { Sql } from '../../db/client';
import type { Tx } from '../../db/tx';
import type { FileWarning } from './header-policy';
import { dryRunMerge, type MergeCounts } from './merge.store';
import type { ErrorSummary } from '../../ingest/error-summary';

export type OnInvalidRows = 'SKIP' | 'FAIL';

export interface StoredDialect {
  requested?: CsvDialectOptions;
  detected?: CsvDialect;
}

/** The jsonb value of a new file's `dialect` column. */
function storedDialect(requested: CsvDialectOptions | undefined): postgres.JSONValue {
  return { requested: { ...requested } } as postgres.JSONValue;
}

export interface FileRecord {
  id: string;
  kind: 'CSV' | 'ZIP';
  parentId: string | null;
  specId: string | null;
  program: string | null;
  fileName: string;
  contentType: string | null;
  storageKey: string | null;
  size: number | null;
  sha256: string | null;
  jobId: string | null;
  onInvalidRows: OnInvalidRows;
  totalRows: number | null;
  validRows: number | null;
  invalidRows: number | null;
  validOutputKey: string | null;
  errorOutputKey: string | null;
  error: { code: string; message: string; problems?: unknown } | null;
  /** See header-policy.ts FileWarning; empty when none. */
  warnings: FileWarning[];
  /** What the upload asked for (encoding, delimiter) and, once read, what the pipeline found. */
  dialect: StoredDialect | null;
  idempotencyKey: string | null;
  createdBy: string;
  createdAt: Date;
  updatedAt: Date;
  /** Signed-URL uploads only; see signed-uploads.store.ts. */
  uploadState: UploadState | null;
  declaredSize: number | null;
  declaredSha256: string | null;
  uploadExpiresAt: Date | null;
  uploadTokenUsedAt: Date | null;
  uploadedAt: Date | null;
  folder: string | null;
  tags: string[] | null;
  metadata: Record<string, unknown> | null;
  /** Set on a signed upload whose import found this earlier file with the same content (onDuplicateContent: SKIP). */
  duplicateOf: string | null;
  /** See files.ingest_mode: null = APPEND for a CSV, each CSV's default for a ZIP. */
  ingestMode: 'MERGE' | 'APPEND' | null;
  deleteMissing: boolean;
  /** What the merge of this file did to the current table (MERGE only, once it committed). */
  merge: MergeCounts | null;
  /** Error analytics of the rows read; null until processed or when the file failed as a whole. */
  errorSummary: ErrorSummary | null;
  /** A corrections upload: the file whose error report it corrects. */
  correctsFileId: string | null;
}

export type OnDuplicateContent = 'INGEST' | 'SKIP';

export type UploadState = 'PENDING_UPLOAD' | 'UPLOADING' | 'UPLOADED' | 'IMPORTED' | 'EXPIRED';

export interface RowErrorRecord {
  line: number;
  idx: number;
  column: string | null;
  code: string;
  message: string;
}

const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

export function toFile(r: Record<string, unknown>): FileRecord {
  return {
    id: r['id'] as string,
    kind: r['kind'] as 'CSV' | 'ZIP',
    parentId: (r['parent_id'] as string | null) ?? null,
    specId: (r['spec_id'] as string | null) ?? null,
    program: (r['program'] as string | null) ?? null,
    fileName: r['file_name'] as string,
    contentType: (r['content_type'] as string | null) ?? null,
    storageKey: (r['storage_key'] as string | null) ?? null,
    size: num(r['size']),
    sha256: (r['sha256'] as string | null) ?? null,
    jobId: (r['job_id'] as string | null) ?? null,
    onInvalidRows: r['on_invalid_rows'] as OnInvalidRows,
    dialect: (r['dialect'] as StoredDialect | null) ?? null,
    totalRows: num(r['total_rows']),
    validRows: num(r['valid_rows']),
    invalidRows: num(r['invalid_rows']),
    validOutputKey: (r['valid_output_key'] as string | null) ?? null,
    errorOutputKey: (r['error_output_key'] as string | null) ?? null,
    error: (r['error'] as FileRecord['error']) ?? null,
    warnings: (r['warnings'] as FileWarning[] | null) ?? [],
    idempotencyKey: (r['idempotency_key'] as string | null) ?? null,
    createdBy: r['created_by'] as string,
    createdAt: r['created_at'] as Date,
    updatedAt: r['updated_at'] as Date,
    uploadState: (r['upload_state'] as UploadState | null) ?? null,
    declaredSize: num(r['declared_size']),
    declaredSha256: (r['declared_sha256'] as string | null) ?? null,
    uploadExpiresAt: (r['upload_expires_at'] as Date | null) ?? null,
    uploadTokenUsedAt: (r['upload_token_used_at'] as Date | null) ?? null,
    uploadedAt: (r['uploaded_at'] as Date | null) ?? null,
    folder: (r['folder'] as string | null) ?? null,
    tags: (r['tags'] as string[] | null) ?? null,
    metadata: (r['metadata'] as Record<string, unknown> | null) ?? null,
    duplicateOf: (r['duplicate_of'] as string | null) ?? null,
    ingestMode: (r['ingest_mode'] as 'MERGE' | 'APPEND' | null) ?? null,
    deleteMissing: (r['delete_missing'] as boolean | undefined) ?? false,
    merge: (r['merge'] as MergeCounts | null) ?? null,
    errorSummary: (r['error_summary'] as ErrorSummary | null) ?? null,
    correctsFileId: (r['corrects_file_id'] as string | null) ?? null,
  };
}

export interface FileFilter {
  createdBy?: string;
  program?: string | null;
  specIds?: string[];
  fileName?: string | null;
  parentId?: string | null;
  correctsFileId?: string | null;
}

export class FilesStore {
  constructor(private readonly sql: Sql) {}

  /**
   * The earliest top-level file of `createdBy` with the same bytes, kind, spec version and program
   * whose job ended SUCCEEDED or SUCCEEDED_WITH_ERRORS (onDuplicateContent: SKIP). Files still
   * running, failed or cancelled do not count: their content is not in yet.
   */
  async findIngestedDuplicate(v: { createdBy: string; sha256: string; kind: 'CSV' | 'ZIP'; specId: string | null; program: string | null; excludeId?: string }): Promise<FileRecord | undefined> {
    const [row] = await this.sql`
      select f.* from files f join jobs j on j.id = f.job_id
      where f.created_by = ${v.createdBy} and f.sha256 = ${v.sha256} and f.parent_id is null
        and f.kind = ${v.kind}::file_kind
        and f.spec_id is not distinct from ${v.specId}::uuid and f.program is not distinct from ${v.program}::text
        and f.id <> ${v.excludeId ?? '00000000-0000-0000-0000-000000000000'}::uuid
        and j.state in ('SUCCEEDED', 'SUCCEEDED_WITH_ERRORS')
      order by f.created_at, f.id
      limit 1`;
    return row ? toFile(row) : undefined;
  }

  /**
   * A signed upload that duplicates `duplicateOf`: final (EXPIRED, as a file never imported), its
   * object gone, pointing at the earlier file. Only from a state that had not been imported.
   */
  async markDuplicate(id: string, duplicateOf: string, v: { size: number; sha256: string }): Promise<FileRecord | undefined> {
    const error = { code: 'DUPLICATE_CONTENT', message: `Same content as file ${duplicateOf}, which is already ingested; nothing was ingested again (onDuplicateContent: SKIP)` };
    const [row] = await this.sql`
      update files set upload_state = 'EXPIRED', duplicate_of = ${duplicateOf}, storage_key = null, size = ${v.size}, sha256 = ${v.sha256},
        error = ${this.sql.json(error)}, updated_at = now()
      where id = ${id} and upload_state in ('PENDING_UPLOAD', 'UPLOADED')
      returning *`;
    return row ? toFile(row) : undefined;
  }

  async insert(
    tx: Tx,
    v: {
      id: string;
      kind: 'CSV' | 'ZIP';
      parentId?: string | null;
      specId: string | null;
      program: string | null;
      fileName: string;
      contentType: string | null;
      storageKey: string | null;
      size: number | null;
      sha256: string | null;
      onInvalidRows: OnInvalidRows;
      idempotencyKey: string | null;
      createdBy: string;
      ingestMode?: 'MERGE' | 'APPEND' | null;
      deleteMissing?: boolean;
      correctsFileId?: string | null;
      /** Encoding and delimiter asked for; absent ones are detected. */
      dialect?: CsvDialectOptions;
    },
  ): Promise<FileRecord | undefined> {
    const [row] = await tx`
      insert into files (id, kind, parent_id, spec_id, program, file_name, content_type, storage_key, size, sha256, on_invalid_rows, idempotency_key, created_by,
                         ingest_mode, delete_missing, corrects_file_id, dialect)
      values (${v.id}, ${v.kind}::file_kind, ${v.parentId ?? null}, ${v.specId}, ${v.program}, ${v.fileName}, ${v.contentType}, ${v.storageKey},
              ${v.size}, ${v.sha256}, ${v.onInvalidRows}, ${v.idempotencyKey}, ${v.createdBy}, ${v.ingestMode ?? null}, ${v.deleteMissing ?? false}, ${v.correctsFileId ?? null},
              ${tx.json(storedDialect(v.dialect))})
      on conflict (created_by, idempotency_key) do nothing
      returning *`;
    return row ? toFile(row) : undefined;
  }

  async setJob(tx: Tx, fileId: string, jobId: string): Promise<void> {
    await tx`update files set job_id = ${jobId}, updated_at = now() where id = ${fileId}`;
  }

  async get(id: string, tx: Tx = this.sql): Promise<FileRecord | undefined> {
    const [row] = await tx`select * from files where id = ${id}`;
    return row ? toFile(row) : undefined;
  }

  async byIdempotencyKey(createdBy: string, key: string): Promise<FileRecord | undefined> {
    const [row] = await this.sql`select * from files where created_by = ${createdBy} and idempotency_key = ${key}`;
    return row ? toFile(row) : undefined;
  }

  private where(f: FileFilter, after?: { createdAt: Date; id: string }) {
    const s = this.sql;
    const parts = [s`true`];
    if (f.createdBy) parts.push(s`created_by = ${f.createdBy}`);
    if (f.program) parts.push(s`program = ${f.program}`);
    if (f.specIds) parts.push(s`spec_id = any(${f.specIds}::uuid[])`);
    if (f.fileName) parts.push(s`file_name = ${f.fileName}`);
    if (f.parentId) parts.push(s`parent_id = ${f.parentId}`);
    if (f.correctsFileId) parts.push(s`corrects_file_id = ${f.correctsFileId}`);
    if (after) parts.push(s`(created_at, id) < (${after.createdAt}, ${after.id}::uuid)`);
    return parts.reduce((acc, p) => s`${acc} and ${p}`);
  }

  async list(f: FileFilter, limit: number, after?: { createdAt: Date; id: string }): Promise<FileRecord[]> {
    const rows = await this.sql`select * from files where ${this.where(f, after)} order by created_at desc, id desc limit ${limit}`;
    return rows.map(toFile);
  }

  async count(f: FileFilter): Promise<number> {
    const [row] = await this.sql`select count(*)::int as n from files where ${this.where(f)}`;
    return row!['n'] as number;
  }

  async setOutcome(
    tx: Tx | undefined,
    id: string,
    o: {
      totalRows: number | null;
      validRows: number | null;
      invalidRows: number | null;
      validOutputKey: string | null;
      errorOutputKey: string | null;
      error: FileRecord['error'];
      /** Replaces the file's warnings; none when absent (a retried attempt starts clean). */
      warnings?: FileWarning[];
      errorSummary?: ErrorSummary | null;
    },
  ): Promise<void> {
    tx ??= this.sql;
    const warnings = o.warnings && o.warnings.length > 0 ? tx.json(o.warnings as unknown as postgres.JSONValue) : null;
    const summary = o.errorSummary ?? null;
    await tx`
      update files set total_rows = ${o.totalRows}, valid_rows = ${o.validRows}, invalid_rows = ${o.invalidRows},
        valid_output_key = ${o.validOutputKey}, error_output_key = ${o.errorOutputKey},
        error = ${o.error ? tx.json(o.error as postgres.JSONValue) : null}, warnings = ${warnings},
        error_summary = ${summary ? tx.json(summary as unknown as postgres.JSONValue) : null}, updated_at = now()
      where id = ${id}`;
  }

  /** Removes the CSV children of a ZIP (a retried attempt re-creates them; row errors cascade). */
  async deleteChildren(parentId: string): Promise<void> {
    await this.sql`delete from files where parent_id = ${parentId}`;
  }

  async insertChild(
    parent: FileRecord,
    v: { id: string; program: string | null; fileName: string; specId: string | null; ingestMode?: 'MERGE' | 'APPEND' | null; deleteMissing?: boolean; merge?: MergeCounts | null },
  ): Promise<FileRecord> {
    const [row] = await this.sql`
      insert into files (id, kind, parent_id, spec_id, program, file_name, job_id, on_invalid_rows, created_by, ingest_mode, delete_missing, merge, dialect)
      values (${v.id}, 'CSV', ${parent.id}, ${v.specId}, ${v.program}, ${v.fileName}, ${parent.jobId}, ${parent.onInvalidRows}, ${parent.createdBy},
              ${v.ingestMode ?? null}, ${v.deleteMissing ?? false}, ${v.merge ? this.sql.json(v.merge as unknown as postgres.JSONValue) : null},
              ${this.sql.json(storedDialect(parent.dialect?.requested))})
      returning *`;
    return toFile(row!);
  }

  /**
   * The merge counts a committed attempt recorded for `fileId`, with the file's row locked for
   * the caller's transaction: a retry finds them and does not merge the file a second time.
   */
  async lockMerge(tx: postgres.TransactionSql, fileId: string): Promise<MergeCounts | null> {
    const [row] = await tx`select merge from files where id = ${fileId} for update`;
    return (row?.['merge'] as MergeCounts | null | undefined) ?? null;
  }

  async setMerge(tx: postgres.TransactionSql, fileId: string, counts: MergeCounts): Promise<void> {
    await tx`update files set merge = ${tx.json(counts as unknown as postgres.JSONValue)}, updated_at = now() where id = ${fileId}`;
  }

  /** See dryRunMerge: `load` COPYs into a temp table of a transaction that is rolled back. */
  dryRunMerge<T>(m: Parameters<typeof dryRunMerge>[1], load: (copy: Writable) => Promise<T>) {
    return dryRunMerge(this.sql, m, load);

  }

  /** Records the dialect the pipeline read the file in (kept beside what was asked for). */
  async setDetectedDialect(fileId: string, detected: CsvDialect): Promise<void> {
    await this.sql`update files set dialect = coalesce(dialect, '{}'::jsonb) || ${this.sql.json({ detected } as never)}, updated_at = now() where id = ${fileId}`;
  }

  /** Replaces what the upload asks for (importFile may name it after requestUploadUrl). */
  async setRequestedDialect(tx: Tx, fileId: string, requested: CsvDialectOptions): Promise<void> {
    await tx`update files set dialect = coalesce(dialect, '{}'::jsonb) || ${tx.json({ requested } as never)}, updated_at = now() where id = ${fileId}`;
  }

  async deleteRowErrors(fileId: string): Promise<void> {
    await this.sql`delete from row_errors where file_id = ${fileId}`;
  }

  async insertRowErrors(fileId: string, rows: RowErrorRecord[]): Promise<void> {
    if (rows.length === 0) return;
    await this.sql`insert into row_errors ${this.sql(
      rows.map((r) => ({ file_id: fileId, line: r.line, idx: r.idx, column: r.column, code: r.code, message: r.message })),
    )} on conflict do nothing`;
  }

  async rowErrors(fileId: string, limit: number, after?: { line: number; idx: number }): Promise<RowErrorRecord[]> {
    const rows = after
      ? await this.sql`select * from row_errors where file_id = ${fileId} and (line, idx) > (${after.line}, ${after.idx}) order by line, idx limit ${limit}`
      : await this.sql`select * from row_errors where file_id = ${fileId} order by line, idx limit ${limit}`;
    return rows.map((r) => ({ line: r['line'] as number, idx: r['idx'] as number, column: (r['column'] as string | null) ?? null, code: r['code'] as string, message: r['message'] as string }));
  }

  async countRowErrors(fileId: string): Promise<number> {
    const [row] = await this.sql`select count(*)::int as n from row_errors where file_id = ${fileId}`;
    return row!['n'] as number;
  }
}
