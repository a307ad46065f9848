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
