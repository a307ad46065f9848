import type { Writable } from 'node:stream';
import type { CsvPipelineResult } from './pipeline-types';

/**
 * A COPY that the pipeline thread writes itself, over a database connection of its own, instead
 * of sending every COPY chunk to the API thread to be written there (runCsvPipelineWithCopySession
 * in pipeline-thread.ts).
 *
 * Why: measured on 1M rows x 10 columns (2 cores), relaying the ~120 MB of binary COPY through
 * the API thread cost about 0.4-0.5 s of CPU more than writing it from the thread that encodes
 * it (structured-clone messages, the API thread's socket writes and its garbage), on a machine
 * whose two cores the load already keeps busy; and the COPY then waits for the API thread's turn
 * whenever requests (or the upload itself) hold it.
 *
 * What the transaction does is not ingest's business: the thread imports `module` (a URL the API
 * thread names; never user input) and calls its `openCopySession(args)`, which opens the
 * transaction and the COPY. Once every row is written and PostgreSQL has taken the COPY, the
 * thread reports the pipeline's result; the API thread answers with a decision (null: roll
 * back), which the thread hands to `settle`, whose answer comes back to the API thread. A thread
 * that is terminated (an abort, a failure) takes its connection with it, and PostgreSQL rolls the
 * transaction back.
 */

/** Which session the thread opens: `openCopySession(args)` of the module at `module` (structured-cloneable args). */
export interface CopySessionSpec {
  module: string;
  args: unknown;
}

/** An open transaction with its COPY, in the pipeline thread. */
export interface CopySession {
  /** The COPY's input; the thread ends it and waits until PostgreSQL took every row. */
  copy: Writable;
  /** Whether the COPY takes `_file_id` from the rows (the pipeline's copyFileId), when the session decides it. */
  copyFileId?: boolean;
  /** Commits (given a decision) or rolls back (null); resolves with what the API thread is told. */
  settle(decision: unknown): Promise<unknown>;
}

/** What a copy-session module exports. */
export type OpenCopySession = (args: unknown) => Promise<CopySession>;

/** What the API thread is asked once the COPY is complete: the pipeline's result, and whether the stored input was read to its end and matched. */
export interface CopiedRows {
  result: CsvPipelineResult;
  verified: boolean;
}
