import { MixedLineEndingsError, NotCsvError, problemsMessage, RecordTooLargeError, UnsupportedEncodingError } from '../../ingest/csv-pipeline';
import type { CsvRecordProblem } from '../../ingest/csv-records';
import { MAX_PROBLEMS_LISTED } from '../../ingest/row-validator';
import type postgres from 'postgres';
import type { ObjectStorage } from '../../storage/storage';
import { StorageError } from '../../storage/storage';
import { JobErrorCode, JobFailure } from '../../jobs/errors';
import type { JobHandler, JobOutcome } from '../../jobs/handler';
import { JobState } from '../../jobs/state';
import { BulkKind, parseHeader, rowValues, type ParsedHeader } from './directory.columns';
import { readCsv } from './directory.csv';
import {
  locationKeys,
  organisationKeys,
  planLocation,
  planOrganisation,
  planUser,
  rememberRow,
  DirectoryRowErrorCode,
  userKeys,
  type LocationType,
  type Planned,
  type SeenKeys,
} from './rules';
import type { BulkProcess, BulkResult, DirectoryStore } from './directory.store';

export const BULK_UPLOAD_JOB = 'directory.bulk-upload';

/** Rows per fenced transaction: one round of lookups and one multi-row write per batch. */
export const BULK_BATCH_ROWS = 1000;

export interface BulkDeps {
  storage: ObjectStorage;
  directory: DirectoryStore;
}

interface BulkInput {
  processId: string;
}

interface PendingRow {
  line: number;
  values: Record<string, string>;
  cells: number;
  /** The record could not be read as it is (quotes, bytes): it fails with this. */
  problem: CsvRecordProblem | null;
}

/** Which unique index a refused write hit -> the row error it means. */
const CONSTRAINT_CODES: Record<string, DirectoryRowErrorCode> = {
  locations_code_idx: DirectoryRowErrorCode.DUPLICATE_CODE,
  organisations_external_id_idx: DirectoryRowErrorCode.DUPLICATE_EXTERNAL_ID,
  directory_users_phone_idx: DirectoryRowErrorCode.DUPLICATE_PHONE,
  directory_users_email_idx: DirectoryRowErrorCode.DUPLICATE_EMAIL,
  directory_users_external_id_idx: DirectoryRowErrorCode.DUPLICATE_EXTERNAL_ID,
};

/** Integrity violations (class 23): the row is refused; anything else fails the batch. */
function constraintError(err: unknown): { constraint: string } | undefined {
  const e = err as { code?: unknown; constraint_name?: unknown };
  return typeof e.code === 'string' && e.code.startsWith('23') ? { constraint: String(e.constraint_name ?? '') } : undefined;
}

type Writer = (tx: postgres.TransactionSql, writes: unknown[]) => Promise<void>;

/**
 * Plans a batch in file order (earlier lines, also earlier lines of this batch, are visible to
 * later ones), then writes every planned row in one statement. Each row is one row of one table,
 * so each write is atomic on its own; if the statement is refused (a concurrent upload took a
 * key), the rows are written one by one, each under its own SAVEPOINT, and only the refused rows
 * fail. Results are stored in the same transaction as the writes.
 */
async function applyBatch(
  tx: postgres.TransactionSql,
  deps: BulkDeps,
  p: BulkProcess,
  header: ParsedHeader,
  rows: PendingRow[],
  seen: SeenKeys,
): Promise<BulkResult[]> {
  const store = deps.directory;
  const width = header.keys.length;
  const readable = rows.filter((r) => r.cells === width && !r.problem).map((r) => r.values);
  let plan: (r: PendingRow) => Planned<unknown>;
  let write: Writer;
  if (p.kind === BulkKind.LOCATION) {
    const k = locationKeys(readable);
    const lookup = await store.locationLookup(tx, k.codes, k.ids);
    plan = (r) => planLocation(r.values, r.line, p.locationType as LocationType | null, lookup, seen);
    write = (t, w) => store.writeLocations(t, w as never);
  } else if (p.kind === BulkKind.ORGANISATION) {
    const lookup = await store.organisationLookup(tx, organisationKeys(readable));
    plan = (r) => planOrganisation(r.values, r.line, lookup, seen);
    write = (t, w) => store.writeOrganisations(t, w as never);
  } else {
    const lookup = await store.userLookup(tx, userKeys(readable));
    plan = (r) => planUser(r.values, r.line, lookup, seen);
    write = (t, w) => store.writeUsers(t, w as never);
  }
  const planned = rows.map((r): Planned<unknown> => {
    if (r.problem) {
      rememberRow(p.kind, r.values, r.line, seen);
      return { ok: false, operation: null, id: null, data: r.values, code: DirectoryRowErrorCode[r.problem.code], column: null, message: r.problem.message };
    }
    if (r.cells !== width) {
      rememberRow(p.kind, r.values, r.line, seen);
      return {
        ok: false,
        operation: null,
        id: null,
        data: r.values,
        code: DirectoryRowErrorCode.WRONG_FIELD_COUNT,
        column: null,
        message: `The record has ${r.cells} cells; the header has ${width}`,
      };
    }
    return plan(r);
  });
  const ok = planned.flatMap((x, i) => (x.ok ? [i] : []));
  try {
    await tx.savepoint((sp) =>
      write(
        sp,
        ok.map((i) => (planned[i] as { write: unknown }).write),
      ),
    );
  } catch (err) {
    if (!constraintError(err)) throw err;
    for (const i of ok) {
      const x = planned[i] as Extract<Planned<unknown>, { ok: true }>;
      try {
        await tx.savepoint((sp) => write(sp, [x.write]));
      } catch (e) {
        const c = constraintError(e);
        if (!c) throw e;
        planned[i] = {
          ok: false,
          operation: x.operation,
          id: x.operation === 'UPDATE' ? x.id : null,
          data: x.data,
          code: CONSTRAINT_CODES[c.constraint] ?? DirectoryRowErrorCode.WRITE_CONFLICT,
          column: null,
          message: `The database refused the row (${c.constraint || 'integrity constraint'}), probably after a concurrent change; nothing was written`,
        };
      }
    }
  }
  const results: BulkResult[] = planned.map((x, i) => ({
    line: rows[i]!.line,
    ok: x.ok,
    operation: x.operation,
    entityId: x.id,
    errorCode: x.ok ? null : x.code,
    errorColumn: x.ok ? null : x.column,
    errorMessage: x.ok ? null : x.message,
    data: x.data,
  }));
  await store.insertResults(tx, p.id, results);
  return results;
}

/** The records, with the reader's refusals of the whole file as job failures with their codes. */
async function* readRecords<T>(records: AsyncGenerator<T>): AsyncGenerator<T> {
  try {
    yield* records;
  } catch (err) {
    if (err instanceof NotCsvError) throw new JobFailure(JobErrorCode.NOT_A_CSV, err.message);
    if (err instanceof UnsupportedEncodingError) throw new JobFailure(JobErrorCode.UNSUPPORTED_ENCODING, err.message);
    if (err instanceof MixedLineEndingsError) throw new JobFailure(JobErrorCode.MIXED_LINE_ENDINGS, err.message);
    if (err instanceof RecordTooLargeError) throw new JobFailure(JobErrorCode.RECORD_TOO_LARGE, err.message);
    throw err;
  }
}

/**
 * Applies a stored bulk upload CSV row by row, in batches. Resumable: results are keyed by
 * (process, line) and committed with the rows they describe, so a new attempt (lost worker,
 * retryJob) continues after the last committed line instead of starting over.
 */
export function bulkUploadJob(deps: BulkDeps): JobHandler<BulkInput> {
  return {
    type: BULK_UPLOAD_JOB,
    parseInput(raw) {
      const id = (raw as { processId?: unknown } | null)?.processId;
      if (typeof id !== 'string') throw new JobFailure(JobErrorCode.INVALID_INPUT, 'input.processId is missing');
      return { processId: id };
    },
    async run(ctx): Promise<JobOutcome> {
      const p = await deps.directory.getProcess(ctx.input.processId);
      if (!p) throw new JobFailure(JobErrorCode.INVALID_INPUT, `Bulk upload process ${ctx.input.processId} does not exist`);
      const resumeAfter = await deps.directory.lastLine(p.id);
      let { succeeded, failed } = await deps.directory.counts(p.id);
      ctx.progress({ total: p.totalRows, processed: succeeded + failed, succeeded, failed });
      let stream;
      try {
        stream = await deps.storage.get(p.storageKey);
      } catch (err) {
        if (err instanceof StorageError && err.code === 'NOT_FOUND')
          throw new JobFailure(JobErrorCode.FILE_MISSING, `The stored upload of process ${p.id} is missing`);
        throw err;
      }
      const seen: SeenKeys = new Map();
      let header: ParsedHeader | undefined;
      let batch: PendingRow[] = [];
      const flush = async () => {
        await ctx.checkpoint();
        const rows = batch;
        batch = [];
        const results = await ctx.fenced((tx) => applyBatch(tx, deps, p, header!, rows, seen));
        for (const r of results) r.ok ? succeeded++ : failed++;
        ctx.progress({ processed: succeeded + failed, succeeded, failed });
      };
      for await (const rec of readRecords(readCsv(stream, p.dialect))) {
        if (!header) {
          const parsed = parseHeader(p.kind, rec.cells);
          if (!parsed.header) {
            const listed = parsed.problems.slice(0, MAX_PROBLEMS_LISTED);
            throw new JobFailure(
              JobErrorCode.HEADER_INVALID,
              problemsMessage(
                'The header is wrong',
                listed.map((x) => x.message),
                parsed.problems.length,
              ),
            );
          }
          header = parsed.header;
          continue;
        }
        const values = rowValues(header, rec.cells);
        if (rec.line <= resumeAfter) {
          rememberRow(p.kind, values, rec.line, seen);
          continue;
        }
        batch.push({ line: rec.line, values, cells: rec.cells.length, problem: rec.problem });
        if (batch.length >= BULK_BATCH_ROWS) await flush();
      }
      if (batch.length) await flush();
      ({ succeeded, failed } = await deps.directory.counts(p.id));
      const total = succeeded + failed;
      const counters = { total, processed: total, succeeded, failed };
      const result = { processId: p.id, kind: p.kind, total, succeeded, failed };
      if (failed === 0) return { state: JobState.SUCCEEDED, counters, result };
      if (succeeded === 0) {
        return {
          state: JobState.FAILED,
          counters,
          result,
          error: { code: JobErrorCode.ALL_ROWS_INVALID, message: `All ${total} rows failed; see uploadStatus failureResult` },
        };
      }
      return {
        state: JobState.SUCCEEDED_WITH_ERRORS,
        counters,
        result,
        error: { code: JobErrorCode.SOME_ROWS_INVALID, message: `${failed} of ${total} rows failed; see uploadStatus failureResult` },
      };
    },
  };
}
