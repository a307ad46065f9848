import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { runCsvPipeline } from '../../src/ingest/csv-pipeline';
import { planFastColumns } from '../../src/ingest/fast-path';
import { compileFusedEncoder, FUSED_MAX_COLUMNS, fusedPlan } from '../../src/ingest/fused-encoder';
import { checkHeader, compileCellChecks } from '../../src/ingest/row-validator';
import { chunked, fusedFallbackCsv, fusedFallbackSpec, specWith } from '../helpers/pipeline';

const run = promisify(execFile);
const fileId = '5f0c6f9e-3b7a-4c1e-9d2a-0123456789ab';

async function load(csv: Buffer, fastPath: boolean, spec = fusedFallbackSpec()) {
  const hash = createHash('sha256');
  const result = await runCsvPipeline(
    chunked(csv, fastPath ? 4096 : 0),
    spec,
    {
      copy: new Writable({
        write: (chunk: Buffer, _e, cb) => {
          hash.update(chunk);
          cb();
        },
      }),
    },
    { fileId, fastPath, copyFormat: 'binary', copyFileId: false },
  );
  return { valid: result.valid, invalid: result.invalid, copy: hash.digest('hex') };
}

describe('the generated fused encoder', () => {
  it('is not needed: a process that forbids code from strings loads the same rows with the loop encoder', async () => {
    const parts: Buffer[] = [];
    for await (const chunk of fusedFallbackCsv()) parts.push(chunk as Buffer);
    const here = await load(Buffer.concat(parts), true);
    expect(here).toMatchObject({ valid: 2700, invalid: 300 });
    const { stdout } = await run(process.execPath, ['--disallow-code-generation-from-strings', '--import', 'tsx', 'test/helpers/fused-fallback.ts'], {
      timeout: 60_000,
    });
    expect(JSON.parse(stdout)).toEqual({ compiled: false, ...here });
  });

  it('takes a clean line whole, however wide the spec (generated up to FUSED_MAX_COLUMNS, the loop encoder beyond)', () => {
    const kinds = [
      { type: 'string' },
      { type: 'integer', maximum: 100 },
      { type: 'date' },
      { type: 'string', enum: ['a', 'b'] },
      { type: 'boolean' },
      { type: 'number' },
      { type: 'date', dateFormat: 'DD/MM/YY' },
    ];
    const clean = ['t', '42', '2024-02-29', 'b', 'yes', '2.5', '01/03/24'];
    for (const width of [2, 7, FUSED_MAX_COLUMNS, FUSED_MAX_COLUMNS + 1, 50, 200]) {
      const props = Object.fromEntries(Array.from({ length: width }, (_, i) => [`c${i}`, kinds[i % kinds.length]]));
      const spec = specWith(props, []);
      const header = Object.keys(props);
      const checked = checkHeader(spec, header);
      if (!checked.ok) expect.fail('the header does not match');
      const columns = planFastColumns(spec, checked.mapping, compileCellChecks(spec));
      expect(fusedPlan(columns, width, true)).toBe(true);
      const fused = compileFusedEncoder(columns, 44, false);
      expect({ width, generated: fused.generated }).toEqual({ width, generated: width <= FUSED_MAX_COLUMNS });
      const line = Buffer.from(`${header.map((_, i) => clean[i % clean.length]).join(',')}\n`);
      const out = Buffer.alloc(64 * width + 4096);
      const end = fused.encode(line, 0, out, 0, []);
      expect({ width, taken: end > 0, next: fused.next[0] }).toEqual({ width, taken: true, next: line.length });
      // The same line with its last cell out of range is refused whole.
      const bad = Buffer.from(
        `${header.map((_, i) => (i === width - 1 && i % kinds.length === 1 ? '101' : i === width - 1 ? '"q"' : clean[i % clean.length])).join(',')}\n`,
      );
      expect(fused.encode(bad, 0, out, 0, [])).toBe(-1);
    }
  });

  it('writes no enum value into its code: a value that reads as JavaScript is compared as bytes', async () => {
    const payload = "a');globalThis.fusedPwned=1;('";
    const spec = specWith({ e: { type: 'string', enum: [payload, 'b'] }, n: { type: 'integer' } }, []);
    const rows = ['e,n'];
    for (let i = 0; i < 2000; i++) rows.push(`${i % 3 === 0 ? 'c' : i % 2 ? payload : 'b'},${i}`);
    const csv = Buffer.from(`${rows.join('\n')}\n`);
    const fast = await load(csv, true, spec);
    expect((globalThis as { fusedPwned?: number }).fusedPwned).toBeUndefined();
    expect(fast).toEqual(await load(csv, false, spec));
    expect(fast.invalid).toBe(667);
  });
});
