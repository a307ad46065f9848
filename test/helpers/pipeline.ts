import { Readable, Writable } from 'node:stream';
import { expect } from 'vitest';
import { compileSpec, type CompiledSpec } from '../../src/modules/specs/spec.compile';

/** Helpers the CSV pipeline tests share (test/unit/csv-pipeline.test.ts, pipeline-thread.test.ts). */

export function compile(raw: unknown, name = 'spec'): CompiledSpec {
  const result = compileSpec(raw, { name, kind: 'DATASET' });
  if (!result.ok) expect.fail(`spec did not compile:\n${JSON.stringify(result.problems, null, 2)}`);
  return result.spec;
}

export function specWith(properties: Record<string, unknown>, required: string[] = Object.keys(properties)): CompiledSpec {
  return compile({ program: 'test', input: { type: 'object', properties, required } });
}

/** Splits `bytes` into chunks of `size` bytes (0 = one chunk) so records and characters straddle boundaries. */
export function chunked(bytes: Buffer, size: number): Readable {
  if (size === 0) return Readable.from([bytes]);
  const parts: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) parts.push(bytes.subarray(i, i + size));
  return Readable.from(parts);
}

/** A Writable that keeps the bytes it receives; `slow` calls back on the next turn (backpressure). */
export class Collect extends Writable {
  parts: Buffer[] = [];
  constructor(slow = false) {
    super({
      highWaterMark: 16 * 1024,
      write: (chunk: Buffer, _enc, done) => {
        this.parts.push(Buffer.from(chunk));
        if (slow) setImmediate(done);
        else done();
      },
    });
  }
  get bytes(): Buffer {
    return Buffer.concat(this.parts);
  }
}

/** A spec of every kind the fused encoder takes, for the fallback test (test/helpers/fused-fallback.ts). */
export function fusedFallbackSpec(): CompiledSpec {
  return specWith(
    {
      d: { type: 'date' },
      n: { type: 'integer', maximum: 100 },
      t: { type: 'string' },
      e: { type: 'string', enum: ['a', 'b'] },
      f: { type: 'boolean' },
      x: { type: 'number' },
    },
    [],
  );
}

/** 3,000 rows in 4 KiB chunks, one in ten refused (n out of range), for fusedFallbackSpec. */
export function fusedFallbackCsv(): Readable {
  const rows = ['d,n,t,e,f,x'];
  for (let i = 0; i < 3000; i++)
    rows.push(`2024-01-${String(1 + (i % 28)).padStart(2, '0')},${i % 10 === 0 ? 101 : i % 100},t${i},${i % 2 ? 'a' : 'b'},${i % 3 ? 'true' : 'no'},${i}.5`);
  return chunked(Buffer.from(`${rows.join('\n')}\n`), 4096);
}
