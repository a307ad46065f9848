import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLocalStorage, type LocalStorage } from '../../src/storage/local';
import { body, describeStorageContract, listKeys, rejection, sha256 } from '../helpers/storage-contract';

/** Every file under `root`, including the backend's hidden temp and sidecar files. */
async function streamText(stream: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  for await (const chunk of stream) text += chunk.toString();
  return text;
}

async function filesOnDisk(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => path.relative(root, path.join(e.parentPath, e.name)))
    .sort();
}

describeStorageContract('local storage', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sluice-storage-'));
  const storage = createLocalStorage({ root: path.join(dir, 'root') });
  return {
    storage,
    rawObjects: () => filesOnDisk(storage.root),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

describe('local storage: disk layout', () => {
  let dir: string;
  let storage: LocalStorage;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'sluice-storage-'));
    storage = createLocalStorage({ root: path.join(dir, 'root') });
  });

  afterEach(async () => {
    await storage.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  it('replaces an object atomically, keeping one data file and one sidecar', async () => {
    await storage.put('a.csv', body('old'));
    await storage.put('a.csv', body('new content'));
    expect(await filesOnDisk(storage.root)).toEqual(['.a.csv.meta.json', 'a.csv']);
  });

  it('ignores a stale sidecar rather than reporting a wrong checksum', async () => {
    await storage.put('a.csv', body('first'));
    // Someone replaces the file behind the backend's back: the sidecar no longer describes it.
    await writeFile(path.join(storage.root, 'a.csv'), 'other');
    const head = await storage.head('a.csv');
    expect(head).toMatchObject({ size: 5 });
    expect(head?.sha256).toBeUndefined();
    expect(sha256('other')).not.toBe(sha256('first'));
  });

  it('skips its own files and symlinks when listing', async () => {
    await storage.put('a/x.csv', body('x'));
    await storage.put('b.csv', body('b'));
    await symlink(path.join(storage.root, 'b.csv'), path.join(storage.root, 'a', 'link.csv'));
    expect(await listKeys(storage, '')).toEqual(['a/x.csv', 'b.csv']);
  });

  it('does not follow a symlink planted under the root', async () => {
    await writeFile(path.join(dir, 'secret.txt'), 'secret');
    await symlink(path.join(dir, 'secret.txt'), path.join(storage.root, 'leak.csv'));
    expect((await rejection(storage.get('leak.csv'))).code).toBe('NOT_FOUND');
    expect(await storage.head('leak.csv')).toBeUndefined();
  });

  it('refuses a key that collides with an existing object as IO_ERROR', async () => {
    await storage.put('a', body('x'));
    expect((await rejection(storage.put('a/b.csv', body('y')))).code).toBe('IO_ERROR');
    expect(await filesOnDisk(storage.root)).toEqual(['.a.meta.json', 'a']);
  });

  it('writes to a hidden temp file until done()', async () => {
    const writer = storage.openWriter('out/pending.csv');
    writer.stream.write('a,b\n');
    // The temp file is opened asynchronously: wait for it (a fixed 10 ms failed under load).
    const hasTemp = async () => (await filesOnDisk(storage.root)).some((f) => f.includes('.tmp-'));
    for (const deadline = Date.now() + 10_000; !(await hasTemp()) && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 10));
    expect(await hasTemp()).toBe(true);
    expect((await filesOnDisk(storage.root)).some((f) => f.startsWith('out/pending'))).toBe(false);
    await writer.abort();
    expect(await filesOnDisk(storage.root)).toEqual([]);
  });

  it('copies an object: the same bytes under the new key with the given SHA-256, independent of the source afterwards', async () => {
    const text = 'id,name\n1,a\n2,b\n';
    await storage.put('uploads/u.csv', body(text));
    const copied = await storage.copy('uploads/u.csv', 'process_input/p/out.csv', { size: text.length, sha256: sha256(text) }, { contentType: 'text/csv' });
    expect(copied).toEqual({ key: 'process_input/p/out.csv', size: text.length, sha256: sha256(text) });
    expect(await streamText(await storage.get('process_input/p/out.csv'))).toBe(text);
    expect(await storage.head('process_input/p/out.csv')).toMatchObject({ size: text.length, sha256: sha256(text), contentType: 'text/csv' });
    expect(await filesOnDisk(storage.root)).toEqual([
      'process_input/p/.out.csv.meta.json',
      'process_input/p/out.csv',
      'uploads/.u.csv.meta.json',
      'uploads/u.csv',
    ]);
    // Replacing or deleting the source leaves the copy as it was.
    await storage.put('uploads/u.csv', body('other'));
    expect(await streamText(await storage.get('process_input/p/out.csv'))).toBe(text);
    await storage.delete('uploads/u.csv');
    expect(await streamText(await storage.get('process_input/p/out.csv'))).toBe(text);
    expect(await storage.head('process_input/p/out.csv')).toMatchObject({ sha256: sha256(text) });
  });

  it('refuses a copy of a source of another size, a missing one or a symlink, and leaves nothing behind', async () => {
    await storage.put('uploads/u.csv', body('12345'));
    await writeFile(path.join(dir, 'secret.txt'), 'secret');
    await symlink(path.join(dir, 'secret.txt'), path.join(storage.root, 'uploads', 'leak.csv'));
    const expected = { size: 5, sha256: sha256('12345') };
    expect((await rejection(storage.copy('uploads/u.csv', 'out/a.csv', { ...expected, size: 4 }))).code).toBe('SIZE_MISMATCH');
    expect((await rejection(storage.copy('uploads/none.csv', 'out/a.csv', expected))).code).toBe('NOT_FOUND');
    expect((await rejection(storage.copy('uploads/leak.csv', 'out/a.csv', { size: 6, sha256: sha256('secret') }))).code).toBe('NOT_FOUND');
    expect((await rejection(storage.copy('uploads/u.csv', '../out.csv', expected))).code).toBe('INVALID_KEY');
    expect((await filesOnDisk(storage.root)).filter((f) => !f.startsWith('uploads/'))).toEqual([]);
  });

  it('names the offending key in the message and writes nothing outside the root', async () => {
    await mkdir(path.join(dir, 'outside'), { recursive: true });
    const err = await rejection(storage.put('../outside/evil.csv', body('x')));
    expect(err.message).toContain('"../outside/evil.csv"');
    expect(await readdir(path.join(dir, 'outside'))).toEqual([]);
  });
});

describe('local storage: large writes', () => {
  let dir: string;
  let storage: LocalStorage;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'sluice-storage-'));
    storage = createLocalStorage({ root: path.join(dir, 'root') });
  });

  afterEach(async () => {
    await storage.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  /** `count` 64 KiB chunks (a socket read's size), each different, so order and loss show in the hash. */
  function socketChunks(count: number): Buffer[] {
    return Array.from({ length: count }, (_, i) => Buffer.alloc(64 * 1024, `${i},row\n`));
  }

  async function writeAll(stream: NodeJS.WritableStream, chunks: Buffer[]): Promise<void> {
    for (const c of chunks) if (!stream.write(c)) await new Promise((resolve) => stream.once('drain', resolve));
  }

  it('takes 1 MiB of 64 KiB chunks before pushing back, so a request is not paused per chunk', async () => {
    const writer = storage.openWriter('batched.csv');
    const chunks = socketChunks(16);
    // 15 chunks stay under 1 MiB; the 16th reaches it.
    expect(chunks.map((c) => writer.stream.write(c))).toEqual([...Array(15).fill(true), false]);
    const put = await writer.done();
    expect(put).toEqual({ key: 'batched.csv', size: 1024 * 1024, sha256: sha256(Buffer.concat(chunks)) });
  });

  it('reports the first limit the body crossed, however many chunks were buffered together', async () => {
    const writer = storage.openWriter('limits.csv', { expectedSize: 1000, maxBytes: 256 * 1024 });
    // All 16 chunks wait while the temp file opens, then reach the disk as one batch: its first
    // chunk is already past the declared size, the batch as a whole also past the cap.
    for (const c of socketChunks(16)) writer.stream.write(c);
    expect((await rejection(writer.done())).code).toBe('SIZE_MISMATCH');
    expect(await filesOnDisk(storage.root)).toEqual([]);
  });

  it('stores every byte, in order, of a 24 MiB body written in 64 KiB chunks (batched into large writes)', async () => {
    const chunks = socketChunks(384);
    const writer = storage.openWriter('large.csv');
    await writeAll(writer.stream, chunks);
    const put = await writer.done();
    const whole = Buffer.concat(chunks);
    expect(put).toEqual({ key: 'large.csv', size: whole.length, sha256: sha256(whole) });
    expect((await storage.head('large.csv'))?.sha256).toBe(sha256(whole));
    const stored = Buffer.concat(await (await storage.get('large.csv')).toArray());
    expect(sha256(stored)).toBe(sha256(whole));
    expect(await filesOnDisk(storage.root)).toEqual(['.large.csv.meta.json', 'large.csv']);
  });

  it('an abort in the middle of a large write leaves nothing behind', async () => {
    const writer = storage.openWriter('aborted.csv');
    await writeAll(writer.stream, socketChunks(320));
    // Lets the buffered writes get under way.
    await new Promise((resolve) => setTimeout(resolve, 5));
    await writer.abort();
    expect((await rejection(writer.done())).code).toBe('IO_ERROR');
    expect(await filesOnDisk(storage.root)).toEqual([]);
  });
});

describe('local storage: sweepLeftovers', () => {
  let dir: string;
  let storage: LocalStorage;
  const old = new Date(Date.now() - 3600_000);
  const cutoff = () => new Date(Date.now() - 60_000);

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'sluice-storage-'));
    storage = createLocalStorage({ root: path.join(dir, 'root') });
  });

  afterEach(async () => {
    await storage.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  it('removes stale temp files and the folders they leave empty; keeps objects, sidecars, fresh temps and the root', async () => {
    await storage.put('keep/a.csv', body('a'));
    await mkdir(path.join(storage.root, 'crash', 'deep'), { recursive: true });
    await writeFile(path.join(storage.root, 'crash', 'deep', '.tmp-1'), 'half');
    await writeFile(path.join(storage.root, 'keep', '.tmp-2'), 'half');
    await writeFile(path.join(storage.root, 'keep', '.tmp-fresh'), 'half');
    for (const f of ['crash/deep/.tmp-1', 'keep/.tmp-2', 'crash/deep', 'crash']) await utimes(path.join(storage.root, f), old, old);
    expect(await storage.sweepLeftovers(cutoff())).toEqual({ tempFiles: 2, folders: 2 });
    expect(await filesOnDisk(storage.root)).toEqual(['keep/.a.csv.meta.json', 'keep/.tmp-fresh', 'keep/a.csv']);
    expect((await stat(storage.root)).isDirectory()).toBe(true);
  });

  it('never takes the temp file of a write still open in this process, however old', async () => {
    const writer = storage.openWriter('out/slow.csv');
    writer.stream.write('a,b\n');
    await new Promise((resolve) => setTimeout(resolve, 20));
    const [temp] = (await filesOnDisk(storage.root)).filter((f) => f.includes('.tmp-'));
    await utimes(path.join(storage.root, temp!), old, old);
    expect(await storage.sweepLeftovers(cutoff())).toEqual({ tempFiles: 0, folders: 0 });
    writer.stream.write('1,2\n');
    expect((await writer.done()).size).toBe(8);
  });

  it('never takes the temp file of a copy in progress, though a linked one carries the old time of its source', async () => {
    await storage.put('uploads/u.csv', body('id\n1\n'));
    await utimes(path.join(storage.root, 'uploads', 'u.csv'), old, old);
    const expected = { size: 5, sha256: sha256('id\n1\n') };
    let sweeping = true;
    const sweeps = (async () => {
      while (sweeping) await storage.sweepLeftovers(cutoff());
    })();
    try {
      const copies = await Promise.allSettled(Array.from({ length: 200 }, (_, i) => storage.copy('uploads/u.csv', `out/c${i}.csv`, expected)));
      expect(copies.filter((c) => c.status === 'rejected').map((c) => String((c as PromiseRejectedResult).reason))).toEqual([]);
    } finally {
      sweeping = false;
      await sweeps;
    }
    expect((await filesOnDisk(storage.root)).filter((f) => f.startsWith('out/c') && !f.includes('.tmp-'))).toHaveLength(200);
  });

  it('does not follow symlinks out of the root', async () => {
    const outside = path.join(dir, 'outside');
    await mkdir(outside);
    await writeFile(path.join(outside, '.tmp-x'), 'not ours');
    await utimes(path.join(outside, '.tmp-x'), old, old);
    await symlink(outside, path.join(storage.root, 'link'));
    await storage.sweepLeftovers(cutoff());
    expect(await readdir(outside)).toEqual(['.tmp-x']);
  });

  it('a write into a folder the sweep just removed recreates it', async () => {
    await mkdir(path.join(storage.root, 'gone'));
    await utimes(path.join(storage.root, 'gone'), old, old);
    expect(await storage.sweepLeftovers(cutoff())).toEqual({ tempFiles: 0, folders: 1 });
    await storage.put('gone/a.csv', body('a'));
    expect(await storage.head('gone/a.csv')).toBeDefined();
  });
});

describe('local storage: the free-space reserve (SLUICE_STORAGE_MIN_FREE_BYTES)', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'sluice-reserve-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses a write that would leave less than the reserve free, before its first byte when it declares its size', async () => {
    // More than any disk has free: every write is refused, and nothing is left behind.
    const storage = createLocalStorage({ root: path.join(dir, 'root'), minFreeBytes: 1e15 });
    const declared = storage.openWriter('declared.csv', { expectedSize: 10 });
    declared.stream.end('0123456789');
    expect((await rejection(declared.done())).code).toBe('STORAGE_FULL');
    expect((await rejection(storage.put('streamed.csv', body('a,b\n')))).code).toBe('STORAGE_FULL');
    expect(await filesOnDisk(storage.root)).toEqual([]);
    await storage.dispose();
    // The same disk with a reserve it can keep (or none) takes the write.
    for (const minFreeBytes of [1, 0]) {
      const roomy = createLocalStorage({ root: path.join(dir, 'root'), minFreeBytes });
      expect((await roomy.put(`ok-${minFreeBytes}.csv`, body('a,b\n'))).size).toBe(4);
      await roomy.dispose();
    }
  });

  it('watches the other folders it is given (the embedded PostgreSQL data), a missing one through its parent', async () => {
    const storage = createLocalStorage({ root: path.join(dir, 'root'), minFreeBytes: 1, alsoWatch: [path.join(dir, 'pg', 'not-yet')] });
    expect((await storage.put('a.csv', body('a\n'))).size).toBe(2);
    await storage.dispose();
  });

  // Mid-stream, on a real small file system: a 6 MiB tmpfs mount (root only; skipped otherwise).
  const tiny = path.join(os.tmpdir(), `sluice-reserve-tmpfs-${process.pid}`);
  let mounted = false;
  try {
    mkdirSync(tiny, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=6m', 'tmpfs', tiny], { stdio: 'ignore' });
    mounted = true;
  } catch {
    mounted = false;
  }
  afterAll(() => {
    if (mounted) execFileSync('umount', ['-l', tiny], { stdio: 'ignore' });
    rmSync(tiny, { recursive: true, force: true });
  });

  it.skipIf(!mounted)('stops a write in the middle once it would cross the reserve, before the disk is full, and frees its bytes', async () => {
    const storage = createLocalStorage({ root: path.join(tiny, 'root'), minFreeBytes: 2 * 1024 * 1024 });
    const writer = storage.openWriter('big.csv');
    const chunk = Buffer.alloc(64 * 1024, 'x');
    // 5 MiB into 6 MiB with 2 MiB kept: refused part way (STORAGE_FULL, not the disk's ENOSPC).
    for (let i = 0; i < 80 && !writer.stream.destroyed; i++) {
      if (!writer.stream.write(chunk)) await new Promise((resolve) => writer.stream.once('drain', resolve).once('close', resolve));
    }
    writer.stream.end();
    const err = await rejection(writer.done());
    expect(err.code).toBe('STORAGE_FULL');
    expect(err.message).toMatch(/SLUICE_STORAGE_MIN_FREE_BYTES/);
    expect(await filesOnDisk(storage.root)).toEqual([]);
    // The room is back: a small write fits.
    expect((await storage.put('small.csv', body('a,b\n'))).size).toBe(4);
    await storage.dispose();
  });

  it.skipIf(!mounted)("keeps the reserve on a watched folder's file system too (the embedded PostgreSQL's data)", async () => {
    // The store on the big disk, the watched folder on the 6 MiB tmpfs: a 7 MiB reserve cannot be kept there.
    const strict = createLocalStorage({ root: path.join(dir, 'root'), minFreeBytes: 7 * 1024 * 1024, alsoWatch: [path.join(tiny, 'pg')] });
    expect((await rejection(strict.put('a.csv', body('a\n')))).code).toBe('STORAGE_FULL');
    await strict.dispose();
    const fits = createLocalStorage({ root: path.join(dir, 'root'), minFreeBytes: 1024 * 1024, alsoWatch: [path.join(tiny, 'pg')] });
    expect((await fits.put('a.csv', body('a\n'))).size).toBe(2);
    await fits.dispose();
  });
});
