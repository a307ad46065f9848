import { beforeAll, describe, expect, it } from 'vitest';
import { FileDocument, JobDocument, RegisterSpecDocument, UploadFileDocument, type JobEventFieldsFragment, type SluiceClient } from '../../src/sdk/client';
import { attendanceCsv, attendanceSpec } from '../helpers/attendance';
import { createTestDatabase, startTestApp, type TestApp } from '../helpers/app';
import { collectJobEvents, expectContiguous, FAST_JOBS } from '../helpers/jobs';
import { spawnWorker, type ServiceProcess } from '../helpers/process';

/** Big enough that its load lasts well over the time the test needs to hit it mid-COPY. */
const ROWS = 600_000;
const TABLE = 'ds_attendance_v1';

async function upload(client: SluiceClient, body: string) {
  const { uploadFile } = await client.upload(
    UploadFileDocument,
    { program: 'faults', spec: 'attendance', file: null },
    { file: { body, filename: 'attendance.csv', contentType: 'text/csv' } },
  );
  return uploadFile;
}

async function rowsOf(t: TestApp, fileId: string): Promise<number> {
  const [row] = await t.database.sql`select count(*)::int as n from ${t.database.sql(TABLE)} where _file_id = ${fileId}`;
  return row!['n'] as number;
}

async function stateHistory(t: TestApp, jobId: string): Promise<string[]> {
  const rows = await t.database.sql<{ state: string; attempt: number }[]>`
    select state, attempt from job_events where job_id = ${jobId} and kind = 'STATE' order by seq`;
  return rows.map((r) => `${r.state}@${r.attempt}`);
}

function states(events: JobEventFieldsFragment[]): string[] {
  return events.filter((e) => e.kind === 'STATE').map((e) => `${e.state}@${e.attempt}`);
}

describe('transient database faults', () => {
  let t: TestApp;
  beforeAll(async () => {
    // A stale timeout far beyond the test's wait: the reaper must not be what runs the job again.
    // The job's own COPY is the one hit here: no load during the upload (load-during-upload.test.ts has its faults).
    t = await startTestApp({ ...FAST_JOBS, SLUICE_JOB_STALE_MS: '120000', SLUICE_JOB_RETRY_DELAY_MS: '200', SLUICE_LOAD_DURING_UPLOAD: '0' });
    await t.admin.request(RegisterSpecDocument, { kind: 'EVENT', spec: attendanceSpec });
  });

  it('a COPY whose database session is terminated mid-load runs again and ends SUCCEEDED with exact rows', { timeout: 180_000 }, async () => {
    const up = await upload(t.admin, attendanceCsv(ROWS));
    const done = collectJobEvents(t.admin, up.job.id, { afterSeq: 0, timeoutMs: 60_000 });
    // The load's session, found as an operator would: pg_stat_activity, query like 'COPY%'.
    let pid: number | undefined;
    const until = Date.now() + 60_000;
    while (!pid && Date.now() < until) {
      const [row] = await t.database.sql<{ pid: number }[]>`
        select pid from pg_stat_activity
        where datname = current_database() and pid <> pg_backend_pid() and state = 'active' and query ilike 'copy%'`;
      pid = row?.pid;
    }
    expect(pid, 'no COPY session seen').toBeDefined();
    const [killed] = await t.database.sql`select pg_terminate_backend(${pid!}) as ok`;
    expect(killed!['ok']).toBe(true);

    const events = await done;
    expectContiguous(events);
    expect(states(events)).toEqual(['QUEUED@0', 'RUNNING@1', 'QUEUED@1', 'RUNNING@2', 'SUCCEEDED@2']);
    expect(events.filter((e) => e.terminal)).toHaveLength(1);
    const { job } = await t.admin.request(JobDocument, { id: up.job.id });
    expect(job, JSON.stringify(job)).toMatchObject({ state: 'SUCCEEDED', attempt: 2, error: null, progress: { succeeded: ROWS, failed: 0 } });
    const { file } = await t.admin.request(FileDocument, { id: up.file.id });
    expect(file).toMatchObject({ state: 'SUCCEEDED', rows: { total: ROWS, valid: ROWS, invalid: 0 } });
    expect(await rowsOf(t, up.file.id)).toBe(ROWS);
  });
});

describe('a frozen worker', () => {
  let t: TestApp;
  let databaseUrl: string;
  beforeAll(async () => {
    databaseUrl = (await createTestDatabase()).url;
    t = await startTestApp({ ...FAST_JOBS, SLUICE_ROLE: 'api', SLUICE_LOAD_DURING_UPLOAD: '0' }, { databaseUrl });
    await t.admin.request(RegisterSpecDocument, { kind: 'EVENT', spec: attendanceSpec });
  });

  const worker = (): ServiceProcess => spawnWorker(databaseUrl, t.dataDir);

  it('SIGSTOPped mid-COPY: the other worker takes the job within the bound; after SIGCONT the frozen one writes nothing', { timeout: 180_000 }, async () => {
    const workers = [worker(), worker()];
    try {
      await Promise.all(workers.map((w) => w.waitFor(/job workers started/)));
      const up = await upload(t.admin, attendanceCsv(ROWS));
      let frozen: ServiceProcess | undefined;
      let frozenAt = 0;
      let reassignedAt = 0;
      const events = await collectJobEvents(t.admin, up.job.id, {
        afterSeq: 0,
        timeoutMs: 120_000,
        onEvent: (e) => {
          if (!frozen && e.kind === 'PROGRESS' && e.attempt === 1 && (e.progress.processed ?? 0) > 0) {
            // Rows are streaming, so the worker is inside its fenced COPY transaction. Which
            // worker: the pid in jobs.worker_id (host:pid:random).
            void t.database.sql`select worker_id from jobs where id = ${up.job.id}`.then(([row]) => {
              const pid = Number(String(row!['worker_id']).split(':')[1]);
              frozen = workers.find((w) => w.child.pid === pid);
              frozen!.child.kill('SIGSTOP');
              frozenAt = Date.now();
            });
          }
          if (e.kind === 'STATE' && e.state === 'RUNNING' && e.attempt === 2) reassignedAt = Date.now();
        },
      });
      expect(frozen, 'the job never streamed rows under attempt 1').toBeDefined();
      const live = workers.find((w) => w !== frozen)!;
      expectContiguous(events);
      expect(states(events)).toEqual(['QUEUED@0', 'RUNNING@1', 'QUEUED@1', 'RUNNING@2', 'SUCCEEDED@2']);
      // Bound: stale timeout (1.5 s) + reaper period (0.5 s) + session termination, with slack for a loaded machine.
      expect(reassignedAt - frozenAt).toBeLessThan(15_000);
      expect(live.stdout()).toMatch(/ended a stale worker's database session holding the job's fence/);
      expect(await rowsOf(t, up.file.id)).toBe(ROWS);

      // Woken up, the frozen worker finds its session gone and its attempt fenced out.
      frozen!.child.kill('SIGCONT');
      await frozen!.waitFor(/reassigned while this worker ran it/, 30_000);
      await new Promise((r) => setTimeout(r, 1000));
      expect(await rowsOf(t, up.file.id)).toBe(ROWS);
      expect(await stateHistory(t, up.job.id)).toEqual(['QUEUED@0', 'RUNNING@1', 'QUEUED@1', 'RUNNING@2', 'SUCCEEDED@2']);
      const { job } = await t.admin.request(JobDocument, { id: up.job.id });
      expect(job).toMatchObject({ state: 'SUCCEEDED', attempt: 2, progress: { succeeded: ROWS } });
    } finally {
      for (const w of workers) {
        if (w.child.exitCode === null && w.child.signalCode === null) {
          w.child.kill('SIGCONT');
          w.child.kill('SIGTERM');
          await w.exited;
        }
      }
    }
  });
});
