import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Readable, Writable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import type { CompiledSpec } from './contract';
import { StorageError, type StorageErrorCode } from '../storage/storage';
import { StoredFileStream, type StoredFileSource } from '../storage/verify';
import { GrowingFileStream, type GrowingFileSource, type GrowthMessage } from '../storage/growing-file';
import { AbortError, revivePipelineError, type PipelineErrorData } from './csv-errors';
import { runCsvPipeline } from './csv-pipeline';
import { drained } from './pipeline-run';
import type { CsvPipelineCounts, CsvPipelineOptions, CsvPipelineResult, CsvPipelineSinks, InvalidRow } from './pipeline-types';
import type { HeaderMapping } from './row-validator';

/**
 * runCsvPipeline on a worker thread: the same arguments, result and errors (the error classes of
 * csv-errors.ts are rebuilt on this side, so `instanceof` holds), with the parse, the validation,
 * the key check and the COPY encoding off the API's event loop. This thread only moves bytes:
 * input chunks go over (at most INPUT_IN_FLIGHT at a time), and what the worker's sinks receive
 * comes back, in order, to be written to the real sinks here; each message is acknowledged once
 * written, which is the worker's credit (see pipeline-worker.ts), so memory stays bounded on both
 * sides whichever end is slower.
 *
 * Why a thread and not the event loop: measured on a 2-core machine, a 1M-row import on the API's
 * loop served reads at ~half the offered rate with p99 ~140 ms (issue #16); the hot loop is
 * synchronous per chunk, so no amount of yielding between chunks gives requests their turn soon enough.
 */

export type ThreadSink = 'copy' | 'validCsv' | 'errorCsv';

/** The options that cross to the worker (functions stay here: the worker calls back by message). */
export type ThreadOptions = Omit<CsvPipelineOptions, 'signal' | 'onProgress' | 'validator'>;

export type ToPipelineThread =
  | {
      t: 'start';
      spec: CompiledSpec;
      opts: ThreadOptions;
      /** `validMirror`: the valid rows may be reported as the stored file itself (CsvPipelineSinks.validCsvMayBeInput). */
      sinks: { validCsv: boolean; errorCsv: boolean; onInvalid: boolean; validMirror: boolean };
      progress: boolean;
      /** The input is this stored file, read and verified by the thread (no 'chunk' messages follow). */
      file: StoredFileSource | null;
      /**
       * The input is this file while it is still being written, followed by the thread as 'growth'
       * messages tell it how far the writer got (no 'chunk' messages follow; see storage/growing-file.ts).
       */
      growing: GrowingFileSource | null;
      /** The thread's nice value for this run (SLUICE_PIPELINE_THREAD_NICE; see pipeline-worker.ts). */
      nice: number;
    }
  | { t: 'chunk'; data: ArrayBuffer | string }
  | { t: 'end' }
  | { t: 'growth'; m: GrowthMessage }
  | { t: 'ack'; bytes: number }
  /** A COPY chunk's memory, written and released (CsvPipelineSinks.copyReleasesChunks): filled again. */
  | { t: 'recycle'; data: ArrayBuffer }
  | { t: 'abort' };

export type FromPipelineThread =
  | { t: 'pull' }
  /** `length`: the bytes of `data` that are filled (an ArrayBuffer moved whole may be larger). */
  | { t: 'out'; sink: ThreadSink; data: string | ArrayBuffer; length: number; bytes: number }
  | { t: 'invalid'; rows: InvalidRow[]; mapping: HeaderMapping; bytes: number }
  | { t: 'progress'; counts: CsvPipelineCounts }
  /**
   * `verified`: the thread read the stored file (start.file) to its end and it matched the record;
   * `result.validCsvIsInput`: only ever with `verified`.
   */
  | { t: 'done'; result: CsvPipelineResult; verified: boolean }
  | { t: 'fail'; error: PipelineErrorData };

export type CsvPipelineRunner = (input: Readable, spec: CompiledSpec, sinks: CsvPipelineSinks, opts: CsvPipelineOptions) => Promise<CsvPipelineResult>;

/**
 * The pipeline thread's default nice value (SLUICE_PIPELINE_THREAD_NICE). Why: on a machine with
 * few cores an import's thread and PostgreSQL can take every core, and the API's event loop then
 * waits for one; at a lower priority the thread yields a core to the API whenever it wants one,
 * and still gets every cycle nobody else wants (an import on an idle machine is not slower).
 */
export const DEFAULT_PIPELINE_THREAD_NICE = 10;

/** Input chunks posted and not yet taken by the worker. */
const INPUT_IN_FLIGHT = 4;
/** Idle workers kept for the next run. */
const MAX_IDLE = 2;

/**
 * The worker's entry: the compiled bundle's sibling in dist/ (scripts/build.mjs builds it), or the
 * TypeScript source run through tsx (`npm run dev`, the tests).
 */
function startWorker(): Worker {
  const here = import.meta.url;
  if (!here.endsWith('.ts')) return new Worker(new URL('./pipeline-worker.js', here));
  // Why a bootstrap: on Node 20 a worker does not take `--import tsx` from execArgv, so the
  // worker registers tsx's hooks itself before it imports the TypeScript entry.
  const api = pathToFileURL(path.join(path.dirname(createRequire(here).resolve('tsx/package.json')), 'dist/esm/api/index.mjs')).href;
  const entry = new URL('./pipeline-worker.ts', here).href;
  return new Worker(`import(${JSON.stringify(api)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); });`, { eval: true });
}

/** Workers ready for a run, kept out of the way of process exit. */
class WorkerPool {
  private readonly idle: Worker[] = [];

  take(): Worker {
    const reused = this.idle.pop();
    // A worker that died while idle (only a bug could do that) is not handed out.
    if (reused && reused.threadId === -1) return this.take();
    if (reused) {
      reused.ref();
      return reused;
    }
    const worker = startWorker();
    // Each run listens for errors too; this keeps an idle worker's error from being unhandled.
    worker.on('error', () => undefined);
    return worker;
  }

  /** A worker whose run ended cleanly goes back; any other is terminated. */
  give(worker: Worker, reusable: boolean): void {
    if (!reusable || this.idle.length >= MAX_IDLE) {
      void worker.terminate();
      return;
    }
    worker.unref();
    this.idle.push(worker);
  }

  /** Terminates the idle workers (shutdown, tests). */
  async close(): Promise<void> {
    const all = this.idle.splice(0);
    await Promise.all(all.map((w) => w.terminate()));
  }
}

const pool = new WorkerPool();

/** Ends the idle pipeline threads (the service's shutdown). */
export function closePipelineThreads(): Promise<void> {
  return pool.close();
}

/**
 * runCsvPipeline, or runCsvPipelineOffThread when `threads` (SLUICE_PIPELINE_THREADS), its thread
 * at nice value `threadNice` (SLUICE_PIPELINE_THREAD_NICE).
 */
export function csvPipelineRunner(threads: boolean, threadNice = DEFAULT_PIPELINE_THREAD_NICE): CsvPipelineRunner {
  if (!threads) return runCsvPipeline;
  return (input, spec, sinks, opts) => runCsvPipelineOffThread(input, spec, sinks, opts, { nice: threadNice });
}

/** runCsvPipeline with its work on a worker thread (see the top of this file). */
export async function runCsvPipelineOffThread(
  input: Readable,
  spec: CompiledSpec,
  sinks: CsvPipelineSinks,
  opts: CsvPipelineOptions,
  thread: { nice?: number } = {},
): Promise<CsvPipelineResult> {
  // A precompiled validator is a function, which cannot cross: the worker compiles its own.
  const { signal, onProgress, validator: _validator, ...rest } = opts;
  if (signal?.aborted) {
    input.destroy();
    throw new AbortError(signal.reason);
  }
  const worker = pool.take();
  let settled = false;
  let reusable = false;
  /** The worker reported its run's failure: the run ended there, so the worker is idle. */
  let workerFailed = false;
  let inFlight = 0;
  let wakeReader: (() => void) | null = null;
  const queue: FromPipelineThread[] = [];
  let wakeWriter: (() => void) | null = null;
  let fail: (err: unknown) => void = () => undefined;
  const failed = new Promise<never>((_, reject) => {
    fail = (err) => {
      if (settled) return;
      settled = true;
      reject(err);
      wakeReader?.();
      wakeWriter?.();
    };
  });
  failed.catch(() => undefined);
  const post = (msg: ToPipelineThread, transfer?: ArrayBuffer[]) => {
    if (!settled) worker.postMessage(msg, transfer);
  };

  const onMessage = (msg: FromPipelineThread) => {
    if (msg.t === 'pull') {
      inFlight--;
      wakeReader?.();
      return;
    }
    queue.push(msg);
    wakeWriter?.();
  };
  const onError = (err: Error) => fail(err);
  const onExit = (code: number) => fail(new Error(`The CSV pipeline thread exited (code ${code}) before the file was read`));
  worker.on('message', onMessage);
  worker.on('error', onError);
  worker.on('exit', onExit);
  const onAbort = () => {
    input.destroy();
    fail(new AbortError(signal?.reason));
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  // Sink errors stop the run, as in runCsvPipeline (never an unhandled 'error').
  const streams = [sinks.copy, sinks.validCsv, sinks.errorCsv].filter((s): s is Writable => s !== undefined);
  const onSinkError = (err: Error) => fail(err);
  for (const s of streams) s.on('error', onSinkError);

  // A stored local file is read by the thread itself: no byte of it crosses this thread.
  const file = input instanceof StoredFileStream ? input.claim() : null;
  // So is a file still being written: the thread follows it (its size and hash come at its end).
  const growing = input instanceof GrowingFileStream ? input.claim() : null;
  // Compared with a file whose record is complete (or will be, for a growing one): a copy of it is then the verified bytes.
  const validMirror =
    sinks.validCsv !== undefined &&
    sinks.validCsvMayBeInput === true &&
    ((file !== null && file.expected.size !== null && file.expected.sha256 !== null) || growing !== null);
  post({
    t: 'start',
    spec,
    opts: rest,
    sinks: { validCsv: sinks.validCsv !== undefined, errorCsv: sinks.errorCsv !== undefined, onInvalid: sinks.onInvalid !== undefined, validMirror },
    progress: onProgress !== undefined,
    file,
    growing,
    nice: thread.nice ?? DEFAULT_PIPELINE_THREAD_NICE,
  });
  const unfollow = growing ? (input as GrowingFileStream).follow((m) => post({ t: 'growth', m })) : undefined;

  const feed = async () => {
    if (file || growing) return;
    for await (const chunk of input as AsyncIterable<Buffer | string>) {
      if (settled) return;
      if (typeof chunk === 'string') post({ t: 'chunk', data: chunk });
      else {
        // Copied: the stream's buffer may be a slice of memory others still use.
        const copy = new Uint8Array(chunk.length);
        copy.set(chunk);
        post({ t: 'chunk', data: copy.buffer }, [copy.buffer]);
      }
      inFlight++;
      while (inFlight >= INPUT_IN_FLIGHT && !settled) await new Promise<void>((resolve) => (wakeReader = resolve));
      wakeReader = null;
    }
    post({ t: 'end' });
  };

  const sinkOf = (name: ThreadSink): Writable => (name === 'copy' ? sinks.copy : name === 'validCsv' ? sinks.validCsv! : sinks.errorCsv!);

  const drain = async (): Promise<CsvPipelineResult> => {
    for (;;) {
      if (queue.length === 0) {
        await new Promise<void>((resolve) => (wakeWriter = resolve));
        wakeWriter = null;
        if (settled) throw new AbortError();
        continue;
      }
      const msg = queue.shift()!;
      switch (msg.t) {
        case 'out': {
          const stream = sinkOf(msg.sink);
          const data = typeof msg.data === 'string' ? msg.data : Buffer.from(msg.data, 0, msg.length);
          if (stream.destroyed || stream.writableEnded) throw stream.errored ?? new Error('A CSV pipeline sink was closed before the input ended');
          const memory = msg.sink === 'copy' && sinks.copyReleasesChunks === true && typeof msg.data !== 'string' ? msg.data : null;
          // Once the sink has sent the chunk, its memory goes back to the thread to be filled again.
          const release = memory ? (err?: Error | null) => err || post({ t: 'recycle', data: memory }, [memory]) : undefined;
          if (!stream.write(data, release)) await drained(stream, undefined);
          post({ t: 'ack', bytes: msg.bytes });
          break;
        }
        case 'invalid':
          for (const row of msg.rows) {
            const pending = sinks.onInvalid?.(row, msg.mapping);
            if (pending) await pending;
          }
          post({ t: 'ack', bytes: msg.bytes });
          break;
        case 'progress':
          onProgress?.(msg.counts);
          break;
        case 'done':
          if (msg.verified && (input instanceof StoredFileStream || input instanceof GrowingFileStream)) input.markVerified();
          if (msg.result.validCsvIsInput && !(validMirror && msg.verified))
            throw new Error('The CSV pipeline thread reported the valid rows as an unverified input');
          return msg.result;
        case 'fail':
          workerFailed = true;
          throw reviveError(msg.error);
      }
      if (settled) throw new AbortError();
    }
  };

  try {
    const reading = feed();
    reading.catch(() => undefined);
    const result = await Promise.race([failed, Promise.all([reading, drain()]).then(([, r]) => r)]);
    reusable = true;
    return result;
  } catch (err) {
    // A failure the worker reported (a refused header, a bad file) leaves it idle and reusable.
    if (!settled && workerFailed) reusable = true;
    throw err;
  } finally {
    settled = true;
    unfollow?.();
    (wakeReader as (() => void) | null)?.();
    signal?.removeEventListener('abort', onAbort);
    for (const s of streams) s.off('error', onSinkError);
    worker.off('message', onMessage);
    worker.off('error', onError);
    worker.off('exit', onExit);
    // The file the thread read is closed once the thread is done with it (or is being terminated).
    if (!reusable || file || growing) input.destroy();
    pool.give(worker, reusable);
  }
}

/** revivePipelineError, and a StorageError (the thread's read of a stored file) as that class. */
function reviveError(data: PipelineErrorData): Error {
  if (data.kind === 'Error' && data.name === 'StorageError' && data.code !== undefined) {
    return new StorageError(data.code as StorageErrorCode, data.message, data.key);
  }
  return revivePipelineError(data);
}
