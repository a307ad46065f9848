import type { Readable } from 'node:stream';
import { Writable } from 'node:stream';

/** Drains an unwanted upload so the multipart request completes. */
export async function discard(stream: Readable): Promise<void> {
  await new Promise<void>((resolve) => {
    stream.on('error', () => resolve());
    stream.pipe(new Writable({ write: (_c, _e, cb) => cb() })).on('finish', resolve);
  });
}

/** One batch of a PullStream: the items read, and whether the stream ends after them. */
export interface PullBatch<T> {
  items: T[];
  done: boolean;
}

/**
 * A pull-driven source for subscriptions whose truth lives in a table. `read()` runs only when the
 * consumer asks for an item and the previous batch is used up; `wake()` (a notification) makes a
 * waiting consumer read again. Nothing is read or queued for a consumer that stops asking, so a
 * subscription holds at most one batch in memory whatever the speed of its client.
 * `return()` (client unsubscribed, socket closed) runs `onClose` exactly once.
 */
export class PullStream<T> implements AsyncIterableIterator<T> {
  private batch: T[];
  private finished: boolean;
  /** Something may have changed since the last read. */
  private dirty = true;
  private closed = false;
  private failure?: { error: unknown };
  private waiter?: () => void;
  private listener?: () => void;
  private readonly onClose: () => void;
  private readonly readSync?: () => PullBatch<T> | null;

  /**
   * `readSync`, when given, answers a read without waiting when it can (null: only `read()` can),
   * so a consumer that polls gets what is at hand synchronously (see poll()).
   */
  constructor(
    private readonly read: () => Promise<PullBatch<T>>,
    opts: { initial?: T[]; done?: boolean; onClose?: () => void; readSync?: () => PullBatch<T> | null } = {},
  ) {
    this.batch = [...(opts.initial ?? [])];
    this.finished = opts.done ?? false;
    this.onClose = opts.onClose ?? (() => undefined);
    this.readSync = opts.readSync;
  }

  /**
   * A consumer that polls instead of awaiting next(): `listener` runs (synchronously) whenever
   * the stream may have something new: a wake, a failure, the end.
   */
  listen(listener: () => void): void {
    this.listener = listener;
  }

  /**
   * The next item without waiting: an item or the end when one is at hand (a held batch, or
   * `readSync`); 'wait' when there is nothing until the next wake; 'read' when only next() can
   * tell (it reads). Throws the stream's failure, as next() does.
   */
  poll(): IteratorResult<T> | 'wait' | 'read' {
    for (;;) {
      if (this.closed) return { value: undefined, done: true };
      if (this.batch.length) return { value: this.batch.shift()!, done: false };
      if (this.failure) {
        this.close();
        throw this.failure.error;
      }
      if (this.finished) {
        this.close();
        return { value: undefined, done: true };
      }
      if (!this.dirty) return 'wait';
      if (!this.readSync) return 'read';
      let batch: PullBatch<T> | null;
      try {
        batch = this.readSync();
      } catch (err) {
        this.close();
        throw err;
      }
      if (batch === null) return 'read';
      this.dirty = false;
      this.accept(batch);
    }
  }

  /** Something changed: the next pull (or the one waiting) reads again. */
  wake(): void {
    this.dirty = true;
    this.release();
  }

  /** Ends the stream with `error`, thrown to the consumer after the batch it holds. */
  fail(error: unknown): void {
    this.failure ??= { error };
    this.release();
  }

  get isDone(): boolean {
    return this.closed;
  }

  async next(): Promise<IteratorResult<T>> {
    while (!this.closed) {
      if (this.batch.length) return { value: this.batch.shift()!, done: false };
      if (this.failure) {
        this.close();
        throw this.failure.error;
      }
      if (this.finished) break;
      if (!this.dirty) {
        await new Promise<void>((resolve) => (this.waiter = resolve));
        continue;
      }
      this.dirty = false;
      let batch: PullBatch<T>;
      try {
        batch = await this.read();
      } catch (err) {
        this.close();
        throw err;
      }
      this.accept(batch);
    }
    this.close();
    return { value: undefined, done: true };
  }

  /** Reads the next batch when poll() said 'read'; poll() then has it. Throws (and closes) as next() would. */
  async load(): Promise<void> {
    if (this.closed || this.batch.length || this.failure || this.finished || !this.dirty) return;
    this.dirty = false;
    let batch: PullBatch<T>;
    try {
      batch = await this.read();
    } catch (err) {
      this.close();
      throw err;
    }
    if (!this.closed) this.accept(batch);
  }

  private accept(batch: PullBatch<T>): void {
    this.batch = batch.items;
    this.finished = batch.done;
    // A full batch may have more behind it: read again once it is consumed.
    if (batch.items.length) this.dirty = true;
  }

  return(): Promise<IteratorResult<T>> {
    this.batch = [];
    this.close();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }

  private release(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
    this.listener?.();
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    this.batch = [];
    this.release();
    this.onClose();
  }
}
