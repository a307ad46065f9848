import { once } from 'node:events';
import { readSync } from 'node:fs';
import { Writable } from 'node:stream';

/** Bytes per read when the matched part of the file is written out, and the compare buffer's first size. */
const MIRROR_CHUNK_BYTES = 1024 * 1024;

/**
 * The valid-rows sink of a pipeline that reads a stored file itself (pipeline-worker.ts): it
 * compares what it is given with the file's own bytes at the same place, and as long as they are
 * the same from the file's first byte on, it writes nothing. For a clean file (UTF-8 without a
 * BOM, LF, comma-separated, every row valid) the valid-rows CSV is the upload byte for byte; in
 * that case `isInput` is true after `end()`, nothing reached `target`, and the caller stores a
 * copy of the stored file instead (ObjectStorage.copy), which costs a kernel copy instead of
 * posting, hashing and writing every byte again (about 1.6 s of CPU per 1M rows, measured).
 *
 * The first chunk that differs (an invalid row left out, a quoted cell written plainly, a CRLF
 * file), and the end of the input before the end of the file (an invalid last row), end the
 * mirror: the matched part is read from the file and written to `target` first, then the chunk
 * and everything after it as given. So `target` always receives exactly what it would have
 * received without the mirror; only whether and when changes.
 *
 * The file's bytes are read with positioned reads on `fd` (shared with the pipeline's own read;
 * the opener closes it). Synchronous reads: this runs on the pipeline's thread, and the bytes were
 * just read by the pipeline, so they come from the page cache.
 */
export class InputMirror extends Writable {
  /** Bytes of the file, from its start, that the output so far is equal to. */
  private matched = 0;
  private mirroring = true;
  private identical = false;
  private scratch = Buffer.allocUnsafeSlow(MIRROR_CHUNK_BYTES);

  /**
   * @param fd the stored file, open for reading
   * @param fileSize the file's size (as recorded and verified by the pipeline's read)
   * @param target where the valid rows go when they are not the file
   * @param release called with a chunk the mirror matched and will not use again
   */
  constructor(
    private readonly fd: number,
    private fileSize: number,
    private readonly target: Writable,
    private readonly release: (chunk: Buffer) => void = () => undefined,
  ) {
    super({ highWaterMark: 64 * 1024, decodeStrings: true });
  }

  /** The file's final size, for a mirror of a file that was still growing (made with an infinite size); before `end()`. */
  knowSize(size: number): void {
    this.fileSize = size;
  }

  /** After `end()` and 'finish': the output was the whole file, and nothing was written to the target. */
  get isInput(): boolean {
    return this.identical;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (!this.mirroring) {
      this.forward(chunk, callback);
      return;
    }
    try {
      if (this.matches(chunk)) {
        this.matched += chunk.length;
        this.release(chunk);
        callback();
        return;
      }
    } catch (err) {
      callback(err as Error);
      return;
    }
    this.mirroring = false;
    this.writeMatched().then(
      () => this.forward(chunk, callback),
      (err: unknown) => callback(err as Error),
    );
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (!this.mirroring) {
      callback();
      return;
    }
    this.mirroring = false;
    if (this.matched === this.fileSize) {
      this.identical = true;
      callback();
      return;
    }
    this.writeMatched().then(
      () => callback(),
      (err: unknown) => callback(err as Error),
    );
  }

  /** Whether `chunk` is the file's bytes at `matched`. */
  private matches(chunk: Buffer): boolean {
    if (this.matched + chunk.length > this.fileSize) return false;
    if (this.scratch.length < chunk.length) this.scratch = Buffer.allocUnsafeSlow(chunk.length);
    const got = this.readAt(this.scratch, chunk.length, this.matched);
    return got === chunk.length && this.scratch.subarray(0, got).equals(chunk);
  }

  /** Reads up to `length` bytes at `position` into `buf`; fewer only at the end of the file. */
  private readAt(buf: Buffer, length: number, position: number): number {
    let got = 0;
    while (got < length) {
      const n = readSync(this.fd, buf, got, length - got, position + got);
      if (n === 0) break;
      got += n;
    }
    return got;
  }

  /** The file's first `matched` bytes into the target, in order, with the target's backpressure. */
  private async writeMatched(): Promise<void> {
    for (let at = 0; at < this.matched; ) {
      // Fresh memory: the target may keep what it is given.
      const buf = Buffer.allocUnsafeSlow(Math.min(MIRROR_CHUNK_BYTES, this.matched - at));
      const got = this.readAt(buf, buf.length, at);
      if (got !== buf.length) throw new Error(`The stored file ended at byte ${at + got} while ${this.matched} bytes of it were being written out`);
      at += got;
      // once() rejects on the target's 'error': a failed target never leaves this waiting.
      if (!this.target.write(buf)) await once(this.target, 'drain');
    }
    this.scratch = Buffer.alloc(0);
  }

  private forward(chunk: Buffer, callback: (error?: Error | null) => void): void {
    if (this.target.write(chunk)) callback();
    else
      once(this.target, 'drain').then(
        () => callback(),
        (err: unknown) => callback(err as Error),
      );
  }
}
