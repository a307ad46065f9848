import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import {
  closePipelineThreads,
  DEFAULT_PIPELINE_THREAD_NICE,
  type PipelineThreadPriority,
  pipelineThreadsYield,
  runCsvPipelineOffThread,
} from '../../src/ingest/pipeline-thread';
import { specWith } from '../helpers/pipeline';
import { repoRoot } from '../helpers/process';
import { threadNices } from '../helpers/threads';

// SLUICE_PIPELINE_THREAD_NICE: the pipeline thread, and only it, runs at the configured nice value
// while a pipeline runs. Read from /proc/<pid>/task/<tid>/stat (field 19), so Linux only.

const linux = process.platform === 'linux';

const sink = () => new Writable({ write: (_c, _e, done) => done() });

/**
 * Starts a pipeline on a fresh thread with `priority` and, once it has read rows (so its run has
 * started), returns the nice values of the threads that appeared with it and of the others (and,
 * after `meanwhile` ran, those of the new threads again, and once the run ended, the nice
 * values the new threads still alive have); then ends the input and waits for the run.
 */
async function whileRunning(priority: PipelineThreadPriority, meanwhile?: () => void) {
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
    priority,
  );
  // More than the dialect sniffer reads before the first row is parsed.
  const rows = Array.from({ length: 20_000 }, (_, i) => `${i}\n`).join('');
  input.write(`id\n${rows}`);
  await started;
  const now = threadNices();
  const fresh = [...now].filter(([tid]) => !before.has(tid)).map(([, n]) => n);
  const others = [...now].filter(([tid]) => before.has(tid)).map(([, n]) => n);
  meanwhile?.();
  const then = threadNices();
  const freshThen = [...then].filter(([tid]) => !before.has(tid)).map(([, n]) => n);
  input.end();
  const result = await run;
  // The pool takes the thread back (or ends it) as the run's promise settles.
  await new Promise((resolve) => setTimeout(resolve, 50));
  const after = [...threadNices()].filter(([tid]) => !before.has(tid)).map(([, n]) => n);
  return { fresh, others, freshThen, after, rows: result.total };
}

afterEach(() => closePipelineThreads());

describe.runIf(linux)('the pipeline thread nice value', () => {
  const own = os.getPriority(0);

  it(`is ${DEFAULT_PIPELINE_THREAD_NICE} by default while a pipeline runs; the other threads keep theirs`, async () => {
    const { fresh, others, rows } = await whileRunning({});
    expect(rows).toBe(20_000);
    expect(fresh).toContain(Math.max(DEFAULT_PIPELINE_THREAD_NICE, own));
    expect(others.every((n) => n === own)).toBe(true);
  });

  it('is the configured value', async () => {
    const { fresh, others } = await whileRunning({ nice: 15 });
    expect(fresh).toContain(Math.max(15, own));
    expect(others.every((n) => n === own)).toBe(true);
  });

  it('0 leaves every thread at the process nice value', async () => {
    const { fresh, others } = await whileRunning({ nice: 0 });
    expect(fresh.length).toBeGreaterThan(0);
    expect([...fresh, ...others].every((n) => n === own)).toBe(true);
  });

  it('with yieldOnRequest: the process priority until the API has a request, then the nice value; back (or ended) after the run', async () => {
    const raised = Math.max(15, own);
    const { fresh, others, freshThen, after, rows } = await whileRunning({ nice: 15, yieldOnRequest: true }, () => pipelineThreadsYield());
    expect(rows).toBe(20_000);
    expect(fresh.length).toBeGreaterThan(0);
    expect(fresh.every((n) => n === own)).toBe(true);
    expect(others.every((n) => n === own)).toBe(true);
    expect(freshThen).toContain(raised);
    expect(freshThen.filter((n) => n === raised)).toHaveLength(1);
    // Lowered again where permitted, else ended: no thread is left at the raised value.
    if (raised !== own) expect(after).not.toContain(raised);
  });

  it('with yieldOnRequest and no request: the whole run at the process priority', async () => {
    const { fresh, freshThen } = await whileRunning({ nice: 15, yieldOnRequest: true });
    expect([...fresh, ...freshThen].every((n) => n === own)).toBe(true);
  });

  // Root may always lower a nice value; a service (no CAP_SYS_NICE, RLIMIT_NICE 0) may not: then a
  // thread that yielded is ended after its run instead of being reused at the wrong priority.
  const setpriv = spawnSync('setpriv', ['--version']).status === 0;
  it.runIf(process.getuid?.() === 0 && setpriv && own < 15)(
    'where lowering is refused, a thread that yielded is ended after its run; the next run gets a fresh one at the process priority',
    () => {
      const out = spawnSync(
        'setpriv',
        ['--bounding-set=-sys_nice', '--inh-caps=-sys_nice', process.execPath, '--import', 'tsx', path.join(repoRoot, 'test/helpers/nice-refused.ts')],
        { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 },
      );
      expect(out.stderr).toBe('');
      const seen = JSON.parse(out.stdout) as Record<string, unknown>;
      const run = { rows: 20_000, atStart: 0, raised: 1, raisedAliveAfter: 0 };
      expect(seen).toEqual({ lowering: 'refused', first: run, second: run });
    },
  );
});
