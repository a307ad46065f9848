import type { Writable } from 'node:stream';
import type { CsvDialect, CsvDialectOptions } from '../../ingest/csv-dialect';
import type postgres from 'postgres';
import { getTableColumns } from 'drizzle-orm';
import type { FileError, OnInvalidRows } from '../../db/schema/specs';

export type { FileError, OnInvalidRows, StoredDialect } from '../../db/schema/specs';
import type { Sql } from '../../db/client';
import { decoder } from '../../db/rows';
import { files, rowErrors } from '../../db/schema';
import type { Tx } from '../../db/tx';
import type { JobState } from '../../jobs/state';
import type { FileWarning } from './header-policy';
import type { IngestMode } from './ingest-mode';
import { dryRunMerge, type MergeCounts } from './merge.store';
import type { ErrorSummary } from '../../ingest/error-summary';

/** The jsonb value of a new file's `dialect` column. */
function storedDialect(requested: CsvDialectOptions | undefined): postgres.JSONValue {
  return { requested: { ...requested } } as postgres.JSONValue;
}

/** `files.error`: why the file as a whole failed (header, empty, ZIP). */
/** A `files` row as the drizzle table types it (jsonb and union columns narrowed there with `.$type`). */
type FileRow = typeof files.$inferSelect;

/**
 * A file: its `files` row, except that `warnings` (NULL in the table when there are none) is
 * always a list (see header-policy.ts FileWarning; empty when none). Signed-URL columns
 * (uploadState..uploadedAt, folder, tags, metadata) are set for signed uploads only; see
 * signed-uploads.store.ts.
 */
export type FileRecord = Omit<FileRow, 'warnings'> & { warnings: FileWarning[] };

/** The keys of a FileRecord (the `files` table's columns, camel-cased as drizzle names them). */
export const FILE_RECORD_KEYS: readonly string[] = Object.keys(getTableColumns(files));

export type OnDuplicateContent = 'INGEST' | 'SKIP';

export type UploadState = 'PENDING_UPLOAD' | 'UPLOADING' | 'UPLOADED' | 'IMPORTED' | 'EXPIRED';

/** A row error of a file (its `row_errors` row without the file id). */
export type RowErrorRecord = Omit<typeof rowErrors.$inferSelect, 'fileId'>;

const decodeFileRow = decoder(files);
/** Rows of `page`: a file's columns plus the page's own two. */
const decodePageRow = decoder(files, { ignore: ['_total', '_job_state'] });

export function decodeFile(r: Record<string, unknown>, index?: number, rows?: readonly unknown[]): FileRecord {
  return withWarnings(decodeFileRow(r, index, rows));
}

function withWarnings(f: ReturnType<typeof decodeFileRow>): FileRecord {
  return { ...f, warnings: f.warnings ?? [] };
}

const decodeRowError = decoder(rowErrors);

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
  async findIngestedDuplicate(v: {
    createdBy: string;
    sha256: string;
    kind: 'CSV' | 'ZIP';
    specId: string | null;
    program: string | null;
    excludeId?: string;
  }): Promise<FileRecord | undefined> {
    const [row] = await this.sql`
      select f.* from files f join jobs j on j.id = f.job_id
      where f.created_by = ${v.createdBy} and f.sha256 = ${v.sha256} and f.parent_id is null
        and f.kind = ${v.kind}::file_kind
        and f.spec_id is not distinct from ${v.specId}::uuid and f.program is not distinct from ${v.program}::text
        and f.id <> ${v.excludeId ?? '00000000-0000-0000-0000-000000000000'}::uuid
        and j.state in ('SUCCEEDED', 'SUCCEEDED_WITH_ERRORS')
      order by f.created_at, f.id
      limit 1`;
    return row ? decodeFile(row) : undefined;
  }

  /**
   * A signed upload that duplicates `duplicateOf`: final (EXPIRED, as a file never imported), its
   * object gone, pointing at the earlier file. Only from a state that had not been imported.
   */
  async markDuplicate(id: string, duplicateOf: string, v: { size: number; sha256: string }): Promise<FileRecord | undefined> {
    const error = {
      code: 'DUPLICATE_CONTENT',
      message: `Same content as file ${duplicateOf}, which is already ingested; nothing was ingested again (onDuplicateContent: SKIP)`,
    };
    const [row] = await this.sql`
      update files set upload_state = 'EXPIRED', duplicate_of = ${duplicateOf}, storage_key = null, size = ${v.size}, sha256 = ${v.sha256},
        error = ${this.sql.json(error)}, updated_at = now()
      where id = ${id} and upload_state in ('PENDING_UPLOAD', 'UPLOADED')
      returning *`;
    return row ? decodeFile(row) : undefined;
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
      ingestMode?: IngestMode | null;
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
    return row ? decodeFile(row) : undefined;
  }

  /**
   * The corrections uploads of file `fileId`, or of the CSVs of ZIP `fileId`, that a reload of it
   * from its upload would undo: `applied`, those that joined rows to it; `inFlight`, those whose
   * job is QUEUED or RUNNING.
   */
  async correctionsInEffect(tx: Tx, fileId: string): Promise<{ applied: number; inFlight: number }> {
    const [row] = await tx<{ applied: number; inFlight: number }[]>`
      select count(*) filter (where c.valid_rows > 0)::int as applied,
             count(*) filter (where j.state in ('QUEUED', 'RUNNING'))::int as "inFlight"
      from files c left join jobs j on j.id = c.job_id
      where c.corrects_file_id = ${fileId}
         or c.corrects_file_id in (select m.id from files m where m.parent_id = ${fileId})`;
    return row ?? { applied: 0, inFlight: 0 };
  }

  async setJob(tx: Tx, fileId: string, jobId: string): Promise<void> {
    await tx`update files set job_id = ${jobId}, updated_at = now() where id = ${fileId}`;
  }

  async get(id: string, tx: Tx = this.sql): Promise<FileRecord | undefined> {
    const [row] = await tx`select * from files where id = ${id}`;
    return row ? decodeFile(row) : undefined;
  }

  async byIdempotencyKey(createdBy: string, key: string): Promise<FileRecord | undefined> {
    const [row] = await this.sql`select * from files where created_by = ${createdBy} and idempotency_key = ${key}`;
    return row ? decodeFile(row) : undefined;
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
    return rows.map(decodeFile);
  }

  /**
   * A page of files (as `list`) and the count of all that match, in one statement (one round trip
   * and one snapshot), plus the state of each file's job (null: no job, or it is gone).
   */
  async page(
    f: FileFilter,
    limit: number,
    after?: { createdAt: Date; id: string },
  ): Promise<{ rows: Array<{ file: FileRecord; jobState: JobState | null }>; total: number }> {
    const rows = await this.sql`
      select c._total, p.* from (select count(*)::int as _total from files where ${this.where(f)}) c
      left join lateral (
        select files.*, (select j.state::text from jobs j where j.id = files.job_id) as _job_state
        from files where ${this.where(f, after)} order by created_at desc, id desc limit ${limit}
      ) p on true
      order by p.created_at desc, p.id desc`;
    const total = (rows[0]?.['_total'] as number | undefined) ?? 0;
    const out: Array<{ file: FileRecord; jobState: JobState | null }> = [];
    // Not `{ _total, _job_state, ...row }`: an object rest of ~40 columns costs about 19 µs a row.
    for (const row of rows) {
      if (row['id'] == null) continue;
      out.push({ file: withWarnings(decodePageRow(row, 0, rows)), jobState: (row['_job_state'] as JobState | null) ?? null });
    }
    return { rows: out, total };
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
      error: FileError | null;
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
    v: {
      id: string;
      program: string | null;
      fileName: string;
      specId: string | null;
      ingestMode?: IngestMode | null;
      deleteMissing?: boolean;
      merge?: MergeCounts | null;
    },
  ): Promise<FileRecord> {
    const [row] = await this.sql`
      insert into files (id, kind, parent_id, spec_id, program, file_name, job_id, on_invalid_rows, created_by, ingest_mode, delete_missing, merge, dialect)
      values (${v.id}, 'CSV', ${parent.id}, ${v.specId}, ${v.program}, ${v.fileName}, ${parent.jobId}, ${parent.onInvalidRows}, ${parent.createdBy},
              ${v.ingestMode ?? null}, ${v.deleteMissing ?? false}, ${v.merge ? this.sql.json(v.merge as unknown as postgres.JSONValue) : null},
              ${this.sql.json(storedDialect(parent.dialect?.requested))})
      returning *`;
    return decodeFile(row!);
  }

  /**
   * The merge counts a committed attempt recorded for `fileId`, with the file's row locked for
   * the caller's transaction: a retry finds them and does not merge the file a second time.
   */
  async lockMerge(tx: postgres.TransactionSql, fileId: string): Promise<MergeCounts | null> {
    const [row] = await tx<Pick<FileRow, 'merge'>[]>`select merge from files where id = ${fileId} for update`;
    return row?.merge ?? null;
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
    await this
      .sql`update files set dialect = coalesce(dialect, '{}'::jsonb) || ${this.sql.json({ detected } as never)}, updated_at = now() where id = ${fileId}`;
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
    return rows.map((r) => {
      const { fileId: _, ...e } = decodeRowError(r);
      return e;
    });
  }

  async countRowErrors(fileId: string): Promise<number> {
    const [row] = await this.sql<{ n: number }[]>`select count(*)::int as n from row_errors where file_id = ${fileId}`;
    return row!.n;
  }
}
