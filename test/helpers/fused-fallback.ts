/**
 * Run by test/unit/fused-encoder.test.ts in a child process started with
 * `--disallow-code-generation-from-strings`: loads a file through the byte fast path and prints
 * whether the fused encoder could be generated, the counts and a digest of the COPY bytes.
 */
import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import { runCsvPipeline } from '../../src/ingest/csv-pipeline';
import { compileFusedEncoder } from '../../src/ingest/fused-encoder';
import { fusedFallbackCsv, fusedFallbackSpec } from './pipeline';

const hash = createHash('sha256');
const result = await runCsvPipeline(
  fusedFallbackCsv(),
  fusedFallbackSpec(),
  {
    copy: new Writable({
      write: (chunk: Buffer, _e, cb) => {
        hash.update(chunk);
        cb();
      },
    }),
  },
  { fileId: '5f0c6f9e-3b7a-4c1e-9d2a-0123456789ab', copyFormat: 'binary', copyFileId: false },
);
const compiled = compileFusedEncoder([], 44, false).generated;
process.stdout.write(JSON.stringify({ compiled, valid: result.valid, invalid: result.invalid, copy: hash.digest('hex') }));
