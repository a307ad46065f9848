import type { Writable } from 'node:stream';
import postgres from 'postgres';
import type { CopySession } from '../../ingest/copy-session';
import { connectionOptions, type ConnectionSettings } from '../../db/connection';
import type { PutResult } from '../../storage/storage';
import type { CsvPipelineResult } from '../../ingest/pipeline-types';
import { splitBinaryCopy } from '../../ingest/copy-split';
import { AbortError } from '../../ingest/csv-errors';
import {
  assertIdentifier,
  copyColumns,
  createSplitFilePartition,
  dropDetachedPartition,
  fileLeafName,
  filePartitionName,
  openBinaryCopy,
  partitionParent,
  prepareRowTable,
  quoteIdentifier,
  truncateForLoad,
} from '../datasets/dataset-tables.store';
import { insertPreload, jobEnded, jobStarted, lockFileLoad, tryLockFileLoad } from './file-preloads.store';
import { JobsStore } from '../../jobs/store';

/**
 * The transaction of a load during upload (load-during-upload.ts), run on the pipeline thread
 * that encodes the rows, over a connection of that thread's own (see ingest/copy-session.ts): it
 * takes the file's load lock, creates the file's partition (prepareRowTable), COPYs the rows into
 * it and, once the API thread has said the upload is stored and matches what was read (the
 * decision), commits them with their file_preloads record, unless the file's job has ended.
 * This module is loaded by the pipeline thread (a bundle of its own in dist/, scripts/build.mjs).
 */

/**
 * The module the pipeline thread loads for a load's transaction (this module): the compiled
 * bundle's sibling in dist/ (scripts/build.mjs builds it), or the TypeScript source under tsx.
 */
export const LOAD_SESSION_MODULE = new URL(import.meta.url.endsWith('.ts') ? './load-session.ts' : './load-session.js', import.meta.url).href;

/** What the API thread sends (structured-cloneable). */
export interface LoadSessionArgs {
  kind?: 'upload';
  url: string;
  settings: ConnectionSettings;
  fileId: string;
  table: string;
  /** The spec's columns, in COPY order after `_line`. */
  columns: string[];
  /** COPYs at once into a split partition (createSplitFilePartition); 1 or absent: one COPY into a plain partition. */
  streams?: number;
}

/**
 * A file's job loading it itself (ingestion-load.ts ingestCsv, a plain append: no merge, no
 * corrections): the job's fence and the file's partition in the thread's transaction.
 */
export interface JobLoadSessionArgs {
  kind: 'job';
  url: string;
  settings: ConnectionSettings;
  jobId: string;
  attempt: number;
  fileId: string;
  table: string;
  columns: string[];
}

/** The job's go-ahead: attach the partition and commit. */
export interface JobLoadDecision {
  commit: true;
}

/** The name of the error that ends a job's load because the attempt no longer owns the job (JobContext.fenced). */
export const JOB_FENCED = 'JobFenced';

class JobFenced extends Error {
  override readonly name = JOB_FENCED;
}

/** The API thread's go-ahead: the record committed with the rows. */
export interface LoadDecision {
  size: number;
  sha256: string;
  result: CsvPipelineResult;
  validCsv: PutResult | null;
}

/** What the API thread is told once the transaction ended. */
export type LoadSettled = { committed: true } | { committed: false; reason: string };

/** The name of the error that ends a load that is no fault (the file's job loads it instead). */
export const LOAD_NOT_KEPT = 'LoadNotKept';

class NotKept extends Error {
  override readonly name = LOAD_NOT_KEPT;
}

/** One connection per database per thread and stream, kept between loads (it closes when idle, as the pool's do). */
const clients = new Map<string, postgres.Sql>();

/** The connection of stream `stream` (0: the load's own transaction; more for a split load's other COPYs). */
function client(args: { url: string; settings: ConnectionSettings }, stream = 0): postgres.Sql {
  const key = `${stream} ${args.url}`;
  let sql = clients.get(key);
  if (!sql) {
    sql = postgres(args.url, { ...connectionOptions({ ...args.settings, appName: `${args.settings.appName ?? 'sluice'}-load` }), max: 1 });
    clients.set(key, sql);
  }
  return sql;
}

export function openCopySession(raw: unknown): Promise<CopySession> {
  const args = raw as LoadSessionArgs | JobLoadSessionArgs;
  if (args.kind === 'job') return openJobSession(args);
  return (args.streams ?? 1) > 1 ? openSplitUploadSession(args) : openUploadSession(args);
}

/**
 * Runs `body` in a transaction on the thread's connection; resolves once `body` has opened its
 * COPY (the session), and settles when the decision comes (see ingest/copy-session.ts).
 */
async function session<D>(
  args: { url: string; settings: ConnectionSettings },
  body: (tx: postgres.TransactionSql, open: (copy: Writable, copyFileId?: boolean) => void, decided: Promise<D | null>) => Promise<void>,
  stream = 0,
): Promise<CopySession> {
  const sql = client(args, stream);
  const key = `${stream} ${args.url}`;
  let opened: (s: { copy: Writable; copyFileId?: boolean }) => void = () => undefined;
  const copyOpened = new Promise<{ copy: Writable; copyFileId?: boolean }>((resolve) => (opened = resolve));
  let decide: (decision: D | null) => void = () => undefined;
  const decided = new Promise<D | null>((resolve) => (decide = resolve));
  const transaction = sql.begin((tx) => body(tx, (copy, copyFileId) => opened({ copy, copyFileId }), decided));
  // Settled through `settle`; a transaction that failed before its COPY opened fails the open. A
  // connection that failed (terminated, lost) is not used again: the next load opens a new one.
  transaction.catch((err: unknown) => {
    if (err instanceof NotKept || err instanceof JobFenced || clients.get(key) !== sql) return;
    clients.delete(key);
    void sql.end({ timeout: 0 }).catch(() => undefined);
  });
  const open = await Promise.race([
    copyOpened,
    transaction.then(() => {
      throw new Error('The load transaction ended before its COPY opened');
    }),
  ]);
  return {
    copy: open.copy,
    ...(open.copyFileId !== undefined ? { copyFileId: open.copyFileId } : {}),
    async settle(decision: unknown): Promise<LoadSettled> {
      decide(decision as D | null);
      try {
        await transaction;
        return { committed: true };
      } catch (err) {
        if (err instanceof NotKept) return { committed: false, reason: err.message };
        throw err;
      }
    },
  };
}

/** The job's load (JobLoadSessionArgs): fenced as JobContext.fenced is, attached before the commit. */
function openJobSession(args: JobLoadSessionArgs): Promise<CopySession> {
  const specColumns = args.columns.map(assertIdentifier);
  return session<JobLoadDecision>(args, async (tx, open, decided) => {
    // The job's fence, as JobContext.fenced takes it, on this transaction.
    if (!(await new JobsStore(client(args)).holdsFence(tx, args.jobId, args.attempt))) throw new JobFenced('the attempt no longer owns the job');
    const into = await prepareRowTable(tx, args.table, args.fileId);
    open(await openBinaryCopy(tx, into.table, copyColumns(into, specColumns), into.freeze === true), !into.fileIdDefault);
    if (!(await decided)) throw new NotKept('the job did not keep the rows');
    await into.attach();
  });
}

/**
 * Takes the file's load lock and checks that a load may start. A load comes before its file's
 * job, or not at all: a job that started first loads the file itself (and a partition already
 * there is never this load's to replace).
 */
async function lockForLoad(tx: postgres.TransactionSql, fileId: string): Promise<void> {
  await lockFileLoad(tx, fileId);
  if (await jobStarted(tx, fileId)) throw new NotKept('the file’s job started before the load');
  if ((await partitionParent(tx, filePartitionName(fileId))) !== undefined) throw new NotKept('the file’s partition exists already');
}

function openUploadSession(args: LoadSessionArgs): Promise<CopySession> {
  const specColumns = args.columns.map(assertIdentifier);
  return session<LoadDecision>(args, async (tx, open, decided) => {
    // A COPY lasts as long as the upload streams (the socket watchdog still ends a silent link).
    await tx`set local statement_timeout = 0`;
    await lockForLoad(tx, args.fileId);
    const into = await prepareRowTable(tx, args.table, args.fileId);
    // Only a fresh partition of its own can wait, detached, for the job (rolled back otherwise).
    if (!into.fileIdDefault) throw new NotKept('the spec table is not partitioned by file');
    open(await openBinaryCopy(tx, into.table, copyColumns(into, specColumns), into.freeze === true));
    const decision = await decided;
    if (!decision) throw new NotKept('the API thread did not keep the rows');
    // A job that already ended (cancelled while it waited, say) takes no load: nothing is kept for it.
    if (await jobEnded(tx, args.fileId)) throw new NotKept('the file’s job ended before the load did');
    await insertPreload(tx, args.fileId, args.table, decision);
  });
}

/**
 * A load during upload over `args.streams` COPYs at once (SLUICE_LOAD_STREAMS): PostgreSQL takes a
 * COPY's rows on one core, so one COPY is as fast as the load can be, however fast the rows come;
 * several, each in a transaction and on a connection of its own, take them on as many cores.
 *
 * 1. A short transaction takes the file's load lock, makes the same checks as a plain load and
 *    creates the file's split partition (createSplitFilePartition), detached and empty, and
 *    commits it: the other streams' transactions must see its leaves.
 * 2. The load's own transaction (stream 0) takes the lock again, checks again (a job that took
 *    the lock in between loads the file itself: this load ends), truncates leaf 0 and opens its
 *    COPY with FREEZE. Only then do the other streams start, each truncating its leaf and opening
 *    a COPY with FREEZE: under the lock, so no job can drop the partition meanwhile. The rows go
 *    to the streams by their block of lines (ingest/copy-split.ts), each stream's COPY under the
 *    same constant defaults (one `_ingested_at` for the file).
 * 3. The decision: kept, the other streams commit first, then the load's own transaction commits
 *    the file_preloads record, as a plain load does; not kept, all roll back. The job attaches
 *    the partition under the lock as it attaches a plain one.
 *
 * What a failure leaves: between the other streams' commit and the record's, or after step 1, a
 * detached partition with no record. The file's job drops and loads it again, as it does with
 * any partition without a record; where no job will (the upload did not become a file, the job
 * ended), the load drops it itself before it reports, and the orphan sweep drops what a crash
 * left (a detached file partition with no record, whose lock nobody holds).
 */
async function openSplitUploadSession(args: LoadSessionArgs): Promise<CopySession> {
  const streams = args.streams!;
  const specColumns = args.columns.map(assertIdentifier);
  const columns = ['_line', ...specColumns];
  const partition = filePartitionName(args.fileId);
  const first = client(args);
  const at = await first
    .begin(async (tx) => {
      await lockForLoad(tx, args.fileId);
      const [kind] = await tx<{ relkind: string }[]>`select relkind from pg_class where oid = to_regclass(${quoteIdentifier(args.table)})`;
      if (kind?.relkind !== 'p') throw new NotKept('the spec table is not partitioned by file');
      await createSplitFilePartition(tx, args.table, args.fileId, streams);
      const [row] = await tx<{ now: string }[]>`select now()::text as now`;
      return row!.now;
    })
    .catch((err: unknown) => {
      // As session() does: a connection that failed is not used again.
      const key = `0 ${args.url}`;
      if (!(err instanceof NotKept) && clients.get(key) === first) {
        clients.delete(key);
        void first.end({ timeout: 0 }).catch(() => undefined);
      }
      throw err;
    });
  const opened: CopySession[] = [];
  try {
    const leaf = async (tx: postgres.TransactionSql, i: number): Promise<Writable> => {
      const name = fileLeafName(args.fileId, i);
      await truncateForLoad(tx, name, args.fileId, at);
      return openBinaryCopy(tx, name, columns, true);
    };
    opened.push(
      await session<LoadDecision>(args, async (tx, open, decided) => {
        await tx`set local statement_timeout = 0`;
        await lockFileLoad(tx, args.fileId);
        if (await jobStarted(tx, args.fileId)) throw new NotKept('the file’s job started before the load');
        if ((await partitionParent(tx, partition)) !== null) throw new NotKept('the file’s partition is not this load’s');
        open(await leaf(tx, 0));
        const decision = await decided;
        if (!decision) throw new NotKept('the API thread did not keep the rows');
        if (await jobEnded(tx, args.fileId)) throw new NotKept('the file’s job ended before the load did');
        await insertPreload(tx, args.fileId, args.table, decision);
      }),
    );
    for (let i = 1; i < streams; i++) {
      opened.push(
        await session<LoadDecision>(
          args,
          async (tx, open, decided) => {
            await tx`set local statement_timeout = 0`;
            open(await leaf(tx, i));
            if (!(await decided)) throw new NotKept('the API thread did not keep the rows');
          },
          i,
        ),
      );
    }
  } catch (err) {
    // An open COPY ends first (CopyFail), so its transaction can roll back.
    for (const s of opened) s.copy.destroy();
    await Promise.all(opened.map((s) => s.settle(null).catch(() => undefined)));
    await dropUnkept(args);
    throw err;
  }
  const [own, ...others] = opened as [CopySession, ...CopySession[]];
  return {
    copy: splitBinaryCopy(opened.map((s) => s.copy)),
    async settle(decision: unknown): Promise<LoadSettled> {
      let outcome: LoadSettled;
      try {
        if (decision === null) {
          await Promise.all(others.map((s) => s.settle(null)));
          outcome = (await own.settle(null)) as LoadSettled;
        } else {
          // The other streams first: the record commits only with every leaf's rows committed.
          try {
            for (const s of others) await s.settle(decision);
          } catch (err) {
            await own.settle(null).catch(() => undefined);
            throw err;
          }
          outcome = (await own.settle(decision)) as LoadSettled;
        }
      } catch (err) {
        await dropUnkept(args);
        throw err;
      }
      if (!outcome.committed) await dropUnkept(args);
      return outcome;
    },
  };
}

/** dropUnkeptPartition on the thread's connection; never throws (what stays is the orphan sweep's). */
async function dropUnkept(args: LoadSessionArgs): Promise<void> {
  await dropUnkeptPartition(client(args), args.fileId).catch(() => undefined);
}

/**
 * How long dropUnkeptPartition waits for the file's load lock. Longer means the file's job holds
 * it, loading the file itself: that job drops a detached partition with no record as it prepares
 * its own (prepareRowTable), so nobody waits for the whole job.
 */
const DROP_LOCK_WAIT_MS = 2000;

/**
 * Drops the file's partition when it is detached and has no record (a split load that did not
 * commit it, see openSplitUploadSession): under the load lock and then the partition's own, so
 * never one a load or the file's job is using or has put in its place. Also run by the API thread after a split load that did not commit (its thread
 * may have been ended before it could), and by the orphan sweep (`waitMs` 0: only when nobody
 * holds the lock). True when it dropped one; false as well when the lock stayed taken (see
 * DROP_LOCK_WAIT_MS).
 */
export async function dropUnkeptPartition(sql: postgres.Sql, fileId: string, waitMs = DROP_LOCK_WAIT_MS): Promise<boolean> {
  return sql.begin(async (tx) => {
    if (waitMs <= 0) {
      if (!(await tryLockFileLoad(tx, fileId))) return false;
    } else {
      try {
        await lockFileLoad(tx, fileId, { signal: AbortSignal.timeout(waitMs) });
      } catch (err) {
        if (err instanceof AbortError) return false;
        throw err;
      }
    }
    const [held] = await tx`select 1 from file_preloads where file_id = ${fileId}`;
    return !held && (await dropDetachedPartition(tx, filePartitionName(fileId), DROP_LOCK_WAIT_MS));
  });
}
