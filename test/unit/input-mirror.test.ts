import { randomBytes } from 'node:crypto';
import { closeSync, openSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InputMirror } from '../../src/ingest/input-mirror';
import { Collect } from '../helpers/pipeline';

// The mirror must be invisible: its target receives exactly the bytes it was given, unless they
// were the whole file, in which case it receives nothing and says so.

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'sluice-mirror-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

let n = 0;
function stored(bytes: Buffer): { fd: number; close: () => void } {
  const file = path.join(dir, `f${n++}`);
  writeFileSync(file, bytes);
  const fd = openSync(file, 'r');
  return { fd, close: () => closeSync(fd) };
}

/** Writes `output` in chunks of `size` through a mirror of `file`; what the target got and the verdict. */
async function mirror(file: Buffer, output: Buffer, size: number, slow = false) {
  const f = stored(file);
  try {
    const target = new Collect(slow);
    const released: number[] = [];
    const m = new InputMirror(f.fd, file.length, target, (chunk) => released.push(chunk.length));
    for (let at = 0; at < output.length; at += size) {
      if (!m.write(output.subarray(at, at + size))) await new Promise((r) => m.once('drain', r));
    }
    m.end();
    await finished(m);
    // The mirror does not end its target (the pipeline's sinks are not ended); what it holds is flushed here.
    target.end();
    await finished(target);
    return { isInput: m.isInput, target: target.bytes, released: released.reduce((a, b) => a + b, 0) };
  } finally {
    f.close();
  }
}

const csv = (rows: number, bad = -1) => {
  let s = 'id,name\n';
  for (let i = 0; i < rows; i++) s += i === bad ? `x${i},bad\n` : `${i},n${i}\n`;
  return Buffer.from(s);
};

describe('InputMirror', () => {
  it('writes nothing and says so when the output is the whole file', async () => {
    const file = csv(20_000);
    for (const size of [1, 7, 4096, 300_000]) {
      if (size === 1 && file.length > 50_000) continue;
      const r = await mirror(file, file, size);
      expect(r).toMatchObject({ isInput: true, released: file.length });
      expect(r.target.length).toBe(0);
    }
  });

  it('gives the target exactly the output when it leaves out a row, starts differently, ends early or runs past the file', async () => {
    const file = csv(50_000);
    const lines = file.toString().split('\n');
    const cases: Array<[string, Buffer]> = [
      ['a row left out in the middle', Buffer.from([...lines.slice(0, 25_000), ...lines.slice(25_001)].join('\n'))],
      ['a row left out at the start', Buffer.from([lines[0], ...lines.slice(2)].join('\n'))],
      ['the last row left out', Buffer.from(`${lines.slice(0, -2).join('\n')}\n`)],
      ['a different header', Buffer.from(`"id",name\n${lines.slice(1).join('\n')}`)],
      ['one byte more (a line break added at the end)', Buffer.concat([file, Buffer.from('\n')])],
      ['nothing at all', Buffer.alloc(0)],
    ];
    for (const [what, output] of cases) {
      for (const size of [4096, 65_536, 1_500_000]) {
        const r = await mirror(file, output, size, size === 4096);
        expect({ what, size, isInput: r.isInput }).toEqual({ what, size, isInput: false });
        expect(r.target.equals(output), `${what}, chunks of ${size}`).toBe(true);
      }
    }
  });

  it('writes a matched part larger than its read size (several MiB) in order, through a slow target', async () => {
    const file = randomBytes(5 * 1024 * 1024 + 123);
    const output = Buffer.concat([file.subarray(0, 4 * 1024 * 1024 + 7), Buffer.from('tail')]);
    const r = await mirror(file, output, 256 * 1024, true);
    expect(r.isInput).toBe(false);
    expect(r.target.equals(output)).toBe(true);
  });

  it('fails, never hangs, when the target fails while the matched part is written', async () => {
    const file = csv(100_000);
    const f = stored(file);
    try {
      const target = new Writable({ highWaterMark: 1024, write: (_c, _e, done) => setImmediate(() => done(new Error('disk gone'))) });
      target.on('error', () => undefined);
      const m = new InputMirror(f.fd, file.length, target);
      m.on('error', () => undefined);
      m.write(file.subarray(0, 1_000_000));
      m.write(Buffer.from('different'));
      m.end();
      await expect(finished(m)).rejects.toThrow(/disk gone/);
    } finally {
      f.close();
    }
  });
});
