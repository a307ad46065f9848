import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Readable, Writable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import type { CompiledSpec } from './contract';
import type { CopiedRows, CopySessionSpec } from './copy-session';
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
      /** The thread writes the COPY itself, in this session (copy-session.ts); no 'copy' output comes back. */
      session: CopySessionSpec | null;
    }
  | { t: 'chunk'; data: ArrayBuffer | string }
  | { t: 'end' }
  | { t: 'growth'; m: GrowthMessage }
  | { t: 'ack'; bytes: number }
  /** A COPY chunk's memory, written and released (CsvPipelineSinks.copyReleasesChunks): filled again. */
  | { t: 'recycle'; data: ArrayBuffer }
  /** The API thread's answer to 'copied' (a copy session's run): handed to the session's settle. */
  | { t: 'settle'; decision: unknown }
  /** Imports these modules ahead of a run (a warm thread: keepPipelineThreadsWarm). */
  | { t: 'preload'; modules: string[] }
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
  | { t: 'done'; result: CsvPipelineResult; verified: boolean; settled?: unknown }
  /** The answer to an 'abort' that found no run (the run had ended already). */
  | { t: 'idle' }
  /** A copy session's COPY is complete (every row taken by PostgreSQL): the thread waits for 'settle'. */
  | { t: 'copied'; result: CsvPipelineResult; verified: boolean }
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
/** How long a worker told to abort its run may take to end it before it is terminated instead. */
const RETIRE_MS = 5_000;

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
  /** Every worker started and not exited (idle or running). */
  private readonly alive = new Set<Worker>();
  /** keepPipelineThreadsWarm's count, and the modules a warm worker imports ahead. */
  private warm = 0;
  private preload: string[] = [];

  take(): Worker {
    const reused = this.idle.pop();
    // A worker that died while idle (only a bug could do that) is not handed out.
    if (reused && reused.threadId === -1) return this.take();
    if (reused) {
      reused.ref();
      return reused;
    }
    return this.start();
  }

  private start(): Worker {
    const worker = startWorker();
    this.alive.add(worker);
    worker.once('exit', () => {
      this.alive.delete(worker);
      const at = this.idle.indexOf(worker);
      if (at >= 0) this.idle.splice(at, 1);
      this.fill();
    });
    // Each run listens for errors too; this keeps an idle worker's error from being unhandled.
    worker.on('error', () => undefined);
    if (this.preload.length) worker.postMessage({ t: 'preload', modules: this.preload } satisfies ToPipelineThread);
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

  /**
   * A worker whose run this thread gave up on (an abort, a sink's failure) is told to abort it
   * and goes back to the pool once it says the run ended: a terminated worker would take its
   * start (0.3-0.5 s) and a copy session's connection with it. One that does not answer within
   * RETIRE_MS, or dies, is terminated.
   */
  retire(worker: Worker): void {
    let done = false;
    const finish = (reusable: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      worker.off('message', onMessage);
      worker.off('exit', onExit);
      this.give(worker, reusable);
    };
    const onMessage = (msg: FromPipelineThread) => {
      if (msg.t === 'fail' || msg.t === 'done' || msg.t === 'idle') finish(true);
      // A copy session waiting for its decision rolls back.
      else if (msg.t === 'copied') worker.postMessage({ t: 'settle', decision: null } satisfies ToPipelineThread);
    };
    const onExit = () => finish(false);
    const timer = setTimeout(() => finish(false), RETIRE_MS);
    timer.unref();
    worker.on('message', onMessage);
    worker.once('exit', onExit);
    worker.postMessage({ t: 'abort' } satisfies ToPipelineThread);
  }

  /** Starts idle workers until `warm` are alive (a terminated one is replaced once it has exited). */
  private fill(): void {
    while (this.alive.size < this.warm && this.idle.length < MAX_IDLE) {
      const worker = this.start();
      worker.unref();
      this.idle.push(worker);
    }
  }

  keepWarm(count: number, modules: string[]): void {
    this.warm = Math.min(count, MAX_IDLE);
    this.preload = modules;
    this.fill();
  }

  /** Terminates the idle workers and keeps none warm any more (shutdown, tests). */
  async close(): Promise<void> {
    this.warm = 0;
    const all = this.idle.splice(0);
    await Promise.all(all.map((w) => w.terminate()));
  }
}

const pool = new WorkerPool();

/** Ends the idle pipeline threads and keeps none warm (the service's shutdown). */
export function closePipelineThreads(): Promise<void> {
  return pool.close();
}

/**
 * Keeps `count` pipeline threads (at most MAX_IDLE) started, idle ones ready for the next run,
 * each with `modules` already imported (a copy session's module, say): a thread's start and
 * the import of its bundle cost 0.3-0.5 s (measured on the first 1M-row upload after start, 2
 * cores), which the first run after start, and the first after a run whose thread was
 * terminated, would otherwise wait for. A terminated thread is replaced once it has exited.
 */
export function keepPipelineThreadsWarm(count: number, modules: string[] = []): void {
  pool.keepWarm(count, modules);
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
  return (await runOffThread(input, spec, sinks, opts, thread, null)).result;
}

/** A COPY the pipeline thread writes itself (copy-session.ts), and the API thread's say before it commits. */
export interface ThreadCopySession<D> {
  spec: CopySessionSpec;
  /** Once PostgreSQL has every row: what `settle` gets (null rolls back). */
  decide(copied: CopiedRows): Promise<D | null>;
}

/**
 * runCsvPipelineOffThread whose COPY the thread writes itself, in `session` (see copy-session.ts):
 * resolves with the pipeline's result and what the session's settle answered.
 */
export async function runCsvPipelineWithCopySession<D>(
  input: Readable,
  spec: CompiledSpec,
  sinks: Omit<CsvPipelineSinks, 'copy' | 'copyReleasesChunks'>,
  opts: CsvPipelineOptions,
  thread: { nice?: number },
  session: ThreadCopySession<D>,
): Promise<{ result: CsvPipelineResult; settled: unknown }> {
  return runOffThread(input, spec, sinks, opts, thread, session);
}

async function runOffThread(
  input: Readable,
  spec: CompiledSpec,
  sinks: Omit<CsvPipelineSinks, 'copy'> & { copy?: Writable },
  opts: CsvPipelineOptions,
  thread: { nice?: number },
  session: ThreadCopySession<unknown> | null,
): Promise<{ result: CsvPipelineResult; settled: unknown }> {
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
    session: session?.spec ?? null,
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

  const sinkOf = (name: ThreadSink): Writable => {
    const out = name === 'copy' ? sinks.copy : name === 'validCsv' ? sinks.validCsv : sinks.errorCsv;
    if (!out) throw new Error(`The CSV pipeline thread wrote to a ${name} sink it was not given`);
    return out;
  };

  /** The valid rows may be the input only where the input is a verified stored file. */
  const checkMirror = (msg: { result: CsvPipelineResult; verified: boolean }) => {
    if (msg.result.validCsvIsInput && !(validMirror && msg.verified)) throw new Error('The CSV pipeline thread reported the valid rows as an unverified input');
  };

  const drain = async (): Promise<{ result: CsvPipelineResult; settled: unknown }> => {
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
        case 'copied': {
          if (!session) throw new Error('The CSV pipeline thread reported a copy session it was not given');
          checkMirror(msg);
          post({ t: 'settle', decision: await session.decide({ result: msg.result, verified: msg.verified }) });
          break;
        }
        case 'done':
          if (msg.verified && (input instanceof StoredFileStream || input instanceof GrowingFileStream)) input.markVerified();
          checkMirror(msg);
          return { result: msg.result, settled: msg.settled };
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
    // The file the thread read is closed once the thread is done with it (or is being told to stop).
    if (!reusable || file || growing) input.destroy();
    // A run the thread still has (this side gave up on it) is ended there, and the thread kept.
    if (!reusable && !workerFailed && worker.threadId !== -1) pool.retire(worker);
    else pool.give(worker, reusable);
  }
}

/** revivePipelineError, and a StorageError (the thread's read of a stored file) as that class. */
function reviveError(data: PipelineErrorData): Error {
  if (data.kind === 'Error' && data.name === 'StorageError' && data.code !== undefined) {
    return new StorageError(data.code as StorageErrorCode, data.message, data.key);
  }
  return revivePipelineError(data);
}
