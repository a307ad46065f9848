import fs from 'node:fs';
import os from 'node:os';
import { Readable, Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { parentPort } from 'node:worker_threads';
import { runCsvPipeline } from './csv-pipeline';
import { pipelineErrorData } from './csv-errors';
import { recycleBuffer } from './fast-path';
import { drained } from './pipeline-run';
import { InputMirror } from './input-mirror';
import { readStoredFile } from '../storage/verify';
import { Growth, readGrowingFile } from '../storage/growing-file';
import type { CopySession, OpenCopySession } from './copy-session';
import type { InvalidRow } from './pipeline-types';
import type { HeaderMapping } from './row-validator';
import type { FromPipelineThread, ToPipelineThread, ThreadSink } from './pipeline-thread';

/**
 * The worker-thread side of runCsvPipelineOffThread (pipeline-thread.ts): runs one pipeline at a
 * time on the chunks the API thread posts, and posts back what the sinks receive. Every message
 * it posts counts its bytes against a credit (OUTSTANDING_LIMIT) that the API thread gives back
 * once it has written them, so a slow COPY or storage sink holds the parse here, not in memory.
 */

const port = parentPort;
if (!port) throw new Error('pipeline-worker.ts runs as a worker thread only');

/** Bytes posted and not yet written by the API thread before the sinks here stop accepting. */
const OUTSTANDING_LIMIT = 8 * 1024 * 1024;
/**
 * COPY bytes a copy session's sink lets wait for the socket before the pipeline waits for it to
 * drain. Why 1 MiB, not more: a chunk that waits long enough lives through young-generation
 * collections and is promoted, and its memory (outside V8's heap) then waits for a full
 * mark-compact; V8 starts one whenever that external memory has grown enough. With 8 MiB waiting,
 * a 1M-row load ran 11-14 mark-compacts on this thread (5 ms of its time and some 20 ms of V8's
 * helper threads each), with 1 MiB 4-6; 0.5 MiB gave no fewer (bench/ingest.bench.ts under
 * --trace-gc, alternated).
 */
const SESSION_BUFFER_BYTES = 1024 * 1024;
/** Invalid rows are posted in batches of at most this many (or this many bytes of raw text). */
const INVALID_BATCH_ROWS = 500;
const INVALID_BATCH_BYTES = 512 * 1024;

interface Run {
  chunks: Array<Buffer | string | null>;
  wake: (() => void) | null;
  abort: AbortController;
  outstanding: number;
  waiting: Array<() => void>;
  /** A growing input's progress (start.growing), and the mirror that needs its final size. */
  growth: Growth | null;
  mirror: InputMirror | null;
  /** A copy session's run: resolves with the API thread's 'settle' decision. */
  decided: ((decision: unknown) => void) | null;
}

let run: Run | null = null;

function post(msg: FromPipelineThread, transfer?: ArrayBuffer[]): void {
  port!.postMessage(msg, transfer);
}

function credit(r: Run, bytes: number): void {
  r.outstanding -= bytes;
  while (r.outstanding <= OUTSTANDING_LIMIT && r.waiting.length > 0) r.waiting.shift()!();
}

/** Resolves once the posted bytes are under the limit again. */
function room(r: Run): Promise<void> | undefined {
  if (r.outstanding <= OUTSTANDING_LIMIT) return undefined;
  return new Promise((resolve) => r.waiting.push(resolve));
}

/** A sink that posts what it is given; its write callback waits for credit. */
function sink(r: Run, name: ThreadSink): Writable {
  return new Writable({
    highWaterMark: 64 * 1024,
    decodeStrings: false,
    write(chunk: Buffer | string, _enc, cb) {
      const bytes = chunk.length;
      r.outstanding += bytes;
      if (typeof chunk === 'string') post({ t: 'out', sink: name, data: chunk, length: chunk.length, bytes });
      else if (ownsMemory(chunk)) {
        // Handed over by take(): moved, not copied.
        post({ t: 'out', sink: name, data: chunk.buffer as ArrayBuffer, length: chunk.length, bytes }, [chunk.buffer as ArrayBuffer]);
      } else {
        const copy = new Uint8Array(chunk.length);
        copy.set(chunk);
        post({ t: 'out', sink: name, data: copy.buffer, length: copy.length, bytes }, [copy.buffer]);
      }
      const wait = room(r);
      if (wait) wait.then(() => cb());
      else cb();
    },
  });
}

/** `chunk` starts a ByteSink's own allocation (never Buffer's shared pool): its memory may move or be reused. */
function ownsMemory(chunk: Buffer): boolean {
  return chunk.byteOffset === 0 && chunk.buffer.byteLength >= 64 * 1024;
}

/** A valid-rows chunk the mirror matched: its memory is filled again. */
function releaseMatched(chunk: Buffer): void {
  if (ownsMemory(chunk)) recycleBuffer(Buffer.from(chunk.buffer));
}

/**
 * The pipeline's COPY sink in a copy session: writes go to the session's COPY, and a chunk's
 * memory is filled again once the socket has it (as the API thread's 'recycle' does otherwise).
 * Ending it ends the COPY and waits until PostgreSQL has taken every row.
 */
function sessionSink(copy: Writable): Writable {
  const out = new Writable({
    highWaterMark: 0,
    write(chunk: Buffer, _enc, cb) {
      const release = ownsMemory(chunk) ? (err?: Error | null) => err || recycleBuffer(Buffer.from(chunk.buffer)) : undefined;
      // Up to SESSION_BUFFER_BYTES wait in the COPY's buffer: the rows keep coming while the
      // socket is busy (or this thread is not scheduled), as the API thread's credit allowed.
      copy.write(chunk, release);
      if (copy.writableLength < SESSION_BUFFER_BYTES) cb();
      else drained(copy, undefined).then(() => cb(), cb);
    },
    final(cb) {
      copy.end();
      finished(copy).then(() => cb(), cb);
    },
    destroy(err, cb) {
      if (err) copy.destroy(err);
      cb(err);
    },
  });
  // The COPY's failure (the connection lost, PostgreSQL refusing a row) is the sink's, whenever it comes.
  copy.on('error', (err) => out.destroy(err));
  return out;
}

async function* input(r: Run): AsyncGenerator<Buffer | string> {
  for (;;) {
    if (r.chunks.length === 0) await new Promise<void>((resolve) => (r.wake = resolve));
    r.wake = null;
    const chunk = r.chunks.shift();
    if (chunk === undefined) continue;
    if (chunk === null) return;
    post({ t: 'pull' });
    yield chunk;
  }
}

/** The nice value this thread was given (null: never changed; it runs at the process's). */
let niceSet: number | null = null;
let inheritedNice: number | null = null;

/**
 * Gives this thread (only: the API's thread keeps its priority) nice value `nice`, at most
 * once per value. Linux only: there a thread's id is the last part of /proc/thread-self, and
 * setpriority on it changes that thread alone. `0` (or a value at or below the process's own)
 * leaves the thread as it is; anywhere else, or if the system refuses, nothing changes.
 */
function applyThreadNice(nice: number): void {
  if (process.platform !== 'linux' || nice === niceSet) return;
  try {
    const tid = Number(fs.readlinkSync('/proc/thread-self').split('/').pop());
    if (!Number.isInteger(tid) || tid <= 0) return;
    inheritedNice ??= os.getPriority(tid);
    const target = Math.max(nice, inheritedNice);
    if (niceSet === null && target === inheritedNice) return;
    os.setPriority(tid, target);
    niceSet = nice;
  } catch {
    // Not permitted (lowering a nice value needs privileges) or no /proc: keep the priority.
  }
}

async function start(msg: Extract<ToPipelineThread, { t: 'start' }>): Promise<void> {
  applyThreadNice(msg.nice);
  const growing = msg.growing;
  const r: Run = {
    chunks: [],
    wake: null,
    abort: new AbortController(),
    outstanding: 0,
    waiting: [],
    growth: growing ? new Growth() : null,
    mirror: null,
    decided: null,
  };
  run = r;
  let verified = false;
  const file = msg.file;
  // A stored (or growing) file is read here, at most two chunks ahead of the parse; its check ends the input.
  const source = file
    ? Readable.from(
        (async function* () {
          yield* readStoredFile(file);
          verified = true;
        })(),
        { objectMode: true, highWaterMark: 2 },
      )
    : growing
      ? Readable.from(
          (async function* () {
            yield* readGrowingFile(growing, r.growth!);
            verified = true;
          })(),
          { objectMode: true, highWaterMark: 2 },
        )
      : Readable.from(input(r), { objectMode: true });
  let batch: InvalidRow[] = [];
  let batchBytes = 0;
  let mapping: HeaderMapping | null = null;
  const flushInvalid = (): Promise<void> | undefined => {
    if (batch.length === 0) return undefined;
    r.outstanding += batchBytes;
    post({ t: 'invalid', rows: batch, mapping: mapping!, bytes: batchBytes });
    batch = [];
    batchBytes = 0;
    return room(r);
  };
  let session: CopySession | null = null;
  const errorOut = msg.sinks.errorCsv ? sink(r, 'errorCsv') : undefined;
  // The valid rows of a clean file are the stored file itself: compared with it, not posted.
  const validOut = msg.sinks.validCsv ? sink(r, 'validCsv') : undefined;
  // A growing file's size is known at its end ('growth' stored, which comes before the input ends).
  const mirrored = file ? { fd: file.fd, size: file.expected.size! } : growing ? { fd: growing.fd, size: Number.POSITIVE_INFINITY } : null;
  const mirror = validOut && mirrored && msg.sinks.validMirror ? new InputMirror(mirrored.fd, mirrored.size, validOut, releaseMatched) : null;
  r.mirror = mirror;
  try {
    if (msg.session) {
      // The COPY goes from here to PostgreSQL, on this thread's own connection (copy-session.ts).
      const open = ((await import(msg.session.module)) as { openCopySession: OpenCopySession }).openCopySession;
      session = await open(msg.session.args);
    }
    const copyOut = session ? sessionSink(session.copy) : sink(r, 'copy');
    const result = await runCsvPipeline(
      source,
      msg.spec,
      {
        copy: copyOut,
        validCsv: mirror ?? validOut,
        errorCsv: errorOut,
        onInvalid: msg.sinks.onInvalid
          ? (row, m) => {
              mapping = m;
              batch.push(row);
              batchBytes += 64 + row.raw.length * 2;
              if (batch.length >= INVALID_BATCH_ROWS || batchBytes >= INVALID_BATCH_BYTES) return flushInvalid();
              return undefined;
            }
          : undefined,
      },
      {
        ...msg.opts,
        ...(session?.copyFileId !== undefined ? { copyFileId: session.copyFileId } : {}),
        signal: r.abort.signal,
        onProgress: msg.progress ? (counts) => post({ t: 'progress', counts }) : undefined,
      },
    );
    await flushInvalid();
    if (mirror) {
      // After the whole file was read and matched its record: the mirror's verdict, or the bytes it held back.
      mirror.end();
      await finished(mirror);
      if (mirror.isInput && verified) result.validCsvIsInput = true;
      else if (mirror.isInput) throw new Error('The stored file was not verified to its end');
    }
    // A write a sink accepted may still wait for credit behind an earlier one: every chunk is
    // posted before the result, which ends the API thread's reading.
    await Promise.all(
      [copyOut, validOut, errorOut].map(async (out) => {
        if (!out) return;
        out.end();
        await finished(out);
      }),
    );
    if (session) {
      // Every row is in PostgreSQL: the API thread decides whether the transaction commits.
      const decision = new Promise<unknown>((resolve) => (r.decided = resolve));
      post({ t: 'copied', result, verified });
      const settled = await session.settle(await decision);
      session = null;
      post({ t: 'done', result, verified, settled });
    } else post({ t: 'done', result, verified });
  } catch (err) {
    if (session) {
      // Rolled back before the failure is told: the thread and its connection are idle again after it.
      session.copy.destroy();
      await session.settle(null).catch(() => undefined);
    }
    post({ t: 'fail', error: pipelineErrorData(err) });
  } finally {
    run = null;
  }
}

port.on('message', (msg: ToPipelineThread) => {
  switch (msg.t) {
    case 'start':
      void start(msg);
      return;
    case 'chunk':
      if (!run) return;
      run.chunks.push(typeof msg.data === 'string' ? msg.data : Buffer.from(msg.data));
      run.wake?.();
      return;
    case 'end':
      if (!run) return;
      run.chunks.push(null);
      run.wake?.();
      return;
    case 'ack':
      if (run) credit(run, msg.bytes);
      return;
    case 'growth':
      if (!run?.growth) return;
      if (msg.m.t === 'stored') run.mirror?.knowSize(msg.m.size);
      run.growth.update(msg.m);
      return;
    case 'recycle':
      recycleBuffer(Buffer.from(msg.data));
      return;
    case 'settle':
      run?.decided?.(msg.decision);
      return;
    case 'preload':
      // A failed import is the run's to report (it imports the same module again).
      for (const m of msg.modules) import(m).catch(() => undefined);
      return;
    case 'abort': {
      // The API thread gave up on the run (pipeline-thread.ts retire): it ends here, its session
      // rolls back, and its 'fail' (or, with no run, 'idle') says the thread is free again.
      const r = run;
      if (!r) {
        post({ t: 'idle' });
        return;
      }
      r.abort.abort();
      // A read waiting for a paused upload's next bytes ends now: the run (and its COPY's
      // transaction) ends at the abort, not when the client sends more.
      r.growth?.abandon();
      r.decided?.(null);
      // Nothing waits for credit that will not come.
      r.outstanding = 0;
      credit(r, 0);
      r.chunks.push(null);
      r.wake?.();
      return;
    }
  }
});
