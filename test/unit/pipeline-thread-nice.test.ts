import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { PassThrough, Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { closePipelineThreads, DEFAULT_PIPELINE_THREAD_NICE, runCsvPipelineOffThread } from '../../src/ingest/pipeline-thread';
import { specWith } from '../helpers/pipeline';

// SLUICE_PIPELINE_THREAD_NICE: the pipeline thread, and only it, runs at the configured nice value
// while a pipeline runs. Read from /proc/<pid>/task/<tid>/stat (field 19), so Linux only.

const linux = process.platform === 'linux';

/** Field 19 (nice) of each thread of this process, by thread id. */
function threadNices(): Map<number, number> {
  const out = new Map<number, number>();
  for (const tid of readdirSync(`/proc/${process.pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${process.pid}/task/${tid}/stat`, 'utf8');
      // Fields after the command (which may hold spaces) start at field 3.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(Number(tid), Number(fields[19 - 3]));
    } catch {
      // The thread ended meanwhile.
    }
  }
  return out;
}

const sink = () => new Writable({ write: (_c, _e, done) => done() });

/**
 * Starts a pipeline on a fresh thread at `nice` (undefined: the default) and, once it has read
 * rows (so its run has started), returns the nice values of the threads that appeared with it
 * and of the others; then ends the input and waits for the run.
 */
async function whileRunning(nice: number | undefined) {
  await closePipelineThreads();
  const before = new Set(threadNices().keys());
  const input = new PassThrough();
  let progressed: () => void = () => undefined;
  const started = new Promise<void>((resolve) => {
    progressed = resolve;
  });
  const run = runCsvPipelineOffThread(
    input,
    specWith({ id: { type: 'integer' } }),
    { copy: sink() },
    { fileId: '6f1c3a52-8d0e-4b8a-9c61-0a4f3e2b1d77', copyFormat: 'binary', progressEveryRows: 1, onProgress: () => progressed() },
    nice === undefined ? {} : { nice },
  );
  // More than the dialect sniffer reads before the first row is parsed.
  const rows = Array.from({ length: 20_000 }, (_, i) => `${i}\n`).join('');
  input.write(`id\n${rows}`);
  await started;
  const now = threadNices();
  const fresh = [...now].filter(([tid]) => !before.has(tid)).map(([, n]) => n);
  const others = [...now].filter(([tid]) => before.has(tid)).map(([, n]) => n);
  input.end();
  const result = await run;
  return { fresh, others, rows: result.total };
}

afterEach(() => closePipelineThreads());

describe.runIf(linux)('the pipeline thread nice value', () => {
  const own = os.getPriority(0);

  it(`is ${DEFAULT_PIPELINE_THREAD_NICE} by default while a pipeline runs; the other threads keep theirs`, async () => {
    const { fresh, others, rows } = await whileRunning(undefined);
    expect(rows).toBe(20_000);
    expect(fresh).toContain(Math.max(DEFAULT_PIPELINE_THREAD_NICE, own));
    expect(others.every((n) => n === own)).toBe(true);
  });

  it('is the configured value', async () => {
    const { fresh, others } = await whileRunning(15);
    expect(fresh).toContain(Math.max(15, own));
    expect(others.every((n) => n === own)).toBe(true);
  });

  it('0 leaves every thread at the process nice value', async () => {
    const { fresh, others } = await whileRunning(0);
    expect(fresh.length).toBeGreaterThan(0);
    expect([...fresh, ...others].every((n) => n === own)).toBe(true);
  });
});
