import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Growth, readGrowingFile } from '../../src/storage/growing-file';
import { createLocalStorage } from '../../src/storage/local';
import { StorageError, type GrowingFileEvent } from '../../src/storage/storage';

/**
 * Following a file while it is written (storage/growing-file.ts, StorageWriter.growing): the
 * reader gets exactly the bytes written, in order, however the writes and reads interleave, and
 * ends only with the writer's record matching what it read.
 */
let dir: string;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-growing-'));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function collect(gen: AsyncGenerator<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of gen) parts.push(c);
  return Buffer.concat(parts);
}

describe('readGrowingFile', () => {
  it('reads a local writer’s file as it grows, chunk by chunk, and ends at the stored record', async () => {
    const storage = createLocalStorage({ root: dir });
    const writer = storage.openWriter('uploads/a.csv');
    const growing = writer.growing!;
    const events: GrowingFileEvent['t'][] = [];
    growing.watch((e) => events.push(e.t));
    const parts = Array.from({ length: 20 }, (_, i) => Buffer.alloc(50_000 + i, 97 + (i % 26)));
    const all = Buffer.concat(parts);
    // The first write opens the file; then a reader follows it.
    await new Promise<void>((r) => writer.stream.write(parts[0], () => r()));
    const handle = await growing.openForReading();
    const growth = new Growth();
    const off = growing.watch((e) =>
      growth.update(e.t === 'grown' ? e : e.t === 'stored' ? { t: 'stored', size: e.result.size, sha256: e.result.sha256 } : { t: 'lost' }),
    );
    growth.update({ t: 'grown', written: growing.written });
    const read = collect(readGrowingFile({ fd: handle.fd, key: 'uploads/a.csv' }, growth, 7_000));
    for (const p of parts.slice(1)) {
      await new Promise<void>((r) => writer.stream.write(p, () => r()));
      await new Promise((r) => setImmediate(r));
    }
    const stored = await writer.done();
    expect(stored).toMatchObject({ size: all.length, sha256: sha256(all) });
    expect(Buffer.compare(await read, all)).toBe(0);
    expect(growing.outcome).toEqual(stored);
    expect(events.at(-1)).toBe('stored');
    expect(events.filter((e) => e === 'grown').length).toBeGreaterThan(1);
    off();
    await handle.close();
  });

  it('fails with CHECKSUM_MISMATCH when the bytes read are not the ones the writer hashed', async () => {
    const file = path.join(dir, 'b.csv');
    await fs.writeFile(file, 'id\n1\n2\n');
    const handle = await fs.open(file, 'r');
    const growth = new Growth();
    growth.update({ t: 'stored', size: 7, sha256: sha256(Buffer.from('id\n1\n3\n')) });
    const err = await collect(readGrowingFile({ fd: handle.fd, key: 'b.csv' }, growth)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).code).toBe('CHECKSUM_MISMATCH');
    await handle.close();
  });

  it('fails with SIZE_MISMATCH when the file is shorter than the writer said', async () => {
    const file = path.join(dir, 'c.csv');
    await fs.writeFile(file, 'id\n1\n');
    const handle = await fs.open(file, 'r');
    const growth = new Growth();
    growth.update({ t: 'stored', size: 9, sha256: sha256(Buffer.from('id\n1\n2\n3\n')) });
    const err = await collect(readGrowingFile({ fd: handle.fd, key: 'c.csv' }, growth)).catch((e: unknown) => e);
    expect((err as StorageError).code).toBe('SIZE_MISMATCH');
    await handle.close();
  });

  it('fails with IO_ERROR when the write is lost (an aborted upload), also while waiting for bytes', async () => {
    const storage = createLocalStorage({ root: dir });
    const writer = storage.openWriter('uploads/d.csv');
    await new Promise<void>((r) => writer.stream.write(Buffer.from('id\n1\n'), () => r()));
    const handle = await writer.growing!.openForReading();
    const growth = new Growth();
    writer.growing!.watch((e) => growth.update(e.t === 'grown' ? e : e.t === 'lost' ? { t: 'lost' } : { t: 'stored', size: 0, sha256: '' }));
    growth.update({ t: 'grown', written: writer.growing!.written });
    const read = collect(readGrowingFile({ fd: handle.fd, key: 'uploads/d.csv' }, growth)).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 20));
    await writer.abort();
    const err = await read;
    expect((err as StorageError).code).toBe('IO_ERROR');
    expect(writer.growing!.outcome).toBeNull();
    await handle.close();
  });

  it('put() hands its writer to onWriter before the first byte', async () => {
    const storage = createLocalStorage({ root: dir });
    let seen = -1;
    const r = await storage.put('uploads/e.csv', Readable.from([Buffer.from('id\n1\n')]), {}, (w) => {
      seen = w.growing!.written;
    });
    expect(seen).toBe(0);
    expect(r.size).toBe(5);
  });
});
