/**
 * Run by test/unit/pipeline-thread-nice.test.ts in a process that may not lower a nice value (no
 * CAP_SYS_NICE, RLIMIT_NICE 0, as a service usually runs): two pipelines in a row whose thread
 * yields mid-run (yieldOnRequest, then pipelineThreadsYield). Prints what it saw as JSON.
 */
import os from 'node:os';
import { PassThrough, Writable } from 'node:stream';
import { closePipelineThreads, pipelineThreadsYield, runCsvPipelineOffThread } from '../../src/ingest/pipeline-thread';
import { specWith } from './pipeline';
import { threadNices } from './threads';

const NICE = 15;

async function once() {
  const input = new PassThrough();
  let progressed: () => void = () => undefined;
  const started = new Promise<void>((resolve) => {
    progressed = resolve;
  });
  const run = runCsvPipelineOffThread(
    input,
    specWith({ id: { type: 'integer' } }),
    { copy: new Writable({ write: (_c, _e, done) => done() }) },
    { fileId: '6f1c3a52-8d0e-4b8a-9c61-0a4f3e2b1d77', copyFormat: 'binary', progressEveryRows: 1, onProgress: () => progressed() },
    { nice: NICE, yieldOnRequest: true },
  );
  input.write(`id\n${Array.from({ length: 20_000 }, (_, i) => `${i}\n`).join('')}`);
  await started;
  const atStart = [...threadNices().values()].filter((n) => n === NICE).length;
  pipelineThreadsYield();
  const raised = [...threadNices()].filter(([, n]) => n === NICE).map(([tid]) => tid);
  input.end();
  const rows = (await run).total;
  await new Promise((resolve) => setTimeout(resolve, 100));
  const alive = new Set(threadNices().keys());
  return { rows, atStart, raised: raised.length, raisedAliveAfter: raised.filter((tid) => alive.has(tid)).length };
}

let lowering = 'refused';
try {
  os.setPriority(0, 1);
  os.setPriority(0, 0);
  lowering = 'permitted';
} catch {
  // As expected here.
}
const first = await once();
const second = await once();
await closePipelineThreads();
process.stdout.write(`${JSON.stringify({ lowering, first, second })}\n`);
