import { createReadStream } from 'node:fs';
import { Writable } from 'node:stream';
import { attendanceSpec, writeAttendanceCsv } from './bench/lib/attendance-data';
import { compileSpec } from './src/modules/specs/spec.compile';
import { runCsvPipeline } from './src/ingest/csv-pipeline';
import { runCsvPipelineOffThread, closePipelineThreads } from './src/ingest/pipeline-thread';
const file = '/tmp/att-1m.csv';
import fs from 'node:fs';
if (!fs.existsSync(file)) await writeAttendanceCsv(file, 1_000_000);
const c = compileSpec(attendanceSpec, { name: 'att', kind: 'EVENT' }); if (!c.ok) throw new Error('spec');
for (const which of (process.env.W ?? 'in,off,in,off').split(',')) {
  let n = 0;
  const sink = new Writable({ write(ch, _e, cb) { n += ch.length; cb(); } });
  const t = performance.now();
  const r = await (which === 'in' ? runCsvPipeline : runCsvPipelineOffThread)(createReadStream(file, { highWaterMark: 256 * 1024 }), c.spec, { copy: sink }, { fileId: '6f1c3a52-8d0e-4b8a-9c61-0a4f3e2b1d77', copyFormat: 'binary' });
  console.log(which, r.valid, n, Math.round(performance.now() - t), 'ms');
}
await closePipelineThreads();
