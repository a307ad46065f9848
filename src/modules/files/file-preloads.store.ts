import type postgres from 'postgres';
import type { PutResult } from '../../storage/storage';
import type { CsvPipelineResult } from '../../ingest/pipeline-types';
import { AbortError } from '../../ingest/csv-errors';
import { JobState, TERMINAL_STATES } from '../../jobs/state';

/**
 * The SQL of a load during upload (load-during-upload.ts): its lock, its record (file_preloads)
 * and its progress (file_load_progress). Shared by the load's transaction, which runs on a
 * pipeline thread's own connection (load-session.ts), and the file's job (ingestion-load.ts).
 */

/** Advisory lock class of a file's load during upload (the second key is hashtext(file id)). */
const PRELOAD_LOCK_CLASS = 0x5c1d;
/** How often a waiter retries the lock (the holder is a load finishing its last rows). */
const LOCK_POLL_MS = 10;

/** How often a waiting job reads the load's progress (file_load_progress). */
const PROGRESS_READ_MS = 200;

/** A load's progress as its job reports it. */
export interface LoadProgress {
  processed: number;
  succeeded: number;
  bytes: number;
}

/**
 * Takes the file's load lock for the transaction, polling (a silent wait would look like a dead
 * link); while it waits, `onProgress` gets the load's progress now and then.
 */
export async function lockFileLoad(
  tx: postgres.TransactionSql,
  fileId: string,
  wait: { onProgress?: (p: LoadProgress) => void; signal?: AbortSignal } = {},
): Promise<void> {
  const { onProgress, signal } = wait;
  let readAt = performance.now();
  for (;;) {
    const [row] = await tx<{ ok: boolean }[]>`select pg_try_advisory_xact_lock(${PRELOAD_LOCK_CLASS}, hashtext(${fileId})) as ok`;
    if (row!.ok) return;
    // A job cancelled (or stopped) while it waits ends now, not when the load does.
    if (signal?.aborted) throw new AbortError(signal.reason);
    if (onProgress && performance.now() - readAt >= PROGRESS_READ_MS) {
      readAt = performance.now();
      const [p] = await tx<{ processed: string; succeeded: string; bytes: string }[]>`
        select processed::text, succeeded::text, bytes::text from file_load_progress where file_id = ${fileId}`;
      if (p) onProgress({ processed: Number(p.processed), succeeded: Number(p.succeeded), bytes: Number(p.bytes) });
    }
    await new Promise((r) => setTimeout(r, LOCK_POLL_MS));
  }
}

/** Takes the file's load lock for the transaction if nobody holds it; false otherwise (never waits). */
export async function tryLockFileLoad(tx: postgres.TransactionSql, fileId: string): Promise<boolean> {
  const [row] = await tx<{ ok: boolean }[]>`select pg_try_advisory_xact_lock(${PRELOAD_LOCK_CLASS}, hashtext(${fileId})) as ok`;
  return row!.ok;
}

/**
 * Whether the job of file `fileId` (once its row is there) has started. Asked by a load under its
 * lock, before it creates the file's partition: a job that started first may be loading the file
 * itself (it took the lock, found no record and let it go), and the two must not both load it.
 */
export async function jobStarted(tx: postgres.TransactionSql, fileId: string): Promise<boolean> {
  const state = await fileJobState(tx, fileId);
  return state !== undefined && state !== JobState.QUEUED;
}

/** Whether the job of file `fileId` (once its row is there) is in a terminal state. */
export async function jobEnded(tx: postgres.TransactionSql, fileId: string): Promise<boolean> {
  const state = await fileJobState(tx, fileId);
  return state !== undefined && TERMINAL_STATES.has(state);
}

/** The state of file `fileId`'s job; undefined while the file's row is not there (its upload still streams). */
async function fileJobState(tx: postgres.TransactionSql, fileId: string): Promise<JobState | undefined> {
  const [row] = await tx<{ state: JobState }[]>`select j.state from files f join jobs j on j.id = f.job_id where f.id = ${fileId}`;
  return row?.state;
}

/** A load's record, as the job reads it (file_preloads). */
export interface PreloadRecord {
  tableName: string;
  size: number;
  sha256: string;
  result: CsvPipelineResult;
  /** The valid-rows CSV the load stored (loadStaging key); null when it is the upload itself. */
  validCsv: PutResult | null;
}

/** Takes (deletes) the file's preload record in `tx`, after its lock; null when there is none. */
export async function takePreload(
  tx: postgres.TransactionSql,
  fileId: string,
  wait: { onProgress?: (p: LoadProgress) => void; signal?: AbortSignal } = {},
): Promise<PreloadRecord | null> {
  await lockFileLoad(tx, fileId, wait);
  await tx`delete from file_load_progress where file_id = ${fileId}`;
  const [row] = await tx<{ table_name: string; size: string; sha256: string; result: CsvPipelineResult; valid_csv: PutResult | null }[]>`
    delete from file_preloads where file_id = ${fileId} returning table_name, size::text as size, sha256, result, valid_csv`;
  if (!row) return null;
  return { tableName: row.table_name, size: Number(row.size), sha256: row.sha256, result: row.result, validCsv: row.valid_csv };
}

/** The record a load commits with its rows (see PreloadRecord). */
export async function insertPreload(tx: postgres.TransactionSql, fileId: string, table: string, record: Omit<PreloadRecord, 'tableName'>): Promise<void> {
  const validCsv = record.validCsv ? tx.json({ key: record.validCsv.key, size: record.validCsv.size, sha256: record.validCsv.sha256 }) : null;
  await tx`insert into file_preloads (file_id, table_name, size, sha256, result, valid_csv)
    values (${fileId}, ${table}, ${record.size}, ${record.sha256}, ${tx.json(record.result as unknown as postgres.JSONValue)}, ${validCsv})`;
}
