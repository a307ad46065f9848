import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { assertValidKey, StorageError, type ObjectStorage, type StorageErrorCode } from '../../src/storage/storage';

/** One backend under test, fresh for every test. */
export interface StorageHarness {
  storage: ObjectStorage & { dispose(): Promise<void> };
  /**
   * Everything the backend holds, read around it (files on disk including hidden temp and sidecar
   * files; every object in the bucket): what "nothing left behind" is checked against.
   */
  rawObjects(): Promise<string[]>;
  cleanup(): Promise<void>;
  /**
   * `false` when the server under test does not list in byte order (s3rver sorts `a/x` before
   * `a-b`; AWS S3 lists in UTF-8 byte order): the listing is then compared as a set.
   */
  listsInByteOrder?: boolean;
}

export const sha256 = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');

/** A body delivered in several chunks, like a network upload. */
export function body(...chunks: Array<string | Buffer>): Readable {
  return Readable.from(chunks.map((c) => (typeof c === 'string' ? Buffer.from(c) : c)));
}

export async function rejection(promise: Promise<unknown>): Promise<StorageError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StorageError);
  return err as StorageError;
}

export async function listKeys(storage: ObjectStorage, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const item of storage.list(prefix)) keys.push(item.key);
  return keys;
}

/**
 * The behaviour every ObjectStorage backend must share (see src/storage/storage.ts). Run by
 * test/unit/storage-local.test.ts and test/unit/storage-s3.test.ts; backend-specific tests stay
 * in those files.
 */
export function describeStorageContract(name: string, create: () => Promise<StorageHarness>): void {
  let h: StorageHarness;
  let storage: StorageHarness['storage'];

  beforeEach(async () => {
    h = await create();
    storage = h.storage;
  });

  afterEach(async () => {
    await storage.dispose();
    await h.cleanup();
  });

  describe(`${name}: round trip`, () => {
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
      expect(await h.rawObjects()).toEqual([]);
    });

    it('stores an empty body', async () => {
      const put = await storage.put('empty.csv', body());
      expect(put).toEqual({ key: 'empty.csv', size: 0, sha256: sha256('') });
      expect(await storage.head('empty.csv')).toMatchObject({ size: 0, sha256: sha256('') });
      expect(await text(await storage.get('empty.csv'))).toBe('');
    });

    it('computes the SHA-256 of a multi-megabyte body streamed in chunks', async () => {
      const chunk = Buffer.alloc(256 * 1024, 7);
      const chunks = Array.from({ length: 24 }, (_, i) => Buffer.concat([chunk, Buffer.from(String(i))]));
      const whole = Buffer.concat(chunks);
      const put = await storage.put('big.bin', Readable.from(chunks));
      expect(put.size).toBe(whole.length);
      expect(put.sha256).toBe(sha256(whole));
      expect((await storage.head('big.bin'))?.sha256).toBe(sha256(whole));
      expect(sha256(Buffer.from(await (await storage.get('big.bin')).toArray().then((c) => Buffer.concat(c))))).toBe(sha256(whole));
    });

    it('replaces an object and reports the new checksum', async () => {
      await storage.put('a.csv', body('old'));
      await storage.put('a.csv', body('new content'));
      expect(await text(await storage.get('a.csv'))).toBe('new content');
      expect(await storage.head('a.csv')).toMatchObject({ size: 11, sha256: sha256('new content') });
      expect(await listKeys(storage, '')).toEqual(['a.csv']);
    });

    it('records a declared checksum with the object', async () => {
      await storage.put('declared.csv', body('hello'), { expectedSha256: sha256('hello'), expectedSize: 5 });
      expect(await storage.head('declared.csv')).toMatchObject({ size: 5, sha256: sha256('hello') });
    });

    it('lists by plain string prefix in byte order', async () => {
      for (const key of ['a/x.csv', 'a-b.csv', 'a0.csv', 'a/b/c.csv', 'ab/z.csv', 'b.csv']) {
        await storage.put(key, body(key));
      }
      const ordered = h.listsInByteOrder ?? true;
      const keys = async (prefix: string) => {
        const listed = await listKeys(storage, prefix);
        return ordered ? listed : [...listed].sort();
      };
      expect(await keys('')).toEqual(['a-b.csv', 'a/b/c.csv', 'a/x.csv', 'a0.csv', 'ab/z.csv', 'b.csv']);
      expect(await keys('a/')).toEqual(['a/b/c.csv', 'a/x.csv']);
      expect(await keys('a')).toEqual(['a-b.csv', 'a/b/c.csv', 'a/x.csv', 'a0.csv', 'ab/z.csv']);
      expect(await keys('a/b')).toEqual(['a/b/c.csv']);
      expect(await keys('missing/')).toEqual([]);
    });

    it('attaches no meaning to folder names (every output folder works alike)', async () => {
      const keys = [
        'uploads/2025-01-01/0b7e/upload.csv',
        'process_input/prog/01-Jan-2025/spec-event.data.csv',
        'ingestion_error/prog/01-Jan-2025/prog_1_errors.csv',
        'emission/01-Jan-2025/district.csv',
        'emission-error/01-Jan-2025/district_1_errors.csv',
        'some-future-folder/x.csv',
      ];
      for (const key of keys) {
        const w = storage.openWriter(key, { contentType: 'text/csv' });
        w.stream.write(`${key}\n`);
        await w.done();
      }
      for (const key of keys) {
        expect(await text(await storage.get(key))).toBe(`${key}\n`);
        expect(await listKeys(storage, key.slice(0, key.indexOf('/') + 1))).toContain(key);
      }
    });

    it('treats a folder of keys as no object', async () => {
      await storage.put('dir/file.csv', body('x'));
      expect((await rejection(storage.get('dir'))).code).toBe('NOT_FOUND');
      expect(await storage.head('dir')).toBeUndefined();
      await storage.delete('dir');
      expect(await listKeys(storage, '')).toEqual(['dir/file.csv']);
    });
  });

  describe(`${name}: limits and checks leave nothing behind`, () => {
    it('refuses a body over maxBytes, naming the limit', async () => {
      const err = await rejection(storage.put('up/big.csv', body('12345', '67890', 'abcde'), { maxBytes: 12 }));
      expect(err.code).toBe('PAYLOAD_TOO_LARGE');
      expect(err.message).toContain('12 bytes');
      expect(await storage.head('up/big.csv')).toBeUndefined();
      expect(await h.rawObjects()).toEqual([]);
    });

    it('accepts a body of exactly maxBytes', async () => {
      expect((await storage.put('exact.csv', body('12345', '67890'), { maxBytes: 10 })).size).toBe(10);
    });

    it('refuses a body whose SHA-256 differs from the expected one', async () => {
      const err = await rejection(storage.put('sum.csv', body('hello'), { expectedSha256: sha256('HELLO') }));
      expect(err.code).toBe('CHECKSUM_MISMATCH');
      expect(err.message).toContain(sha256('hello'));
      expect(await h.rawObjects()).toEqual([]);
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
      expect(await h.rawObjects()).toEqual([]);
    });

    it('refuses a wrong checksum on a multi-part body and leaves nothing behind', async () => {
      const chunks = Array.from({ length: 24 }, () => Buffer.alloc(256 * 1024, 1));
      const err = await rejection(storage.put('big-wrong.bin', Readable.from(chunks), { expectedSha256: sha256('other') }));
      expect(err.code).toBe('CHECKSUM_MISMATCH');
      expect(await h.rawObjects()).toEqual([]);
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
      expect(await h.rawObjects()).toEqual([]);
    });
  });

  describe(`${name}: incremental writer`, () => {
    it('is invisible until done() and then commits every row', async () => {
      const writer = storage.openWriter('out/rows.csv', { contentType: 'text/csv' });
      writer.stream.write('id,name\n');
      for (let i = 0; i < 1000; i++) writer.stream.write(`${i},row ${i}\n`);
      expect(await storage.head('out/rows.csv')).toBeUndefined();
      expect(await listKeys(storage, '')).toEqual([]);
      const result = await writer.done();
      const expected = `id,name\n${Array.from({ length: 1000 }, (_, i) => `${i},row ${i}\n`).join('')}`;
      expect(result).toEqual({ key: 'out/rows.csv', size: expected.length, sha256: sha256(expected) });
      expect(await text(await storage.get('out/rows.csv'))).toBe(expected);
    });

    it('abort() leaves nothing behind and done() then rejects', async () => {
      const writer = storage.openWriter('out/aborted.csv');
      writer.stream.write('a,b\n');
      writer.stream.write('1,2\n');
      await new Promise((resolve) => setTimeout(resolve, 10));
      await writer.abort();
      expect(await h.rawObjects()).toEqual([]);
      expect((await rejection(writer.done())).code).toBe('IO_ERROR');
    });

    it('enforces maxBytes while rows are written', async () => {
      const writer = storage.openWriter('out/limited.csv', { maxBytes: 8 });
      writer.stream.write('1234');
      writer.stream.write('5678');
      writer.stream.write('9');
      expect((await rejection(writer.done())).code).toBe('PAYLOAD_TOO_LARGE');
      await writer.abort();
      expect(await h.rawObjects()).toEqual([]);
    });

    it('dispose() aborts open writers and refuses further calls', async () => {
      const writer = storage.openWriter('out/open.csv');
      writer.stream.write('pending');
      await storage.dispose();
      expect(await h.rawObjects()).toEqual([]);
      expect((await rejection(writer.done())).code).toBe('IO_ERROR');
      expect((await rejection(storage.head('x.csv'))).code).toBe('IO_ERROR');
    });
  });

  describe(`${name}: keys`, () => {
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
      expect(await h.rawObjects()).toEqual([]);
    });

    it('accepts letters, digits, _ . - and inner spaces', async () => {
      for (const key of ['a.csv', 'emission/01-Jan-2025/Data File_1.csv', '_x/y-z.tar.gz', '9', 'a'.repeat(200)]) {
        expect(() => assertValidKey(key)).not.toThrow();
      }
      await storage.put('emission/01-Jan-2025/Data File_1.csv', body('x'));
      expect(await text(await storage.get('emission/01-Jan-2025/Data File_1.csv'))).toBe('x');
    });

    it('refuses an invalid list prefix', async () => {
      const list = async (prefix: string) => {
        for await (const _ of storage.list(prefix)) void _;
      };
      for (const prefix of ['../', '/abs', 'a/../', 'a\\b']) {
        expect((await rejection(list(prefix))).code).toBe('INVALID_KEY');
      }
    });
  });
}
