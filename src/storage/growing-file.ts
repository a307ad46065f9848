import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { StorageError, type GrowingFile, type GrowingFileEvent } from './storage';
import { readAt, STORED_FILE_CHUNK_BYTES } from './verify';

/**
 * Reading a local object while it is still being written (StorageWriter.growing): the reader is
 * told how far the writer got, reads up to there with positioned reads, waits for more, and at the
 * end compares the SHA-256 of what it read with the one the writer computed of what it received.
 * So the bytes a follower used are the stored bytes, checked, exactly as a read of the finished
 * object would check them against its record.
 */

/** How far a followed file got, as it crosses to a reader on another thread. */
export type GrowthMessage = { t: 'grown'; written: number } | { t: 'stored'; size: number; sha256: string } | { t: 'lost' };

/** A growing file as a reader on another thread takes it: its descriptor and key. */
export interface GrowingFileSource {
  fd: number;
  key: string;
}

/** The follower's view of the writer's progress, fed by GrowthMessages. */
export class Growth {
  written = 0;
  stored: { size: number; sha256: string } | null = null;
  lost = false;
  /** The reader gave up (its run was aborted): a read waiting for more bytes ends now, not at the writer's next write. */
  abandoned = false;
  private wake: (() => void) | null = null;

  abandon(): void {
    this.abandoned = true;
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  update(m: GrowthMessage): void {
    if (m.t === 'grown') this.written = Math.max(this.written, m.written);
    else if (m.t === 'stored') this.stored = { size: m.size, sha256: m.sha256 };
    else this.lost = true;
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  /** Resolves at the next update. */
  changed(): Promise<void> {
    return new Promise((resolve) => (this.wake = resolve));
  }
}

/**
 * The bytes of a growing file from its start, in chunks of fresh memory, as the writer reports
 * them written; ends once the writer stored the object and every byte was read, after checking
 * the read bytes' size and SHA-256 against the writer's (SIZE_MISMATCH, CHECKSUM_MISMATCH). Fails
 * with IO_ERROR when the write was lost (the upload failed or was aborted).
 */
export async function* readGrowingFile(source: GrowingFileSource, growth: Growth, chunkBytes = STORED_FILE_CHUNK_BYTES): AsyncGenerator<Buffer> {
  const hash = createHash('sha256');
  let position = 0;
  for (;;) {
    if (growth.lost) throw new StorageError('IO_ERROR', `The write of ${JSON.stringify(source.key)} ended without storing it`, source.key);
    if (growth.abandoned) throw new Error(`The read of ${JSON.stringify(source.key)} was abandoned`);
    const limit = growth.stored ? growth.stored.size : growth.written;
    if (position >= limit) {
      if (growth.stored) break;
      await growth.changed();
      continue;
    }
    const want = Math.min(chunkBytes, limit - position);
    const buf = Buffer.allocUnsafeSlow(want);
    const n = await readAt(source, buf, position);
    if (n === 0) {
      throw new StorageError('SIZE_MISMATCH', `${JSON.stringify(source.key)} ended at byte ${position}; its writer had written ${limit}`, source.key);
    }
    position += n;
    const chunk = n === want ? buf : buf.subarray(0, n);
    hash.update(chunk);
    yield chunk;
  }
  const stored = growth.stored!;
  if (position !== stored.size) {
    throw new StorageError('SIZE_MISMATCH', `${JSON.stringify(source.key)}: ${position} bytes read, ${stored.size} stored`, source.key);
  }
  if (hash.digest('hex') !== stored.sha256.toLowerCase()) {
    throw new StorageError('CHECKSUM_MISMATCH', `${JSON.stringify(source.key)}: the bytes read back differ from the bytes stored`, source.key);
  }
}

/**
 * A growing file as the input of a CSV pipeline that runs on a thread (ingest/pipeline-thread.ts):
 * the thread claims its descriptor and reads it itself, and `follow` forwards the writer's
 * progress to it. Nothing is read on this side: a `_read` fails the stream. Destroying the stream
 * closes the file.
 */
export class GrowingFileStream extends Readable {
  private claimed = false;
  private ok = false;

  constructor(
    private readonly handle: FileHandle,
    readonly key: string,
    private readonly file: GrowingFile,
  ) {
    super();
  }

  get verified(): boolean {
    return this.ok;
  }

  /** The file for a reader elsewhere, once; null after that. */
  claim(): GrowingFileSource | null {
    if (this.claimed || this.destroyed) return null;
    this.claimed = true;
    return { fd: this.handle.fd, key: this.key };
  }

  /** Sends the writer's progress so far, then every change, to `send`; returns the unsubscribe. */
  follow(send: (m: GrowthMessage) => void): () => void {
    const forward = (e: GrowingFileEvent) => {
      if (e.t === 'grown') send({ t: 'grown', written: e.written });
      else if (e.t === 'stored') send({ t: 'stored', size: e.result.size, sha256: e.result.sha256 });
      else send({ t: 'lost' });
    };
    const off = this.file.watch(forward);
    send({ t: 'grown', written: this.file.written });
    const outcome = this.file.outcome;
    if (outcome) send({ t: 'stored', size: outcome.size, sha256: outcome.sha256 });
    else if (outcome === null) send({ t: 'lost' });
    return off;
  }

  /** The claimant read every byte and they matched the writer's. */
  markVerified(): void {
    if (this.claimed) this.ok = true;
  }

  override _read(): void {
    this.destroy(new Error(`${JSON.stringify(this.key)} is still being written; only a pipeline thread follows it`));
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.handle.close().then(
      () => callback(err),
      () => callback(err),
    );
  }
}
