import type { Readable } from 'node:stream';
import type postgres from 'postgres';
import {
  HeaderError,
  MixedLineEndingsError,
  NotCsvError,
  problemsMessage,
  RecordTooLargeError,
  UnsupportedEncodingError,
  type CsvPipelineOptions,
  type CsvPipelineResult,
} from '../../ingest/csv-pipeline';
import type { ObjectStorage, StorageError, StorageWriter } from '../../storage/storage';
import { isCorruptionError } from '../../storage/verify';
import { JobErrorCode, JobFailure, JobStopped } from '../../jobs/errors';
import type { JobContext } from '../../jobs/context';
import type { CompiledSpec } from '../../ingest/contract';
import { runCsvPipelineWithCopySession, type CsvPipelineRunner } from '../../ingest/pipeline-thread';
import type { InvalidRow } from '../../ingest/pipeline-types';
import type { HeaderMapping } from '../../ingest/row-validator';
import type { ConnectionSettings } from '../../db/connection';
import {
  assertIdentifier,
  attachLoadedPartition,
  clearFileRows,
  copyIntoTarget,
  filePartitionName,
  partitionParent,
  prepareRowTable,
  quoteIdentifier,
  type RowTarget,
} from '../datasets/dataset-tables.store';
import { takePreload, type PreloadRecord } from './file-preloads.store';
import { JOB_FENCED, LOAD_SESSION_MODULE, type JobLoadDecision, type JobLoadSessionArgs, type LoadSettled } from './load-session';
import type { FileRecord, FilesStore, RowErrorRecord } from './files.store';
import { mergeFileRows, type MergeCounts } from './merge.store';
import { keyWithFileId } from '../../storage/keys';
import { ErrorSummaryBuilder, type ErrorSummary } from '../../ingest/error-summary';

export interface IngestTarget {
  file: FileRecord;
  spec: CompiledSpec;
  table: string;
  /** Preferred output keys; the valid one gets the file id appended when taken. */
  validKey: string | null;
  errorKey: string;
  /** Counts of earlier files of the same job (CSVs of one ZIP), so progress keeps climbing. */
  progressBase?: { total: number; valid: number; invalid: number };
  /**
   * Resolves once every byte of the input has been checked against what was recorded at upload;
   * rejects with SIZE_MISMATCH or CHECKSUM_MISMATCH otherwise (see storage/verify.ts). Called
   * inside the COPY transaction before it commits, and when the file fails before its end was
   * read, so a corrupt stored file is reported as STORAGE_CORRUPT whatever else is wrong with it.
   */
  verifyInput?: () => Promise<void>;
  /** How the header is matched (see header-policy.ts pipelineHeaderOptions); the spec's names only when absent. */
  headers?: Pick<CsvPipelineOptions, 'unknownColumns' | 'columnMap'>;
  /**
   * MERGE: after the COPY, the file's rows are merged into the spec version's current table in
   * the same fenced transaction (see merge.store.ts). deleteMissing makes the file a full
   * snapshot, so any invalid row fails it (as onInvalidRows FAIL): a key whose row was refused
   * would otherwise be deleted.
   */
  merge?: { deleteMissing: boolean } | null;
  /**
   * Where the valid rows go instead of the file's own partition, and the `_file_id` they carry
   * (a corrections upload: its parent's id, see corrections.ts). `prepare` runs in the load's
   * transaction; its `attach` runs after the COPY, before the commit.
   */
  rows?: { fileId: string; prepare: (tx: postgres.TransactionSql, table: string) => Promise<RowTarget> };
  /**
   * The input is this stored object, whole (an upload's own file), with its recorded size and
   * SHA-256: when the valid-rows CSV would be its exact bytes, the pipeline says so instead of
   * writing them (CsvPipelineSinks.validCsvMayBeInput), and the valid-rows key gets a copy of the
   * object made by the storage (ObjectStorage.copy), where the backend can.
   */
  input?: { key: string; size: number; sha256: string };
}

export interface IngestOutcome {
  result: CsvPipelineResult | null;
  /** Set when the file as a whole failed; rows were not kept. */
  failure: { code: JobErrorCode; message: string; problems?: unknown } | null;
  validOutputKey: string | null;
  errorOutputKey: string | null;
  /** MERGE: what the merge did to the current table. */
  merge?: MergeCounts | null;
  /** Error analytics of the rows read (null when the file failed before its rows were read). */
  errorSummary?: ErrorSummary | null;
}

/** Rows of errors are written in batches of this many (separate from the data transaction). */
const ROW_ERROR_BATCH = 1000;

class Rollback extends Error {}

/**
 * Where a job's own load may run its transaction on the pipeline thread (load-session.ts, a
 * plain append): the database, as the pool connects to it, and the thread's nice value.
 */
export interface JobCopySessions {
  url: string;
  settings: ConnectionSettings;
  nice?: number;
}

/**
 * Streams one stored CSV through validation into the spec's table. Valid rows are COPYed inside
 * one fenced transaction (all or nothing: a cancel, crash or FAIL policy leaves no row visible);
 * row errors, the valid-rows CSV and the error CSV are written as it goes.
 */
export async function ingestCsv(
  ctx: JobContext<unknown>,
  deps: { storage: ObjectStorage; files: FilesStore; pipeline: CsvPipelineRunner; copySessions?: JobCopySessions },
  target: IngestTarget,
  input: Readable,
): Promise<IngestOutcome> {
  const { file, spec } = target;
  const table = assertIdentifier(target.table);
  const specColumns = spec.columns.map((c) => assertIdentifier(c.column));
  // A retried attempt starts clean.
  await deps.files.deleteRowErrors(file.id);

  const validKey = target.validKey ? await freeKey(deps.storage, target.validKey, file.id) : null;
  const validWriter: StorageWriter | null = validKey ? deps.storage.openWriter(validKey, { contentType: 'text/csv' }) : null;
  const errorWriter = deps.storage.openWriter(target.errorKey, { contentType: 'text/csv' });
  const summary = new ErrorSummaryBuilder(spec);
  let pending: RowErrorRecord[] = [];
  const flushErrors = async () => {
    const batch = pending;
    pending = [];
    await deps.files.insertRowErrors(file.id, batch);
  };

  let result: CsvPipelineResult | null = null;
  let failure: IngestOutcome['failure'] = null;
  let merge: MergeCounts | null = null;
  try {
    // Where the time goes (logged as "rows loaded" once committed; bench/ingest.bench.ts reads it).
    const started = performance.now();
    let prepared = started;
    let copied = started;
    let attached = started;
    let loaded: { rows: number } | null = null;
    const sinks = {
      validCsv: validWriter?.stream,
      validCsvMayBeInput: target.input !== undefined && deps.storage.copy !== undefined,
      errorCsv: errorWriter.stream,
      onInvalid: async (row: InvalidRow, mapping: HeaderMapping) => {
        for (const [idx, e] of row.errors.entries()) pending.push({ line: row.line, idx, column: e.column ?? null, code: e.code, message: e.message });
        summary.addRow(row.errors, row.cells, mapping);
        if (pending.length >= ROW_ERROR_BATCH) await flushErrors();
      },
    };
    const options = (copyFileId: boolean): CsvPipelineOptions => ({
      ...target.headers,
      fileId: target.rows?.fileId ?? file.id,
      dialect: file.dialect?.requested,
      copyFormat: 'binary',
      copyFileId,
      errorLineColumn: true,
      signal: ctx.signal,
      onProgress: (c) => {
        const b = target.progressBase ?? { total: 0, valid: 0, invalid: 0 };
        ctx.progress({
          processed: b.total + c.total,
          succeeded: b.valid + c.valid,
          failed: b.invalid + c.invalid,
          bytesProcessed: target.progressBase ? undefined : c.bytes,
        });
      },
    });
    /** Why a file whose rows were all read keeps none of them (null: it keeps its valid rows). */
    const failureOf = (r: CsvPipelineResult): IngestOutcome['failure'] => {
      if (r.empty) return { code: JobErrorCode.EMPTY_FILE, message: 'The file has no data rows' };
      if (r.valid === 0) return { code: JobErrorCode.ALL_ROWS_INVALID, message: `All ${r.total} rows are invalid; see rowErrors` };
      if (r.invalid > 0 && file.onInvalidRows === 'FAIL')
        return { code: JobErrorCode.ROWS_INVALID, message: `${r.invalid} of ${r.total} rows are invalid and onInvalidRows is FAIL; no row was kept` };
      if (r.invalid > 0 && target.merge?.deleteMissing)
        return {
          code: JobErrorCode.ROWS_INVALID,
          message: `${r.invalid} of ${r.total} rows are invalid and deleteMissing needs a complete snapshot; no row was kept and nothing was merged`,
        };
      return null;
    };
    /** Once every row is COPYed: the input checked, the row errors stored, and whether the file keeps its rows. */
    const rowsRead = async (r: CsvPipelineResult): Promise<void> => {
      // Before anything of the file can commit (see IngestTarget.verifyInput).
      await target.verifyInput?.();
      await flushErrors();
      failure = failureOf(r);
    };
    const sessions = !target.rows && !target.merge ? deps.copySessions : undefined;
    if (sessions) {
      // A plain append: the fenced transaction runs on the pipeline thread, which writes the COPY
      // itself (load-session.ts), and commits once this side has checked the input and the rows.
      await ctx.checkpoint();
      prepared = performance.now();
      const args: JobLoadSessionArgs = {
        kind: 'job',
        url: sessions.url,
        settings: sessions.settings,
        jobId: ctx.jobId,
        attempt: ctx.attempt,
        fileId: file.id,
        table,
        columns: specColumns,
      };
      const run = await runCsvPipelineWithCopySession<JobLoadDecision>(
        input,
        spec,
        sinks,
        options(true),
        sessions.nice === undefined ? {} : { nice: sessions.nice },
        {
          spec: { module: LOAD_SESSION_MODULE, args },
          decide: async ({ result: r }) => {
            result = r;
            await rowsRead(r);
            copied = performance.now();
            return failure ? null : { commit: true };
          },
        },
      );
      result = run.result;
      // Nothing of a failed file stays in its table (the thread rolled it back).
      if (failure) throw new Rollback();
      const settled = run.settled as LoadSettled;
      if (!settled.committed) throw new Error(`The job's load did not commit: ${settled.reason}`);
      attached = performance.now();
      loaded = { rows: run.result.valid };
    } else {
      await ctx.fenced(async (tx: postgres.TransactionSql) => {
        const into = target.rows ? await target.rows.prepare(tx, table) : await prepareRowTable(tx, table, file.id);
        prepared = performance.now();
        // A file's own partition supplies `_file_id` by its default (RowTarget.fileIdDefault).
        result = await copyIntoTarget(tx, into, specColumns, (copy) =>
          // postgres.js has sent a COPY chunk when its write callback runs (scripts/patch-deps.mjs).
          deps.pipeline(input, spec, { ...sinks, copy, copyReleasesChunks: true }, options(!into.fileIdDefault)),
        );
        const r = result!;
        await rowsRead(r);
        // Nothing of a failed file stays in its table.
        if (failure) throw new Rollback();
        copied = performance.now();
        await into.attach();
        if (target.merge)
          merge = await mergeOnce(
            ctx,
            tx,
            deps.files,
            target,
            into.table === table ? `(select * from ${quoteIdentifier(table)} where _file_id = '${file.id}')` : quoteIdentifier(into.table),
          );
        attached = performance.now();
        loaded = { rows: r.valid };
      });
    }
    if (loaded) {
      const ms = (a: number, b: number) => Math.round(b - a);
      const now = performance.now();
      // prepareMs: fence + partition DDL; copyMs: parse + validate + COPY (the service and PostgreSQL
      // in parallel); keyMs: attach (+ merge; a corrections upload applies its rows); commitMs: the commit.
      ctx.log.info(
        {
          fileId: file.id,
          rows: (loaded as { rows: number }).rows,
          prepareMs: ms(started, prepared),
          copyMs: ms(prepared, copied),
          keyMs: ms(copied, attached),
          commitMs: ms(attached, now),
        },
        'rows loaded',
      );
    }
  } catch (err) {
    // The thread's transaction found the attempt no longer owns the job (as ctx.fenced does).
    if (err instanceof Error && err.name === JOB_FENCED) {
      await Promise.all([validWriter?.abort(), errorWriter.abort()]);
      ctx.stop('fenced');
      throw new JobStopped('fenced');
    }
    await Promise.all([validWriter?.abort(), failure ? undefined : errorWriter.abort()]);
    const corrupt = await corruptionBehind(err, target);
    if (corrupt) {
      await errorWriter.abort();
      return corruptOutcome(ctx, deps, target, corrupt);
    }
    if (err instanceof Rollback) {
      const r = result as CsvPipelineResult | null;
      if (r) await deps.files.setDetectedDialect(file.id, r.dialect);
      const errorOutputKey = r && r.invalid > 0 ? (await errorWriter.done()).key : (await errorWriter.abort(), null);
      return { result: r, failure, validOutputKey: null, errorOutputKey, errorSummary: r ? summary.result() : null };
    }
    if (err instanceof HeaderError) {
      // Both lists are bounded (HeaderError keeps the first MAX_PROBLEMS_LISTED and counts the rest).
      const problems = err.problems;
      return {
        result: null,
        failure: {
          code: JobErrorCode.HEADER_INVALID,
          message: problemsMessage(
            'The header does not match the spec',
            problems.map((p) => p.message),
            err.problemCount,
          ),
          problems,
        },
        validOutputKey: null,
        errorOutputKey: null,
      };
    }
    if (err instanceof RecordTooLargeError) throw new JobFailure(JobErrorCode.RECORD_TOO_LARGE, err.message);
    const refused = refusedFile(err);
    if (refused) return { result: null, failure: refused, validOutputKey: null, errorOutputKey: null };
    throw err;
  }
  const r = result as unknown as CsvPipelineResult;
  await deps.files.setDetectedDialect(file.id, r.dialect);
  const validOutputKey = validWriter && r.valid > 0 ? await validOutput(deps.storage, validWriter, r, target.input) : (await validWriter?.abort(), null);
  const errorOutputKey = r.invalid > 0 ? (await errorWriter.done()).key : (await errorWriter.abort(), null);
  return { result: r, failure: null, validOutputKey, errorOutputKey, merge, errorSummary: summary.result() };
}

/**
 * The file's rows as a load during its upload committed them (files/load-during-upload.ts), or
 * null when there is no such load for this file and its stored record: then ingestCsv loads it.
 * In the job's fenced transaction, the load's record is taken and its partition attached, so the
 * rows become visible with the job's commit, as a load by the job would make them. The outcome is
 * the one ingestCsv would give for the same clean file: no row error, the valid-rows object a
 * copy of the upload. An APPEND of a whole stored upload only (no merge, no corrections).
 */
export async function loadPreloaded(
  ctx: JobContext<unknown>,
  deps: { storage: ObjectStorage; files: FilesStore },
  target: IngestTarget,
): Promise<IngestOutcome | null> {
  const { file, input } = target;
  if (target.merge || target.rows || !input || !deps.storage.copy) return null;
  const table = assertIdentifier(target.table);
  const started = performance.now();
  let locked = started;
  let attached = started;
  let result: CsvPipelineResult | null = null;
  let staged: PreloadRecord['validCsv'] = null;
  await ctx.fenced(async (tx: postgres.TransactionSql) => {
    // While the load finishes, its progress is the job's.
    const pre = await takePreload(tx, file.id, {
      onProgress: (p) => ctx.progress({ processed: p.processed, succeeded: p.succeeded, failed: 0, bytesProcessed: p.bytes }),
      signal: ctx.signal,
    });
    locked = performance.now();
    // A record that is not this file's stored bytes in this table is dropped with the row (its
    // detached partition goes when ingestCsv prepares the file's own).
    if (!pre || pre.tableName !== table || pre.size !== input.size || pre.sha256 !== input.sha256) return;
    if ((await partitionParent(tx, filePartitionName(file.id))) !== null) return;
    await attachLoadedPartition(tx, table, file.id);
    attached = performance.now();
    result = pre.result;
    staged = pre.validCsv;
  });
  const r = result as CsvPipelineResult | null;
  if (!r) return null;
  const ms = (a: number, b: number) => Math.round(b - a);
  // The same line as ingestCsv's; the COPY ran during the upload (prepareMs: waiting for it to commit).
  ctx.log.info(
    {
      fileId: file.id,
      rows: r.valid,
      loadedDuringUpload: true,
      prepareMs: ms(started, locked),
      copyMs: 0,
      keyMs: ms(locked, attached),
      commitMs: ms(attached, performance.now()),
    },
    'rows loaded',
  );
  await deps.files.setDetectedDialect(file.id, r.dialect);
  // The valid rows: the upload itself, or what the load stored (linked into place, then its staging name goes).
  const from = (staged as PreloadRecord['validCsv']) ?? { key: input.key, size: input.size, sha256: input.sha256 };
  const validOutputKey = target.validKey
    ? (
        await deps.storage.copy(
          from.key,
          await freeKey(deps.storage, target.validKey, file.id),
          { size: from.size, sha256: from.sha256 },
          { contentType: 'text/csv' },
        )
      ).key
    : null;
  if (staged) await deps.storage.delete(from.key);
  return { result: r, failure: null, validOutputKey, errorOutputKey: null, merge: null, errorSummary: new ErrorSummaryBuilder(target.spec).result() };
}

/**
 * The valid-rows object: what the writer received, or, when the pipeline found the valid rows to
 * be the input's exact bytes (result.validCsvIsInput), a copy of the stored input under the
 * writer's key (the writer, which received nothing, is discarded).
 */
async function validOutput(storage: ObjectStorage, writer: StorageWriter, r: CsvPipelineResult, input: IngestTarget['input']): Promise<string> {
  if (!r.validCsvIsInput) return (await writer.done()).key;
  await writer.abort();
  if (!input || !storage.copy) throw new Error('The valid rows were reported as the input, which this storage cannot copy');
  return (await storage.copy(input.key, writer.key, { size: input.size, sha256: input.sha256 }, { contentType: 'text/csv' })).key;
}

/**
 * Merges the loaded file into the current table, once: the counts are recorded on the file in
 * the same transaction, so an attempt that runs after one that committed (a worker that died
 * before reporting) keeps them and does not merge again, which would put back values that later
 * files changed meanwhile.
 */
async function mergeOnce(ctx: JobContext<unknown>, tx: postgres.TransactionSql, files: FilesStore, target: IngestTarget, source: string): Promise<MergeCounts> {
  const { file, spec } = target;
  const earlier = await files.lockMerge(tx, file.id);
  if (earlier) {
    ctx.log.info({ fileId: file.id, merge: earlier }, 'file was merged by an earlier attempt; not merged again');
    return earlier;
  }
  const started = performance.now();
  const counts = await mergeFileRows(tx, { tableName: target.table, spec, source, deleteMissing: target.merge!.deleteMissing });
  await files.setMerge(tx, file.id, counts);
  ctx.log.info({ fileId: file.id, ...counts, mergeMs: Math.round(performance.now() - started) }, 'rows merged');
  return counts;
}

/** A file the pipeline refused as a whole for its bytes (binary, encoding, line endings), or null. */
function refusedFile(err: unknown): IngestOutcome['failure'] {
  if (err instanceof NotCsvError) return { code: JobErrorCode.NOT_A_CSV, message: err.message };
  if (err instanceof UnsupportedEncodingError) return { code: JobErrorCode.UNSUPPORTED_ENCODING, message: err.message };
  if (err instanceof MixedLineEndingsError) return { code: JobErrorCode.MIXED_LINE_ENDINGS, message: err.message };
  return null;
}

/**
 * The corruption that `err` is, or that lies behind it: a file that failed before its end was
 * read (a bad header, an overlong record) is verified whole, since its bytes may be the reason.
 */
async function corruptionBehind(err: unknown, target: IngestTarget): Promise<StorageError | undefined> {
  if (isCorruptionError(err)) return err;
  if (!(err instanceof HeaderError || err instanceof RecordTooLargeError) || !target.verifyInput) return undefined;
  try {
    await target.verifyInput();
    return undefined;
  } catch (e) {
    if (isCorruptionError(e)) return e;
    throw e;
  }
}

/**
 * A file whose stored bytes are not the ones recorded at upload: nothing of it stays visible,
 * neither this attempt's row errors nor the rows an earlier attempt committed.
 */
export async function corruptOutcome(
  ctx: JobContext<unknown>,
  deps: { files: FilesStore },
  target: Pick<IngestTarget, 'file' | 'table'>,
  err: StorageError,
): Promise<IngestOutcome> {
  await deps.files.deleteRowErrors(target.file.id);
  await ctx.fenced((tx) => clearFileRows(tx, assertIdentifier(target.table), target.file.id));
  ctx.log.warn({ fileId: target.file.id, key: err.key, reason: err.code, err: err.message }, 'stored upload does not match its record');
  return {
    result: null,
    failure: { code: JobErrorCode.STORAGE_CORRUPT, message: corruptionMessage(target.file.id, err, 'no row was kept') },
    validOutputKey: null,
    errorOutputKey: null,
  };
}

/** The STORAGE_CORRUPT message: which check failed, and `consequence` (what was done about it). */
export function corruptionMessage(fileId: string, err: StorageError, consequence: string): string {
  const what = err.code === 'SIZE_MISMATCH' ? 'size' : 'SHA-256';
  return `The stored upload of file ${fileId} does not match what was recorded at upload (its ${what} differs); ${consequence}. Upload the file again.`;
}

async function freeKey(storage: ObjectStorage, preferred: string, fileId: string): Promise<string> {
  return (await storage.head(preferred)) ? keyWithFileId(preferred, fileId) : preferred;
}
