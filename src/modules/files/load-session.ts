import type { Writable } from 'node:stream';
import postgres from 'postgres';
import type { CopySession } from '../../ingest/copy-session';
import { connectionOptions, type ConnectionSettings } from '../../db/connection';
import type { PutResult } from '../../storage/storage';
import type { CsvPipelineResult } from '../../ingest/pipeline-types';
import { assertIdentifier, copyColumns, filePartitionName, openBinaryCopy, partitionParent, prepareRowTable } from '../datasets/dataset-tables.store';
import { insertPreload, jobEnded, jobStarted, lockFileLoad } from './file-preloads.store';
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

/** One connection per database per thread, kept between loads (it closes when idle, as the pool's do). */
const clients = new Map<string, postgres.Sql>();

function client(args: { url: string; settings: ConnectionSettings }): postgres.Sql {
  let sql = clients.get(args.url);
  if (!sql) {
    sql = postgres(args.url, { ...connectionOptions({ ...args.settings, appName: `${args.settings.appName ?? 'sluice'}-load` }), max: 1 });
    clients.set(args.url, sql);
  }
  return sql;
}

export function openCopySession(raw: unknown): Promise<CopySession> {
  const args = raw as LoadSessionArgs | JobLoadSessionArgs;
  return args.kind === 'job' ? openJobSession(args) : openUploadSession(args);
}

/**
 * Runs `body` in a transaction on the thread's connection; resolves once `body` has opened its
 * COPY (the session), and settles when the decision comes (see ingest/copy-session.ts).
 */
async function session<D>(
  args: { url: string; settings: ConnectionSettings },
  body: (tx: postgres.TransactionSql, open: (copy: Writable, copyFileId?: boolean) => void, decided: Promise<D | null>) => Promise<void>,
): Promise<CopySession> {
  const sql = client(args);
  let opened: (s: { copy: Writable; copyFileId?: boolean }) => void = () => undefined;
  const copyOpened = new Promise<{ copy: Writable; copyFileId?: boolean }>((resolve) => (opened = resolve));
  let decide: (decision: D | null) => void = () => undefined;
  const decided = new Promise<D | null>((resolve) => (decide = resolve));
  const transaction = sql.begin((tx) => body(tx, (copy, copyFileId) => opened({ copy, copyFileId }), decided));
  // Settled through `settle`; a transaction that failed before its COPY opened fails the open. A
  // connection that failed (terminated, lost) is not used again: the next load opens a new one.
  transaction.catch((err: unknown) => {
    if (err instanceof NotKept || err instanceof JobFenced || clients.get(args.url) !== sql) return;
    clients.delete(args.url);
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

function openUploadSession(args: LoadSessionArgs): Promise<CopySession> {
  const specColumns = args.columns.map(assertIdentifier);
  return session<LoadDecision>(args, async (tx, open, decided) => {
    // A COPY lasts as long as the upload streams (the socket watchdog still ends a silent link).
    await tx`set local statement_timeout = 0`;
    await lockFileLoad(tx, args.fileId);
    // A load comes before its file's job, or not at all: a job that started first loads the file
    // itself (and a partition already there is never this load's to replace).
    if (await jobStarted(tx, args.fileId)) throw new NotKept('the file’s job started before the load');
    if ((await partitionParent(tx, filePartitionName(args.fileId))) !== undefined) throw new NotKept('the file’s partition exists already');
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
