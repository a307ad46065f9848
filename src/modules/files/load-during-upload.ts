import type postgres from 'postgres';
import type { CompiledSpec } from '../../ingest/contract';
import type { CsvDialectOptions } from '../../ingest/csv-dialect';
import type { CsvPipelineOptions } from '../../ingest/pipeline-types';
import { runCsvPipelineWithCopySession } from '../../ingest/pipeline-thread';
import type { Logger } from '../../shared/logger';
import { GrowingFileStream } from '../../storage/growing-file';
import type { GrowingFile, ObjectStorage, PutResult, StorageWriter } from '../../storage/storage';
import { LOAD_STAGING_PREFIX, storageKeys } from '../../storage/keys';
import { isUuid } from '../../shared/cursor';
import { TERMINAL_STATES } from '../../jobs/state';
import type { Database } from '../../db/client';
import { dropDetachedPartition, filePartitionName } from '../datasets/dataset-tables.store';
import { takePreload } from './file-preloads.store';
import { dropUnkeptPartition, LOAD_NOT_KEPT, LOAD_SESSION_MODULE, type LoadDecision, type LoadSessionArgs, type LoadSettled } from './load-session';

/**
 * Loading a file while it is still being uploaded (SLUICE_LOAD_DURING_UPLOAD).
 *
 * Why: a 1M-row upload takes 0.4-0.8 s to stream and store, and only then did its job start to
 * parse, validate and COPY it (about 2 s more). Here, once a multipart upload to local storage has
 * SLUICE_LOAD_DURING_UPLOAD_MIN_BYTES stored, a pipeline thread follows the file as it is written
 * (storage/growing-file.ts) and COPYs its rows into the file's partition `dsf_<id>`, created by a
 * transaction of its own, while the rest of the upload arrives.
 *
 * What makes it safe:
 *   - The transaction commits only after the upload is stored (fsynced and renamed) and the bytes
 *     the thread read match the stored bytes' size and SHA-256 (readGrowingFile). The partition it
 *     commits is detached: no reader of the spec's table sees its rows.
 *   - Only a file whose rows are all valid is kept. Its valid-rows CSV is the upload itself when
 *     the two are the same bytes (the mirror of ingest/input-mirror.ts), else the load stores it
 *     under storageKeys.loadStaging (fsynced before the record commits) and the job links it into
 *     place. The first invalid row ends the load and rolls it back; the file's job then loads it as
 *     before, with its row errors and outputs. So a load during the upload never changes an outcome,
 *     only when the rows were COPYed.
 *   - With the rows, a `file_preloads` row records the partition, the stored size and SHA-256 and
 *     the pipeline's result. The file's job, in its fenced transaction, takes that row and attaches
 *     the partition (ingestion-load.ts loadPreloaded) when the size, SHA-256 and table match its
 *     file's record; otherwise it loads the file itself, which drops the detached partition first.
 *   - Both take a transaction-scoped advisory lock on the file id, so the job waits for a load that
 *     is still finishing (it polls, as the fence lock does) and never sees half of one.
 *   - An upload that does not become a file (a duplicate skipped, an idempotency race, a failure)
 *     discards its load; a process that dies in between leaves a row that `sweep` removes, with its
 *     partition, after the orphan grace period.
 *
 * Bounds: at most SLUICE_LOAD_DURING_UPLOAD loads at a time per process (each holds a pipeline
 * thread and a database connection for as long as its upload streams); an upload that finds none
 * free is loaded by its job as before. An upload not stored within
 * SLUICE_LOAD_DURING_UPLOAD_MAX_UPLOAD_MS of its load's start ends the load (a client-paced
 * transaction held open would hold back VACUUM); a stalled upload stalls the COPY, which the
 * database socket's no-answer watchdog and the multipart stall timeout both end.
 */

/** SLUICE_LOAD_DURING_UPLOAD_MAX_UPLOAD_MS: the longest an upload may pace a load's transaction. */
export const DEFAULT_MAX_UPLOAD_MS = 300_000;

/** Removes a load's record, its partition while it is still detached, and its staged valid rows. */
async function dropPreload(tx: postgres.TransactionSql, storage: ObjectStorage, fileId: string): Promise<boolean> {
  const had = await takePreload(tx, fileId);
  await dropDetachedPartition(tx, filePartitionName(fileId));
  await storage.delete(storageKeys.loadStaging(fileId));
  return had !== null;
}

/** What a file's rows are loaded as (the upload's spec version and header policy). */
export interface UploadLoadTarget {
  fileId: string;
  table: string;
  spec: CompiledSpec;
  headers?: Pick<CsvPipelineOptions, 'unknownColumns' | 'columnMap'>;
  dialect?: CsvDialectOptions;
}

/** A reason a load during upload stopped that is no fault: the file is loaded by its job instead. */
class NotLoaded extends Error {}

/** One upload's load (see the top of this file). */
export interface UploadLoad {
  /** true once the rows and their record are committed; false when the job will load the file. */
  readonly settled: Promise<boolean>;
  /** Ends the load and removes what it committed (the upload did not become a file); never throws. */
  discard(): Promise<void>;
}

export class LoadsDuringUpload {
  private readonly running = new Set<{ abort: AbortController; settled: Promise<boolean> }>();
  private stopped = false;

  private readonly sql: postgres.Sql;

  /** `db`: the pool, and what a pipeline thread's own connection for the load's transaction is opened with. */
  constructor(
    private readonly db: Pick<Database, 'sql' | 'url' | 'settings'>,
    private readonly storage: ObjectStorage,
    private readonly log: Logger,
    private readonly opts: {
      max: number;
      minBytes: number;
      threads: boolean;
      threadNice?: number;
      progressIntervalMs?: number;
      maxUploadMs?: number;
      /** COPYs at once per load (SLUICE_LOAD_STREAMS; default 1). */
      streams?: number;
    },
  ) {
    this.sql = db.sql;
  }

  /** What a pipeline thread imports ahead to be ready for a load (keepPipelineThreadsWarm). */
  get threadModules(): string[] {
    return this.opts.threads && this.opts.max > 0 ? [LOAD_SESSION_MODULE] : [];
  }

  /** Ends every load in flight (rolled back: their jobs load the files) and starts no more (shutdown). */
  async stop(): Promise<void> {
    this.stopped = true;
    const all = [...this.running];
    for (const r of all) r.abort.abort();
    await Promise.all(all.map((r) => r.settled));
  }

  /** Loads started and not settled yet (waiting for their first bytes, COPYing, or committing). */
  get inFlight(): number {
    return this.running.size;
  }

  /** Starts following `writer`'s file for `target`, or returns null (no free slot, no local file, no threads). */
  start(writer: StorageWriter, target: UploadLoadTarget): UploadLoad | null {
    const growing = writer.growing;
    if (!growing || !this.opts.threads || this.stopped || this.running.size >= this.opts.max) return null;
    const abort = new AbortController();
    // Set once the load told its thread to commit: from then on, a load ended by an abort may still have committed.
    const commitAsked = { value: false };
    const settled = this.run(writer.key, growing, target, abort.signal, commitAsked).then(
      () => true,
      (err: unknown) => {
        if (!(err instanceof NotLoaded) && !(err instanceof Error && err.name === LOAD_NOT_KEPT) && !abort.signal.aborted)
          this.log.warn({ err, fileId: target.fileId }, 'load during upload failed; the job loads the file');
        else this.log.debug({ fileId: target.fileId, reason: (err as Error).message }, 'load during upload not kept; the job loads the file');
        return false;
      },
    );
    const entry = { abort, settled };
    this.running.add(entry);
    void settled.finally(() => this.running.delete(entry));
    return {
      settled,
      discard: async () => {
        abort.abort();
        if (!(await settled) && !commitAsked.value) return;
        try {
          await this.sql.begin((tx) => dropPreload(tx, this.storage, target.fileId));
        } catch (err) {
          // Never the upload's failure: the sweep removes it later.
          this.log.warn({ err, fileId: target.fileId }, 'could not remove a load during upload; the orphan sweep will');
        }
      },
    };
  }

  /**
   * Removes loads no job will take: those whose file's job has ended (cancelled before it took the
   * load, say), and those older than `olderThanSeconds` (their upload never became a file, or its
   * job never ran); and a split load's partition that no record names and whose file's lock
   * nobody holds (a crash between its commits), whatever its age.
   */
  async sweep(olderThanSeconds: number): Promise<number> {
    const rows = await this.sql<{ file_id: string }[]>`
      select p.file_id from file_preloads p
      left join files f on f.id = p.file_id left join jobs j on j.id = f.job_id
      where p.created_at < now() - make_interval(secs => ${olderThanSeconds}) or j.state in ${this.sql([...TERMINAL_STATES])}
      limit 1000`;
    let dropped = 0;
    for (const { file_id } of rows) if (await this.sql.begin((tx) => dropPreload(tx, this.storage, file_id))) dropped++;
    // Staged valid rows of loads that never committed their record (a crash between the two).
    const cutoff = Date.now() - olderThanSeconds * 1000;
    for await (const item of this.storage.list(LOAD_STAGING_PREFIX)) {
      const fileId = item.key.split('/')[1] ?? '';
      if (item.modifiedAt.getTime() > cutoff || !isUuid(fileId)) continue;
      const [held] = await this.sql`select 1 from file_preloads where file_id = ${fileId}`;
      if (!held) await this.storage.delete(item.key);
    }
    // Split partitions of loads that never committed their record (a crash in between, see
    // load-session.ts): detached, no record, and no load or job holding the file's lock.
    const split = await this.sql<{ relname: string }[]>`
      select c.relname from pg_class c
      where c.relkind = 'p' and c.relname ~ '^dsf_[0-9a-f]{32}$' and not c.relispartition
        and not exists (select 1 from file_preloads p where replace(p.file_id::text, '-', '') = substr(c.relname, 5))
      limit 1000`;
    for (const { relname } of split) {
      const h = relname.slice(4);
      const fileId = `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
      if (await dropUnkeptPartition(this.sql, fileId, 0)) dropped++;
    }
    // Progress of loads that ended without a job to take it (a crash between the two).
    await this.sql`delete from file_load_progress where updated_at < now() - make_interval(secs => ${olderThanSeconds})`;
    if (dropped) this.log.info({ count: dropped }, 'removed loads during upload that no job took');
    return dropped;
  }

  private async run(key: string, growing: GrowingFile, target: UploadLoadTarget, outer: AbortSignal, commitAsked: { value: boolean }): Promise<void> {
    await reached(growing, this.opts.minBytes, outer);
    const started = performance.now();
    let storedAt = 0;
    // The transaction is paced by the client until the upload is stored: an upload that takes
    // longer than maxUploadMs from here ends the load (a transaction held open that long would
    // hold back VACUUM everywhere), and its job loads the file.
    const slow = new AbortController();
    const signal = AbortSignal.any([outer, slow.signal]);
    const deadline = setTimeout(() => {
      if (growing.outcome === undefined) slow.abort(new NotLoaded(`the upload was not stored within ${this.opts.maxUploadMs} ms`));
    }, this.opts.maxUploadMs ?? DEFAULT_MAX_UPLOAD_MS);
    deadline.unref();
    const offStored = growing.watch((e) => {
      if (e.t === 'stored') storedAt = performance.now();
      if (e.t !== 'grown') clearTimeout(deadline);
    });
    let copied = started;
    let rows = 0;
    let handle: Awaited<ReturnType<GrowingFile['openForReading']>>;
    try {
      handle = await growing.openForReading();
    } catch (err) {
      // The upload failed in between (its temp file is gone): nothing to load.
      if (growing.outcome === null) throw new NotLoaded('the upload ended before the load started');
      throw err;
    }
    const input = new GrowingFileStream(handle, key, growing);
    const progress = progressWriter(this.sql, this.log, target.fileId, this.opts.progressIntervalMs ?? 250);
    // The valid rows, where they are not the upload byte for byte (CRLF, a BOM, quoted cells written plainly).
    const staging = this.storage.openWriter(storageKeys.loadStaging(target.fileId), { contentType: 'text/csv' });
    let staged: PutResult | null = null;
    try {
      // The transaction runs on the pipeline thread, over its own connection (load-session.ts):
      // the COPY goes from the thread that encodes it straight to PostgreSQL.
      const args: LoadSessionArgs = {
        url: this.db.url,
        settings: this.db.settings,
        fileId: target.fileId,
        table: target.table,
        columns: target.spec.columns.map((c) => c.column),
        streams: this.opts.streams ?? 1,
      };
      let notKept: string | null = null;
      const { settled } = await runCsvPipelineWithCopySession<LoadDecision>(
        input,
        target.spec,
        {
          validCsv: staging.stream,
          validCsvMayBeInput: true,
          onInvalid: () => Promise.reject(new NotLoaded('an invalid row')),
        },
        {
          ...target.headers,
          fileId: target.fileId,
          dialect: target.dialect,
          copyFormat: 'binary',
          copyFileId: false,
          errorLineColumn: true,
          signal,
          onProgress: progress.report,
        },
        { nice: this.opts.threadNice },
        {
          spec: { module: LOAD_SESSION_MODULE, args },
          decide: async ({ result, verified }) => {
            await progress.close();
            copied = performance.now();
            rows = result.valid;
            const stored = growing.outcome;
            if (result.invalid > 0 || result.empty || result.valid === 0) notKept = 'not a clean file';
            else if (!stored || !verified) notKept = 'the upload was not stored';
            else if (signal.aborted) notKept = 'discarded';
            if (notKept || !stored) return null;
            // Stored (fsynced) before the record commits: a record never names an object that is not there.
            if (result.validCsvIsInput) await staging.abort();
            else staged = await staging.done();
            commitAsked.value = true;
            return {
              size: stored.size,
              sha256: stored.sha256,
              result,
              validCsv: staged ? { key: staged.key, size: staged.size, sha256: staged.sha256 } : null,
            };
          },
        },
      );
      const outcome = settled as LoadSettled;
      if (!outcome.committed) throw new NotLoaded(notKept ?? outcome.reason);
    } catch (err) {
      // Nothing of a load that did not commit stays in storage.
      await staging.abort();
      const written = staged as PutResult | null;
      if (written) await this.storage.delete(written.key).catch(() => undefined);
      // Nor in the database: a split load commits its empty partition first (load-session.ts),
      // and its thread may have been ended before it could drop it.
      if ((this.opts.streams ?? 1) > 1)
        await dropUnkeptPartition(this.sql, target.fileId).catch((e: unknown) =>
          this.log.warn({ err: e, fileId: target.fileId }, 'could not drop the partition of a load during upload that was not kept; the orphan sweep will'),
        );
      if (slow.signal.aborted) throw slow.signal.reason;
      throw err;
    } finally {
      clearTimeout(deadline);
      offStored();
      input.destroy();
      await progress.close();
    }
    const ms = (a: number, b: number) => Math.round(b - a);
    // copyMs: from the first byte read to the COPY's end; afterStoredMs: how much of it came after the upload was stored.
    this.log.info(
      {
        fileId: target.fileId,
        rows,
        copyMs: ms(started, copied),
        afterStoredMs: storedAt ? Math.max(0, ms(storedAt, copied)) : 0,
        commitMs: ms(copied, performance.now()),
      },
      'rows loaded during upload',
    );
  }
}

/**
 * Writes a load's progress to file_load_progress (outside the load's transaction): at most one
 * write in flight, and one per `intervalMs`. `close` stops it and waits for the last write, so a
 * load that closes it before its commit never writes after its job removed the row.
 */
function progressWriter(sql: postgres.Sql, log: Logger, fileId: string, intervalMs: number) {
  let last = 0;
  let pending: Promise<unknown> = Promise.resolve();
  let busy = false;
  let closed = false;
  return {
    report(c: { total: number; valid: number; bytes: number }): void {
      const now = performance.now();
      if (closed || busy || now - last < intervalMs) return;
      last = now;
      busy = true;
      pending = sql`
        insert into file_load_progress (file_id, processed, succeeded, bytes) values (${fileId}, ${c.total}, ${c.valid}, ${c.bytes})
        on conflict (file_id) do update set processed = excluded.processed, succeeded = excluded.succeeded, bytes = excluded.bytes, updated_at = now()`
        .catch((err: unknown) => log.debug({ err, fileId }, 'could not record the progress of a load during upload'))
        .finally(() => {
          busy = false;
        });
    },
    async close(): Promise<void> {
      closed = true;
      await pending;
    },
  };
}

/** Resolves once `minBytes` are written; rejects (NotLoaded) when the write ends or fails first, or on abort. */
function reached(growing: GrowingFile, minBytes: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = (): boolean => {
      if (signal.aborted) reject(new NotLoaded('discarded'));
      else if (growing.outcome !== undefined) reject(new NotLoaded('the upload ended before the load started'));
      else if (growing.written >= minBytes) resolve();
      else return false;
      return true;
    };
    if (check()) return;
    const off = growing.watch(() => {
      if (check()) done();
    });
    const onAbort = () => {
      check();
      done();
    };
    const done = () => {
      off();
      signal.removeEventListener('abort', onAbort);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
