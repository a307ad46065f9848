import { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { LINE_BLOCK_SHIFT, lineStream, splitBinaryCopy } from '../../src/ingest/copy-split';
import { PGCOPY_HEADER, PGCOPY_TRAILER } from '../../src/ingest/fast-path';

/** A binary COPY of `lines` as the pipeline writes it: `_line` (int4), then a text field (NULL every 7th line). */
function binaryCopy(lines: number[]): Buffer {
  const parts: Buffer[] = [PGCOPY_HEADER];
  for (const line of lines) {
    const text = line % 7 === 0 ? null : Buffer.from(`row ${line} ${'x'.repeat(line % 13)}`);
    const b = Buffer.alloc(2 + 8 + 4 + (text?.length ?? 0));
    b.writeInt16BE(2, 0);
    b.writeInt32BE(4, 2);
    b.writeInt32BE(line, 6);
    b.writeInt32BE(text ? text.length : -1, 10);
    text?.copy(b, 14);
    parts.push(b);
  }
  parts.push(PGCOPY_TRAILER);
  return Buffer.concat(parts);
}

/** The lines of one binary COPY, checking its header and trailer. */
function linesOf(copy: Buffer): number[] {
  expect(copy.subarray(0, PGCOPY_HEADER.length).equals(PGCOPY_HEADER)).toBe(true);
  const out: number[] = [];
  let p = PGCOPY_HEADER.length;
  for (;;) {
    const fields = copy.readInt16BE(p);
    p += 2;
    if (fields === -1) break;
    out.push(copy.readInt32BE(p + 4));
    for (let f = 0; f < fields; f++) {
      const len = copy.readInt32BE(p);
      p += 4 + Math.max(len, 0);
    }
  }
  expect(p).toBe(copy.length);
  return out;
}

/** A COPY target that keeps what it gets and calls back after `delayMs` (a busy socket). */
function target(delayMs = 0): { stream: Writable; bytes: () => Buffer; pending: () => number } {
  const chunks: Buffer[] = [];
  let pending = 0;
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(Buffer.from(chunk));
      pending++;
      setTimeout(() => {
        pending--;
        cb();
      }, delayMs);
    },
  });
  return { stream, bytes: () => Buffer.concat(chunks), pending: () => pending };
}

describe('splitBinaryCopy', () => {
  it('sends each row to the stream of its block of lines, in order, each stream a whole binary COPY, whatever the chunk boundaries', async () => {
    const lines = Array.from({ length: 20_000 }, (_, i) => i + 2).filter((l) => l % 11 !== 0);
    const input = binaryCopy(lines);
    for (const streams of [2, 3]) {
      for (const seed of [1, 7, 1000, 65_536]) {
        const targets = Array.from({ length: streams }, () => target());
        const split = splitBinaryCopy(targets.map((t) => t.stream));
        // Chunks of varying sizes, cutting rows (and the header) anywhere.
        for (let at = 0, i = 0; at < input.length; i++) {
          const size = Math.max(1, (seed * (i + 3)) % 9001);
          split.write(input.subarray(at, at + size));
          at += size;
        }
        split.end();
        await finished(split);
        for (let s = 0; s < streams; s++) expect(linesOf(targets[s]!.bytes())).toEqual(lines.filter((l) => lineStream(l, streams) === s));
      }
    }
    expect(lineStream((1 << LINE_BLOCK_SHIFT) - 1, 2)).toBe(0);
    expect(lineStream(1 << LINE_BLOCK_SHIFT, 2)).toBe(1);
  });

  it('calls a write back only once every stream took its part (the writer may reuse the chunk then)', async () => {
    const targets = [target(30), target(0)];
    const split = splitBinaryCopy(targets.map((t) => t.stream));
    const lines = Array.from({ length: 10_000 }, (_, i) => i + 1);
    const input = binaryCopy(lines);
    let calledBack = false;
    split.write(input, () => {
      calledBack = true;
      expect(targets.map((t) => t.pending())).toEqual([0, 0]);
    });
    await new Promise((r) => setTimeout(r, 10));
    expect(calledBack).toBe(false);
    split.end();
    await finished(split);
    expect(calledBack).toBe(true);
  });

  it('refuses what is not the pipeline’s binary COPY, and a target’s failure fails it', async () => {
    const bad = splitBinaryCopy([target().stream, target().stream]);
    const failed = new Promise((resolve) => bad.on('error', resolve));
    bad.write(Buffer.from('date,school\n01/01/2024,s1\n'));
    expect(String(await failed)).toMatch(/binary COPY header/);

    const cut = splitBinaryCopy([target().stream, target().stream]);
    const input = binaryCopy([1, 2, 3]);
    cut.write(input.subarray(0, input.length - 5));
    cut.end();
    await expect(finished(cut)).rejects.toThrow(/ended inside a row/);

    const broken = new Writable({ write: (_c, _e, cb) => cb(new Error('the COPY failed')) });
    const other = target();
    const split = splitBinaryCopy([broken, other.stream]);
    split.write(binaryCopy([1, 2]));
    await expect(finished(split)).rejects.toThrow(/the COPY failed/);
    expect(other.stream.destroyed).toBe(true);
  });
});
