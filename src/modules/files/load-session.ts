import type { Writable } from 'node:stream';
import postgres from 'postgres';
import type { CopySession } from '../../ingest/copy-session';
import { connectionOptions, type ConnectionSettings } from '../../db/connection';
import type { PutResult } from '../../storage/storage';
import type { CsvPipelineResult } from '../../ingest/pipeline-types';
import { assertIdentifier, filePartitionName, partitionParent, prepareRowTable } from '../datasets/dataset-tables.store';
import { insertPreload, jobEnded, jobStarted, lockFileLoad } from './file-preloads.store';

/**
 * The transaction of a load during upload (load-during-upload.ts), run on the pipeline thread
 * that encodes the rows, over a connection of that thread's own (see ingest/copy-session.ts): it
 * takes the file's load lock, creates the file's partition (prepareRowTable), COPYs the rows into
 * it and, once the API thread has said the upload is stored and matches what was read (the
 * decision), commits them with their file_preloads record, unless the file's job has ended.
 * This module is loaded by the pipeline thread (a bundle of its own in dist/, scripts/build.mjs).
 */

/** What the API thread sends (structured-cloneable). */
export interface LoadSessionArgs {
  url: string;
  settings: ConnectionSettings;
  fileId: string;
  table: string;
  /** The spec's columns, in COPY order after `_line`. */
  columns: string[];
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

function client(args: LoadSessionArgs): postgres.Sql {
  let sql = clients.get(args.url);
  if (!sql) {
    sql = postgres(args.url, { ...connectionOptions({ ...args.settings, appName: `${args.settings.appName ?? 'sluice'}-load` }), max: 1 });
    clients.set(args.url, sql);
  }
  return sql;
}

export async function openCopySession(raw: unknown): Promise<CopySession> {
  const args = raw as LoadSessionArgs;
  const sql = client(args);
  const columns = ['_line', ...args.columns.map(assertIdentifier)];
  let opened: (copy: Writable) => void = () => undefined;
  const copyOpened = new Promise<Writable>((resolve) => (opened = resolve));
  let decide: (decision: LoadDecision | null) => void = () => undefined;
  const decided = new Promise<LoadDecision | null>((resolve) => (decide = resolve));
  const transaction = sql.begin(async (tx) => {
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
    opened(await tx`copy ${tx(into.table)} (${tx(columns)}) from stdin with (format binary, freeze)`.writable());
    const decision = await decided;
    if (!decision) throw new NotKept('the API thread did not keep the rows');
    // A job that already ended (cancelled while it waited, say) takes no load: nothing is kept for it.
    if (await jobEnded(tx, args.fileId)) throw new NotKept('the file’s job ended before the load did');
    await insertPreload(tx, args.fileId, args.table, decision);
  });
  // Settled through `settle`; a transaction that failed before its COPY opened fails the open. A
  // connection that failed (terminated, lost) is not used again: the next load opens a new one.
  transaction.catch((err: unknown) => {
    if (err instanceof NotKept || clients.get(args.url) !== sql) return;
    clients.delete(args.url);
    void sql.end({ timeout: 0 }).catch(() => undefined);
  });
  const copy = await Promise.race([
    copyOpened,
    transaction.then(() => {
      throw new Error('The load transaction ended before its COPY opened');
    }),
  ]);
  return {
    copy,
    async settle(decision: unknown): Promise<LoadSettled> {
      decide(decision as LoadDecision | null);
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
