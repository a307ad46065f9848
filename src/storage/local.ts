import { createHash, randomUUID, type Hash } from 'node:crypto';
import { mkdirSync, realpathSync, constants as fsConstants, type Stats } from 'node:fs';
import { copyFile, link, lstat, mkdir, open, readdir, readFile, rename, rmdir, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Writable, type Readable } from 'node:stream';
import { MiB } from '../shared/units';
import { freeSpaceReserve, type FreeSpace } from './free-space';
import {
  assertValidKey,
  assertValidPrefix,
  checkComplete,
  checkGrowth,
  isValidKey,
  putThroughWriter,
  fileSystemStorageError as asStorageError,
  StorageError,
  type HeadResult,
  type LeftoverSweeping,
  type ListItem,
  type ObjectStorage,
  type PutOptions,
  type GrowingFile,
  type GrowingFileEvent,
  type PutResult,
  type StorageWriter,
} from './storage';

/** Read chunk size of `get` streams. */
const readChunkBytes = 256 * 1024;

export interface LocalStorageOptions {
  /** Folder that holds every object; created when missing. Keys map to paths below it. */
  root: string;
  /**
   * Bytes a write must leave free on the root's file system and on those of `alsoWatch`
   * (SLUICE_STORAGE_MIN_FREE_BYTES; free-space.ts): a write that would leave less is refused
   * with STORAGE_FULL. 0 or unset: none.
   */
  minFreeBytes?: number;
  /** Other folders whose file systems keep the reserve (the embedded PostgreSQL's data; a missing one: its nearest existing parent's). */
  alsoWatch?: string[];
}

export interface LocalStorage extends ObjectStorage, LeftoverSweeping {
  /** Absolute, symlink-free path of the root folder. */
  readonly root: string;
  copy: NonNullable<ObjectStorage['copy']>;
  /** Aborts writers still open (their temp files are removed); later calls fail with IO_ERROR. */
  dispose(): Promise<void>;
}

/**
 * Bytes a writer buffers before applying backpressure. While one write is with the disk, up to this
 * much more arrives and goes out in the next `writev` (no copy), so a 64 KiB network chunk costs
 * no system call and no thread-pool round trip of its own, and the sender is not paused per chunk.
 */
const writerBufferBytes = 1 * MiB;

/**
 * Local-disk backend. Layout: key `a/b/c.csv` is the file `<root>/a/b/c.csv`. Files whose names
 * start with `.` are the backend's own and are never valid keys (see the key allowlist):
 * `.tmp-<uuid>` are writes in progress, `.<name>.meta.json` records the SHA-256 and content type
 * of `<name>` for `head`.
 *
 * Known differences from S3: a key cannot also be a "folder" of other keys (`a/b` and `a/b/c`
 * cannot coexist: IO_ERROR), and empty folders stay behind after `delete` (until
 * `sweepLeftovers`, with the temp files of writes a crash interrupted).
 */
export function createLocalStorage(options: LocalStorageOptions): LocalStorage {
  // Sync once at startup: resolving symlinks in the root lets the containment check below compare
  // real paths.
  mkdirSync(options.root, { recursive: true });
  const root = realpathSync(options.root);
  const reserve = freeSpaceReserve([root, ...(options.alsoWatch ?? [])], options.minFreeBytes ?? 0);
  const writers = new Set<LocalWriter>();
  /** Temp files of copies in progress (a linked one carries its source's old mtime): never swept. */
  const copying = new Set<string>();
  let disposed = false;

  function checkOpen(): void {
    if (disposed) throw new StorageError('IO_ERROR', 'Storage has been disposed');
  }

  /** Validated key -> absolute path, refusing anything that would land outside the root. */
  function pathOf(key: string): string {
    assertValidKey(key);
    const file = path.resolve(root, ...key.split('/'));
    // Defence in depth: validation already excludes `..` and absolute paths.
    if (!file.startsWith(root + path.sep)) {
      throw new StorageError('INVALID_KEY', `Invalid storage key ${JSON.stringify(key)}: resolves outside the root`, key);
    }
    return file;
  }

  function openWriter(key: string, opts: PutOptions = {}): StorageWriter {
    checkOpen();
    const writer = new LocalWriter(key, pathOf(key), opts, reserve);
    writers.add(writer);
    writer.once('close', () => writers.delete(writer));
    return {
      key,
      stream: writer,
      done: () => writer.done(),
      abort: () => writer.abort(),
      growing: writer.growing,
    };
  }

  async function put(key: string, body: Readable, opts: PutOptions = {}, onWriter?: (writer: StorageWriter) => void): Promise<PutResult> {
    const writer = openWriter(key, opts);
    onWriter?.(writer);
    return putThroughWriter(writer, body, (err) => asStorageError(err, key, 'write'));
  }

  async function get(key: string): Promise<Readable> {
    const handle = await openFile(key);
    // Bigger reads than the 64 KiB default: fewer, larger chunks for the CSV pipeline to work on.
    return handle.createReadStream({ highWaterMark: readChunkBytes });
  }

  /** The object's file, open for reading: a regular file under the root, never through a symlink. */
  async function openFile(key: string): Promise<FileHandle> {
    checkOpen();
    const file = pathOf(key);
    let handle: FileHandle;
    try {
      // O_NOFOLLOW: a symlink planted under the root must not expose files outside it.
      handle = await open(file, fsConstants.O_RDONLY | (fsConstants.O_NOFOLLOW ?? 0));
    } catch (err) {
      if (isMissing(err)) throw notFound(key);
      throw asStorageError(err, key, 'read');
    }
    const stats = await handle.stat().catch(async (err: unknown) => {
      await handle.close();
      throw asStorageError(err, key, 'read');
    });
    if (!stats.isFile()) {
      await handle.close();
      throw notFound(key);
    }
    return handle;
  }

  async function head(key: string): Promise<HeadResult | undefined> {
    checkOpen();
    const file = pathOf(key);
    let stats: Stats;
    try {
      stats = await lstat(file);
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw asStorageError(err, key, 'read');
    }
    if (!stats.isFile()) return undefined;
    const meta = await readMeta(file, stats);
    return {
      size: stats.size,
      modifiedAt: stats.mtime,
      ...(meta?.sha256 ? { sha256: meta.sha256 } : {}),
      ...(meta?.contentType ? { contentType: meta.contentType } : {}),
    };
  }

  async function remove(key: string): Promise<void> {
    checkOpen();
    const file = pathOf(key);
    for (const target of [file, metaPathOf(file)]) {
      try {
        await unlink(target);
      } catch (err) {
        // EISDIR/EPERM: the key names a folder of other keys, which holds no object of its own.
        if (!isMissing(err) && !hasCode(err, 'EISDIR', 'EPERM')) throw asStorageError(err, key, 'delete');
      }
    }
  }

  async function* list(prefix: string): AsyncIterable<ListItem> {
    checkOpen();
    assertValidPrefix(prefix);
    const cut = prefix.lastIndexOf('/');
    const dirKey = cut >= 0 ? prefix.slice(0, cut) : '';
    yield* walk(dirKey ? pathOf(dirKey) : root, dirKey, prefix);
  }

  async function dispose(): Promise<void> {
    disposed = true;
    await Promise.all([...writers].map((w) => w.abort()));
  }

  async function sweepLeftovers(olderThan: Date): Promise<{ tempFiles: number; folders: number }> {
    checkOpen();
    const live = new Set([...[...writers].map((w) => w.tempPath), ...copying]);
    const counts = { tempFiles: 0, folders: 0 };
    await sweepDir(root, olderThan.getTime(), live, counts, true);
    return counts;
  }

  async function copy(
    fromKey: string,
    toKey: string,
    expected: { size: number; sha256: string },
    opts: Pick<PutOptions, 'contentType'> = {},
  ): Promise<PutResult> {
    const source = await openFile(fromKey);
    const from = pathOf(fromKey);
    const target = pathOf(toKey);
    const dir = path.dirname(target);
    const temp = path.join(dir, `.tmp-${randomUUID()}`);
    let renamed = false;
    copying.add(temp);
    try {
      const sourceStats = await source.stat();
      if (sourceStats.size !== expected.size) {
        throw new StorageError(
          'SIZE_MISMATCH',
          `${JSON.stringify(fromKey)} has ${sourceStats.size} bytes in storage; ${expected.size} bytes were expected`,
          fromKey,
        );
      }
      // A second name for the same bytes where the file system allows (stored objects are never
      // written in place: every write is a new file renamed over the key), else a copy made by the
      // kernel (a clone where it can); by path, so no byte passes through here.
      const copyInto = async () => {
        await makeDir(dir);
        try {
          await link(from, temp);
        } catch (err) {
          if (!hasCode(err, 'EXDEV', 'EPERM', 'EMLINK', 'ENOTSUP', 'EOPNOTSUPP')) throw err;
          // A copy takes room (a clone may not, but cannot be told apart beforehand).
          await reserve?.check(toKey, sourceStats.size);
          await copyFile(from, temp, fsConstants.COPYFILE_EXCL | fsConstants.COPYFILE_FICLONE);
        }
      };
      await onceMoreIfSwept(copyInto);
      // The path was opened above without following a symlink; it must still be that file.
      const now = await lstat(from);
      if (!now.isFile() || now.ino !== sourceStats.ino || now.dev !== sourceStats.dev) {
        throw new StorageError('IO_ERROR', `${JSON.stringify(fromKey)} changed while it was being copied`, fromKey);
      }
      const handle = await open(temp, 'r+');
      let stats: Stats;
      try {
        await handle.sync();
        stats = await handle.stat();
      } finally {
        await handle.close();
      }
      if (stats.size !== expected.size) {
        throw new StorageError('SIZE_MISMATCH', `The copy of ${JSON.stringify(fromKey)} has ${stats.size} bytes; ${expected.size} bytes were expected`, toKey);
      }
      await rename(temp, target);
      renamed = true;
      await fsyncDir(dir);
      await writeMetaFile(target, {
        sha256: expected.sha256,
        ino: stats.ino,
        size: stats.size,
        mtimeMs: stats.mtimeMs,
        ...(opts.contentType ? { contentType: opts.contentType } : {}),
      });
      return { key: toKey, size: stats.size, sha256: expected.sha256 };
    } catch (err) {
      if (!renamed) await unlink(temp).catch(() => undefined);
      throw asStorageError(err, toKey, 'copy');
    } finally {
      copying.delete(temp);
      await source.close().catch(() => undefined);
    }
  }

  return { root, put, openWriter, get, openFile, copy, head, delete: remove, list, dispose, sweepLeftovers };
}

/**
 * Yields the files below `dir` whose keys start with `prefix`, in ascending key order. Sorting a
 * folder's entries with `/` appended to subfolder names makes the depth-first walk produce the
 * same global byte order S3 lists in (`a-b` < `a/x` < `a0`).
 */
async function* walk(dir: string, dirKey: string, prefix: string): AsyncGenerator<ListItem> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if (isMissing(err)) return;
    throw asStorageError(err, dirKey, 'list');
  }
  const children = entries
    // Skips temp and sidecar files (never valid keys) and symlinks (neither file nor folder here).
    .filter((e) => isValidKey(e.name) && (e.isFile() || e.isDirectory()))
    .map((e) => ({ name: e.name, isDir: e.isDirectory(), order: e.isDirectory() ? `${e.name}/` : e.name }))
    .sort((a, b) => (a.order < b.order ? -1 : a.order > b.order ? 1 : 0));
  for (const child of children) {
    const key = dirKey ? `${dirKey}/${child.name}` : child.name;
    const full = path.join(dir, child.name);
    if (child.isDir) {
      const below = `${key}/`;
      if (below.startsWith(prefix) || prefix.startsWith(below)) yield* walk(full, key, prefix);
      continue;
    }
    if (!key.startsWith(prefix)) continue;
    try {
      const stats = await lstat(full);
      if (stats.isFile()) yield { key, size: stats.size, modifiedAt: stats.mtime };
    } catch (err) {
      // Deleted between readdir and lstat: it is simply no longer listed.
      if (!isMissing(err)) throw asStorageError(err, key, 'list');
    }
  }
}

/**
 * Post-order walk for sweepLeftovers: removes stale `.tmp-*` files, then the folder itself when it
 * is left empty and was stale (or emptied by this walk). Everything is best effort and racy by
 * nature (another process may be writing): a file or folder that changed or vanished meanwhile is
 * simply kept or skipped, and a writer whose folder vanishes recreates it (LocalWriter.openTemp).
 * Returns whether `dir` is gone.
 */
async function sweepDir(dir: string, cutoffMs: number, live: Set<string>, counts: { tempFiles: number; folders: number }, isRoot = false): Promise<boolean> {
  let stats: Stats;
  let entries;
  try {
    stats = await lstat(dir);
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return false;
  }
  const staleDir = stats.mtimeMs < cutoffMs;
  let remaining = entries.length;
  let removedAny = false;
  for (const e of entries) {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) {
      if (await sweepDir(full, cutoffMs, live, counts)) {
        remaining--;
        removedAny = true;
      }
    } else if (e.isFile() && e.name.startsWith('.tmp-') && !live.has(full)) {
      try {
        if ((await lstat(full)).mtimeMs >= cutoffMs) continue;
        await unlink(full);
        counts.tempFiles++;
        remaining--;
        removedAny = true;
      } catch {
        // Renamed into place or removed meanwhile: not ours to sweep.
      }
    }
  }
  if (isRoot || remaining > 0 || !(staleDir || removedAny)) return false;
  try {
    await rmdir(dir);
    counts.folders++;
    return true;
  } catch {
    // ENOTEMPTY: a write started in it meanwhile.
    return false;
  }
}

interface MetaFile {
  sha256: string;
  contentType?: string;
  /** Identity of the data file the record describes; a mismatch means the record is stale. */
  ino: number;
  size: number;
  mtimeMs: number;
}

function metaPathOf(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.meta.json`);
}

/**
 * The sidecar is advisory: it is written after the data is committed and trusted only while it
 * names the current file's inode, size and mtime. Two concurrent puts of one key, or a crash
 * between the data rename and the sidecar rename, therefore yield "no sha256", never a wrong one.
 */
async function readMeta(file: string, stats: Stats): Promise<MetaFile | undefined> {
  try {
    const meta = JSON.parse(await readFile(metaPathOf(file), 'utf8')) as Partial<MetaFile>;
    const current = meta.ino === stats.ino && meta.size === stats.size && meta.mtimeMs === stats.mtimeMs;
    return current && typeof meta.sha256 === 'string' ? (meta as MetaFile) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * One object being written: bytes go to `.tmp-<uuid>` next to the target, counted and hashed as
 * they pass; `_final` checks the expectations, fsyncs, renames onto the target and fsyncs the
 * folder, so the object appears whole or not at all. Any failure before that removes the temp file.
 */
class LocalWriter extends Writable {
  private readonly dir: string;
  readonly tempPath: string;
  private readonly hash: Hash = createHash('sha256');
  private handle: FileHandle | undefined;
  private size = 0;
  private committed = false;
  /** The write or commit in flight; `_destroy` waits for it before cleaning up. */
  private pending: Promise<unknown> = Promise.resolve();
  private readonly result: Promise<PutResult>;
  private settle!: { resolve: (r: PutResult) => void; reject: (e: unknown) => void };
  private cleanedUp: Promise<void> | undefined;
  private readonly watchers = new Set<(e: GrowingFileEvent) => void>();
  private ended: PutResult | null | undefined;
  /** The temp file (then the object) as a reader can follow it while it is written. */
  readonly growing: GrowingFile;

  /** The free-space reserve's look-out for this write (null: no reserve). */
  private readonly space: ReturnType<FreeSpace['tracker']> | null;

  constructor(
    readonly key: string,
    private readonly target: string,
    private readonly opts: PutOptions,
    private readonly reserve: FreeSpace | null,
  ) {
    super({ highWaterMark: writerBufferBytes });
    this.space = reserve ? reserve.tracker(key) : null;
    this.dir = path.dirname(target);
    this.tempPath = path.join(this.dir, `.tmp-${randomUUID()}`);
    this.result = new Promise<PutResult>((resolve, reject) => {
      this.settle = { resolve, reject };
    });
    // Callers that never call done() must not see an unhandled rejection; those that do, get it.
    this.result.catch(() => undefined);
    // The error reaches callers through done() and pipeline(); without a listener, an 'error'
    // event on a stream written to directly would crash the process.
    this.on('error', () => undefined);
    const writer = this;
    this.growing = {
      get written() {
        return writer.size;
      },
      get outcome() {
        return writer.ended;
      },
      // The temp file's inode is the object's after the rename: a descriptor opened before stays valid.
      openForReading: async () => {
        try {
          return await open(this.committed ? this.target : this.tempPath, 'r');
        } catch (err) {
          // Renamed between the check and the open.
          if (this.committed && isMissing(err)) return open(this.target, 'r');
          throw err;
        }
      },
      watch: (listener) => {
        this.watchers.add(listener);
        return () => this.watchers.delete(listener);
      },
    };
  }

  private tell(e: GrowingFileEvent): void {
    if (this.ended !== undefined) return;
    if (e.t === 'stored') this.ended = e.result;
    else if (e.t === 'lost') this.ended = null;
    for (const w of [...this.watchers]) {
      try {
        w(e);
      } catch {
        // A watcher's failure is its own; the write goes on.
      }
    }
  }

  done(): Promise<PutResult> {
    if (!this.destroyed && !this.writableEnded) this.end();
    return this.result;
  }

  async abort(): Promise<void> {
    if (!this.destroyed) this.destroy();
    await new Promise<void>((resolve) => (this.closed ? resolve() : this.once('close', () => resolve())));
    await this.cleanedUp;
  }

  override _construct(callback: (error?: Error | null) => void): void {
    this.pending = this.openTemp().then(
      () => callback(),
      (err: unknown) => callback(asStorageError(err, this.key, 'write')),
    );
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.track(this.append([chunk]), callback);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    this.track(this.append(chunks.map((c) => c.chunk)), callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.track(this.commit(), callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.cleanedUp = this.pending
      .catch(() => undefined)
      .then(() => this.discard())
      .then(() => {
        // A no-op when commit already resolved the result (destroy after a successful finish).
        this.settle.reject(error ?? new StorageError('IO_ERROR', `Write of ${JSON.stringify(this.key)} was aborted`, this.key));
        // Never committed, or its record failed after the rename: either way no object for a follower.
        this.tell({ t: 'lost' });
        callback(error);
      });
  }

  private track(work: Promise<void>, callback: (error?: Error | null) => void): void {
    this.pending = work;
    work.then(
      () => callback(),
      (err: unknown) => callback(asStorageError(err, this.key, 'write')),
    );
  }

  private async openTemp(): Promise<void> {
    // A write that declares its size is refused before its first byte when it would not fit.
    if (this.reserve && this.opts.expectedSize !== undefined) await this.reserve.check(this.key, this.opts.expectedSize);
    return onceMoreIfSwept(() => this.createTemp());
  }

  private async createTemp(): Promise<void> {
    await makeDir(this.dir);
    this.handle = await open(this.tempPath, 'wx', 0o644);
  }

  /** Counts, checks and hashes `buffers`, then writes them with as few system calls as possible. */
  private async append(buffers: Buffer[]): Promise<void> {
    let next = this.size;
    for (const b of buffers) {
      next += b.length;
      // Chunk by chunk, in arrival order: the first limit the body crosses is the one reported,
      // however many chunks waited in the buffer (past the declared size before past the cap).
      checkGrowth(this.key, next, this.opts);
    }
    if (this.space) await this.space.wrote(next - this.size);
    for (const b of buffers) this.hash.update(b);
    await writeAll(this.requireHandle(), buffers);
    this.size = next;
    if (this.watchers.size > 0) this.tell({ t: 'grown', written: next });
  }

  private async commit(): Promise<void> {
    const { contentType } = this.opts;
    const sha256 = this.hash.digest('hex');
    checkComplete(this.key, this.size, sha256, this.opts);
    const handle = this.requireHandle();
    await handle.sync();
    const stats = await handle.stat();
    await handle.close();
    this.handle = undefined;
    if (this.destroyed) throw new StorageError('IO_ERROR', `Write of ${JSON.stringify(this.key)} was aborted`, this.key);
    await rename(this.tempPath, this.target);
    this.committed = true;
    await fsyncDir(this.dir);
    await this.writeMeta({ sha256, ino: stats.ino, size: stats.size, mtimeMs: stats.mtimeMs, ...(contentType ? { contentType } : {}) });
    const result = { key: this.key, size: this.size, sha256 };
    this.settle.resolve(result);
    this.tell({ t: 'stored', result });
  }

  private writeMeta(meta: MetaFile): Promise<void> {
    return writeMetaFile(this.target, meta);
  }

  /** Never throws: a temp file that cannot be removed must not hide the error that caused it. */
  private async discard(): Promise<void> {
    await this.handle?.close().catch(() => undefined);
    this.handle = undefined;
    if (!this.committed) await unlink(this.tempPath).catch(() => undefined);
  }

  private requireHandle(): FileHandle {
    if (!this.handle) throw new StorageError('IO_ERROR', `Write of ${JSON.stringify(this.key)} is not open`, this.key);
    return this.handle;
  }
}

/**
 * Runs `create` (a folder made, then a file in it) once more if it failed with ENOENT: the orphan
 * sweep removed the (empty, stale) folder between the mkdir and the file.
 */
async function onceMoreIfSwept(create: () => Promise<void>): Promise<void> {
  try {
    await create();
  } catch (err) {
    if (!hasCode(err, 'ENOENT')) throw err;
    await create();
  }
}

/** Creates `dir` and its missing parents; each new folder is an entry in its parent, fsynced so the path survives a crash. */
async function makeDir(dir: string): Promise<void> {
  const created = await mkdir(dir, { recursive: true });
  if (!created) return;
  const stop = path.dirname(created);
  for (let d = dir; d !== stop && d !== path.dirname(d); d = path.dirname(d)) await fsyncDir(path.dirname(d));
}

/** The sidecar of `target`. Best effort: the object is already committed, and `head` ignores a missing or stale record. */
async function writeMetaFile(target: string, meta: MetaFile): Promise<void> {
  const temp = path.join(path.dirname(target), `.tmp-${randomUUID()}`);
  try {
    await writeFile(temp, JSON.stringify(meta), { flag: 'wx', mode: 0o644 });
    await rename(temp, metaPathOf(target));
  } catch {
    await unlink(temp).catch(() => undefined);
  }
}

/** Most buffers in one `writev` (IOV_MAX is 1024 on Linux and macOS). */
const maxIovecs = 1024;

/** Writes every byte of `buffers` at the file position, in order, however the kernel splits the writes. */
async function writeAll(handle: FileHandle, buffers: Buffer[]): Promise<void> {
  let rest = buffers;
  while (rest.length > 0) {
    const batch = rest.length > maxIovecs ? rest.slice(0, maxIovecs) : rest;
    let { bytesWritten } = batch.length === 1 ? await handle.write(batch[0]!) : await handle.writev(batch);
    let i = 0;
    while (i < batch.length && bytesWritten >= batch[i]!.length) bytesWritten -= batch[i++]!.length;
    rest = i < batch.length ? [batch[i]!.subarray(bytesWritten), ...batch.slice(i + 1), ...rest.slice(batch.length)] : rest.slice(batch.length);
  }
}

/** Makes a rename or file creation in `dir` durable. */
async function fsyncDir(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch (err) {
    // Windows cannot open folders; some file systems refuse fsync on them (EINVAL). Neither can
    // do better, so the write stands.
    if (process.platform !== 'win32' && !hasCode(err, 'EINVAL', 'EISDIR', 'EPERM')) throw err;
  } finally {
    await handle?.close();
  }
}

function notFound(key: string): StorageError {
  return new StorageError('NOT_FOUND', `No object at ${JSON.stringify(key)}`, key);
}

function hasCode(err: unknown, ...codes: string[]): boolean {
  return typeof err === 'object' && err !== null && codes.includes(String((err as { code?: unknown }).code));
}

/** ENOTDIR: a parent "folder" is a file, so nothing can live below it. ELOOP: O_NOFOLLOW refused a symlink. */
function isMissing(err: unknown): boolean {
  return hasCode(err, 'ENOENT', 'ENOTDIR', 'ELOOP');
}
