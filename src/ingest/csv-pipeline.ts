import type { Readable } from 'node:stream';
import type { CompiledSpec } from './contract';
import { AbortError } from './csv-errors';
import { PipelineRun } from './pipeline-run';
import type { CsvPipelineOptions, CsvPipelineResult, CsvPipelineSinks } from './pipeline-types';

export {
  AbortError,
  HeaderError,
  MAX_MESSAGE_LENGTH,
  MixedLineEndingsError,
  NotCsvError,
  problemsMessage,
  RecordTooLargeError,
  UnsupportedEncodingError,
} from './csv-errors';
export type { CsvPipelineCounts, CsvPipelineOptions, CsvPipelineResult, CsvPipelineSinks, InvalidRow } from './pipeline-types';
export { DEFAULT_MAX_RECORD_LENGTH, DEFAULT_PROGRESS_EVERY_ROWS } from './pipeline-run';

/**
 * Streaming CSV -> validated COPY text: the API (runCsvPipeline, its options, result and errors).
 * The run itself is pipeline-run.ts, its byte fast path byte-scanner.ts, the shared text helpers
 * (sniffing, marked decoding, line breaks) csv-text.ts.
 *
 * Parser choice, measured by bench/csv-pipeline.bench.ts (1M rows x 8 columns, 45 MiB, Node 20):
 * papaparse's core `Parser` driven chunk by chunk parses ~2.4M rows/s; fast-csv ~0.25M rows/s
 * (one 'data' event and object per row). The whole pipeline here (parse + validation + 3-column
 * unique key + COPY text) runs at ~430-460k rows/s, about 1.8x fast-csv's parse alone.
 * The core `Parser` takes a whole chunk per call (a `String.split` fast path when the chunk has
 * no quote) and returns an array of rows. papaparse's own Node streamer is not used: it decodes
 * each Buffer separately (breaking UTF-8 characters split across chunks) and counts no bytes.
 */

/**
 * Reads a CSV from `input` (bytes, UTF-8, optional BOM, LF/CRLF/CR, RFC 4180 quoting), validates
 * every record against `spec`, writes valid rows to `sinks.copy` (and `sinks.validCsv`) and reports
 * invalid ones. Memory stays flat in the file size except for the unique-key set (see below).
 * Bytes that are not valid UTF-8 make their record an INVALID_UTF8 row error (never U+FFFD in a
 * stored value). Rejects with NotCsvError or UnsupportedEncodingError (from the first SNIFF_BYTES),
 * MixedLineEndingsError, HeaderError, RecordTooLargeError, AbortError, or a sink's error.
 */
export async function runCsvPipeline(input: Readable, spec: CompiledSpec, sinks: CsvPipelineSinks, opts: CsvPipelineOptions): Promise<CsvPipelineResult> {
  const run = new PipelineRun(spec, sinks, opts);
  const { signal } = opts;
  if (signal?.aborted) {
    input.destroy();
    throw new AbortError(signal.reason);
  }
  // Why destroy: a stalled upload would otherwise keep `for await` waiting after the abort.
  const onAbort = () => input.destroy(new AbortError(signal?.reason));
  signal?.addEventListener('abort', onAbort, { once: true });
  const detachSinks = run.watchSinks();
  try {
    for await (const chunk of input as AsyncIterable<Buffer | string>) {
      if (signal?.aborted) throw new AbortError(signal.reason);
      if (typeof chunk === 'string') {
        // A stream with setEncoding() delivers text: count its UTF-8 bytes and go the string way.
        run.counts.bytes += Buffer.byteLength(chunk);
        await run.feedText(chunk);
      } else {
        run.counts.bytes += chunk.byteLength;
        await run.feedRaw(chunk);
      }
    }
    await run.finish();
    return run.result();
  } finally {
    signal?.removeEventListener('abort', onAbort);
    detachSinks();
  }
}
