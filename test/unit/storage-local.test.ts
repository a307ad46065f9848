import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm, symlink, writeFile, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLocalStorage, type LocalStorage } from '../../src/storage/local';
import { assertValidKey, StorageError, type StorageErrorCode } from '../../src/storage/storage';

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

const sha256 = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');

/** A body delivered in several chunks, like a network upload. */
function body(...chunks: Array<string | Buffer>): Readable {
  return Readable.from(chunks.map((c) => (typeof c === 'string' ? Buffer.from(c) : c)));
}

async function rejection(promise: Promise<unknown>): Promise<StorageError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StorageError);
  return err as StorageError;
}

/** Every file under the root, including the backend's hidden temp and sidecar files. */
async function filesOnDisk(): Promise<string[]> {
  const entries = await readdir(storage.root, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => path.relative(storage.root, path.join(e.parentPath, e.name)))
    .sort();
}

async function listKeys(prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const item of storage.list(prefix)) keys.push(item.key);
  return keys;
}

describe('local storage: round trip', () => {
  it('puts, heads, gets, lists and deletes an object', async () => {
    const content = 'id,name\n1,Ana\n2,Ben\n';
    const put = await storage.put('process_input/prog/01-Jan-2025/spec.csv', body('id,name\n', '1,Ana\n', '2,Ben\n'), {
      contentType: 'text/csv',
    });
    expect(put).toEqual({ key: 'process_input/prog/01-Jan-2025/spec.csv', size: content.length, sha256: sha256(content) });

    const head = await storage.head(put.key);
    expect(head).toMatchObject({ size: content.length, sha256: sha256(content), contentType: 'text/csv' });
    expect(head?.modifiedAt).toBeInstanceOf(Date);

    expect(await text(await storage.get(put.key))).toBe(content);

    const listed = [];
    for await (const item of storage.list('process_input/')) listed.push(item);
    expect(listed).toEqual([{ key: put.key, size: content.length, modifiedAt: expect.any(Date) }]);

    await storage.delete(put.key);
    expect(await storage.head(put.key)).toBeUndefined();
    expect((await rejection(storage.get(put.key))).code).toBe('NOT_FOUND');
    await storage.delete(put.key); // idempotent
    expect(await filesOnDisk()).toEqual([]);
  });

  it('computes the SHA-256 of a multi-megabyte body streamed in chunks', async () => {
    const chunk = Buffer.alloc(256 * 1024, 7);
    const chunks = Array.from({ length: 20 }, (_, i) => Buffer.concat([chunk, Buffer.from(String(i))]));
    const whole = Buffer.concat(chunks);
    const put = await storage.put('big.bin', Readable.from(chunks));
    expect(put.size).toBe(whole.length);
    expect(put.sha256).toBe(sha256(whole));
    expect((await storage.head('big.bin'))?.sha256).toBe(sha256(whole));
  });

  it('replaces an object atomically and reports the new checksum', async () => {
    await storage.put('a.csv', body('old'));
    await storage.put('a.csv', body('new content'));
    expect(await text(await storage.get('a.csv'))).toBe('new content');
    expect(await storage.head('a.csv')).toMatchObject({ size: 11, sha256: sha256('new content') });
    expect(await filesOnDisk()).toEqual(['.a.csv.meta.json', 'a.csv']);
  });

  it('ignores a stale sidecar rather than reporting a wrong checksum', async () => {
    await storage.put('a.csv', body('first'));
    // Someone replaces the file behind the backend's back: the sidecar no longer describes it.
    await writeFile(path.join(storage.root, 'a.csv'), 'other');
    const head = await storage.head('a.csv');
    expect(head).toMatchObject({ size: 5 });
    expect(head?.sha256).toBeUndefined();
  });

  it('lists by plain string prefix in byte order, skipping its own files and symlinks', async () => {
    for (const key of ['a/x.csv', 'a-b.csv', 'a0.csv', 'a/b/c.csv', 'ab/z.csv', 'b.csv']) {
      await storage.put(key, body(key));
    }
    await symlink(path.join(storage.root, 'b.csv'), path.join(storage.root, 'a', 'link.csv'));
    expect(await listKeys('')).toEqual(['a-b.csv', 'a/b/c.csv', 'a/x.csv', 'a0.csv', 'ab/z.csv', 'b.csv']);
    expect(await listKeys('a/')).toEqual(['a/b/c.csv', 'a/x.csv']);
    expect(await listKeys('a')).toEqual(['a-b.csv', 'a/b/c.csv', 'a/x.csv', 'a0.csv', 'ab/z.csv']);
    expect(await listKeys('a/b')).toEqual(['a/b/c.csv']);
    expect(await listKeys('missing/')).toEqual([]);
  });

  it('does not follow a symlink planted under the root', async () => {
    await writeFile(path.join(dir, 'secret.txt'), 'secret');
    await symlink(path.join(dir, 'secret.txt'), path.join(storage.root, 'leak.csv'));
    expect((await rejection(storage.get('leak.csv'))).code).toBe('NOT_FOUND');
    expect(await storage.head('leak.csv')).toBeUndefined();
  });

  it('treats a folder of keys as no object', async () => {
    await storage.put('dir/file.csv', body('x'));
    expect((await rejection(storage.get('dir'))).code).toBe('NOT_FOUND');
    expect(await storage.head('dir')).toBeUndefined();
    await storage.delete('dir');
    expect(await listKeys('')).toEqual(['dir/file.csv']);
  });
});

describe('local storage: limits and checks leave nothing behind', () => {
  it('refuses a body over maxBytes, naming the limit', async () => {
    const err = await rejection(storage.put('up/big.csv', body('12345', '67890', 'abcde'), { maxBytes: 12 }));
    expect(err.code).toBe('PAYLOAD_TOO_LARGE');
    expect(err.message).toContain('12 bytes');
    expect(await storage.head('up/big.csv')).toBeUndefined();
    expect(await filesOnDisk()).toEqual([]);
  });

  it('accepts a body of exactly maxBytes', async () => {
    expect((await storage.put('exact.csv', body('12345', '67890'), { maxBytes: 10 })).size).toBe(10);
  });

  it('refuses a body whose SHA-256 differs from the expected one', async () => {
    const err = await rejection(storage.put('sum.csv', body('hello'), { expectedSha256: sha256('HELLO') }));
    expect(err.code).toBe('CHECKSUM_MISMATCH');
    expect(err.message).toContain(sha256('hello'));
    expect(await filesOnDisk()).toEqual([]);
  });

  it('accepts a matching checksum in upper case', async () => {
    const put = await storage.put('sum.csv', body('hello'), { expectedSha256: sha256('hello').toUpperCase() });
    expect(put.sha256).toBe(sha256('hello'));
  });

  it.each([
    ['longer', 'hello world', 5],
    ['shorter', 'hi', 5],
  ])('refuses a body %s than expectedSize', async (_label, content, expectedSize) => {
    const err = await rejection(storage.put('size.csv', body(content), { expectedSize }));
    expect(err.code).toBe('SIZE_MISMATCH');
    expect(err.message).toContain(`${expectedSize} bytes`);
    expect(await filesOnDisk()).toEqual([]);
  });

  it('wraps a failing body stream as IO_ERROR and cleans up', async () => {
    const failing = new Readable({
      read() {
        this.push(Buffer.from('partial'));
        this.destroy(new Error('client went away'));
      },
    });
    const err = await rejection(storage.put('broken.csv', failing));
    expect(err.code).toBe('IO_ERROR');
    expect(await filesOnDisk()).toEqual([]);
  });

  it('refuses a key that collides with an existing object as IO_ERROR', async () => {
    await storage.put('a', body('x'));
    expect((await rejection(storage.put('a/b.csv', body('y')))).code).toBe('IO_ERROR');
    expect(await filesOnDisk()).toEqual(['.a.meta.json', 'a']);
  });
});

describe('local storage: incremental writer', () => {
  it('is invisible until done() and then commits every row', async () => {
    const writer = storage.openWriter('out/rows.csv', { contentType: 'text/csv' });
    writer.stream.write('id,name\n');
    for (let i = 0; i < 1000; i++) writer.stream.write(`${i},row ${i}\n`);
    expect(await storage.head('out/rows.csv')).toBeUndefined();
    expect(await listKeys('')).toEqual([]);
    const result = await writer.done();
    const expected = `id,name\n${Array.from({ length: 1000 }, (_, i) => `${i},row ${i}\n`).join('')}`;
    expect(result).toEqual({ key: 'out/rows.csv', size: expected.length, sha256: sha256(expected) });
    expect(await text(await storage.get('out/rows.csv'))).toBe(expected);
  });

  it('abort() removes the temp file and done() then rejects', async () => {
    const writer = storage.openWriter('out/aborted.csv');
    writer.stream.write('a,b\n');
    writer.stream.write('1,2\n');
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect((await filesOnDisk()).some((f) => f.includes('.tmp-'))).toBe(true);
    await writer.abort();
    expect(await filesOnDisk()).toEqual([]);
    expect((await rejection(writer.done())).code).toBe('IO_ERROR');
  });

  it('enforces maxBytes while rows are written', async () => {
    const writer = storage.openWriter('out/limited.csv', { maxBytes: 8 });
    writer.stream.write('1234');
    writer.stream.write('5678');
    writer.stream.write('9');
    expect((await rejection(writer.done())).code).toBe('PAYLOAD_TOO_LARGE');
    await writer.abort();
    expect(await filesOnDisk()).toEqual([]);
  });

  it('dispose() aborts open writers and refuses further calls', async () => {
    const writer = storage.openWriter('out/open.csv');
    writer.stream.write('pending');
    await storage.dispose();
    expect(await filesOnDisk()).toEqual([]);
    expect((await rejection(writer.done())).code).toBe('IO_ERROR');
    expect((await rejection(storage.head('x.csv'))).code).toBe('IO_ERROR');
  });
});

describe('keys', () => {
  const invalid: Array<[string, string]> = [
    ['empty', ''],
    ['parent segment', 'a/../b.csv'],
    ['leading parent segment', '../b.csv'],
    ['dot segment', 'a/./b.csv'],
    ['absolute path', '/etc/passwd'],
    ['drive letter', 'C:/x.csv'],
    ['backslash', 'a\\b.csv'],
    ['NUL', 'a\0.csv'],
    ['empty segment', 'a//b.csv'],
    ['trailing slash', 'a/b/'],
    ['hidden segment', 'a/.hidden'],
    ['temp-like name', '.tmp-123'],
    ['disallowed character', 'a/b?.csv'],
    ['non-ASCII letter', 'données.csv'],
    ['trailing dot', 'a/b.'],
    ['trailing space', 'a/b '],
    ['leading dash', '-rf'],
    ['too long', `${'a/'.repeat(512)}b`],
    ['segment too long', 'a'.repeat(201)],
  ];

  it.each(invalid)('refuses %s', async (_label, key) => {
    expect(() => assertValidKey(key)).toThrow(StorageError);
    const codes: StorageErrorCode[] = [];
    for (const call of [
      () => storage.put(key, body('x')),
      () => storage.get(key),
      () => storage.head(key),
      () => storage.delete(key),
      async () => storage.openWriter(key),
    ]) {
      codes.push((await rejection(call())).code);
    }
    expect(codes).toEqual(Array(5).fill('INVALID_KEY'));
  });

  it('accepts letters, digits, _ . - and inner spaces', () => {
    for (const key of ['a.csv', 'emission/01-Jan-2025/Data File_1.csv', '_x/y-z.tar.gz', '9', 'a'.repeat(200)]) {
      expect(() => assertValidKey(key)).not.toThrow();
    }
  });

  it('refuses an invalid list prefix', async () => {
    const list = async (prefix: string) => {
      for await (const _ of storage.list(prefix)) void _;
    };
    for (const prefix of ['../', '/abs', 'a/../', 'a\\b']) {
      expect((await rejection(list(prefix))).code).toBe('INVALID_KEY');
    }
  });

  it('names the offending key in the message and writes nothing to disk', async () => {
    await mkdir(path.join(dir, 'outside'), { recursive: true });
    const err = await rejection(storage.put('../outside/evil.csv', body('x')));
    expect(err.message).toContain('"../outside/evil.csv"');
    expect(await readdir(path.join(dir, 'outside'))).toEqual([]);
  });
});
