import { beforeAll, describe, expect, it } from 'vitest';
import {
  FileMergeDocument,
  JobDocument,
  RegisterSpecDocument,
  UploadFileWithModeDocument,
  ValidateFileWithModeDocument,
  UploadNationalProgramWithModeDocument,
  type JobEventFieldsFragment,
} from '../../src/sdk/client';
import { codeOf, createTestDatabase, startTestApp, type TestApp } from '../helpers/app';
import { collectJobEvents, FAST_JOBS } from '../helpers/jobs';
import { zipOf } from '../helpers/zip';
import { spawnWorker, type ServiceProcess } from '../helpers/process';

let databaseUrl: string;
let t: TestApp;

const spec = {
  program: 'crashdim',
  input: {
    type: 'object',
    properties: { code: { type: 'string', shouldNotNull: true, unique: true }, name: { type: 'string' }, size: { type: 'integer' } },
    required: ['code'],
  },
};

beforeAll(async () => {
  databaseUrl = (await createTestDatabase()).url;
  // The API runs in-process without workers; workers are real child processes sharing its storage.
  t = await startTestApp({ ...FAST_JOBS, SLUICE_ROLE: 'api', SLUICE_DRY_RUN_DIFF_TIMEOUT_MS: '500' }, { databaseUrl });
  await t.admin.request(RegisterSpecDocument, { kind: 'DIMENSION', spec });
  for (const program of ['zipa', 'zipb']) await t.admin.request(RegisterSpecDocument, { kind: 'DIMENSION', spec: { ...spec, program } });
});

const worker = (): ServiceProcess => spawnWorker(databaseUrl, t.dataDir);

async function stop(p: ServiceProcess): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill('SIGTERM');
  await p.exited;
}

async function upload(body: string) {
  const { uploadFile } = await t.admin.upload(
    UploadFileWithModeDocument,
    { program: 'crash', spec: 'crashdim', file: null },
    { file: { body, filename: 'crashdim.csv' } },
  );
  return uploadFile;
}

const currentRows = async () =>
  (await t.database.sql`select code, name, size, _file_id, _line, _updated_at from ds_crashdim_v1_current order by code`).map((r) => ({ ...r }));

/** Whether a merge statement into `table` waits for a lock. */
async function mergeWaiting(table = 'ds_crashdim_v1_current'): Promise<boolean> {
  const rows = await t.database.sql`
    select pid from pg_stat_activity
    where datname = current_database() and wait_event_type = 'Lock' and query like ${`insert into "${table}"%`}`;
  return rows.length > 0;
}

async function untilMergeWaits(table: string, w: ServiceProcess): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!(await mergeWaiting(table))) {
    if (Date.now() > deadline) throw new Error(`the merge into ${table} never waited on the lock\nworker stdout:\n${w.stdout()}\nstderr:\n${w.stderr()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('merge crash safety', () => {
  it('a worker SIGKILLed mid-merge leaves the current table exactly as before; the retried job merges the file once', async () => {
    const w1 = worker();
    let w2: ServiceProcess | undefined;
    const blocker = await t.database.sql.reserve();
    try {
      await w1.waitFor(/job workers started/);
      const base = await upload('code,name,size\nA,Alpha,1\nB,Beta,2\nC,Gamma,3\n');
      await collectJobEvents(t.admin, base.job.id, { afterSeq: 0 });
      const before = await currentRows();
      expect(before.map((r) => r['code'])).toEqual(['A', 'B', 'C']);

      // Holding row A makes the merge's upsert wait on it: the worker is then inside the merge,
      // after its COPY, in its one transaction.
      await blocker`begin`;
      await blocker`select code from ds_crashdim_v1_current where code = 'A' for update`;
      const corrected = await upload('code,name,size\nA,Alpha,10\nB,Beta,2\nD,Delta,4\n');
      await untilMergeWaits('ds_crashdim_v1_current', w1);
      w1.child.kill('SIGKILL');
      expect((await w1.exited).signal).toBe('SIGKILL');
      expect(await currentRows()).toEqual(before);
      const { file: during } = await t.admin.request(FileMergeDocument, { id: corrected.file.id });
      expect(during.merge).toBeNull();

      // A new worker (as after a restart) picks the job up; the dead worker's transaction can
      // only roll back once the lock it waits for is released.
      w2 = worker();
      await blocker`rollback`;
      expect(await currentRows()).toEqual(before);
      const events: JobEventFieldsFragment[] = await collectJobEvents(t.admin, corrected.job.id, { afterSeq: 0, timeoutMs: 60_000 });
      const states = events.filter((e) => e.kind === 'STATE').map((e) => `${e.state}@${e.attempt}`);
      expect(states).toEqual(['QUEUED@0', 'RUNNING@1', 'QUEUED@1', 'RUNNING@2', 'SUCCEEDED@2']);
      const { job } = await t.admin.request(JobDocument, { id: corrected.job.id });
      expect(job.result).toMatchObject({ merge: { inserted: 1, updated: 1, unchanged: 1, deleted: 0 } });
      const { file } = await t.admin.request(FileMergeDocument, { id: corrected.file.id });
      expect(file).toMatchObject({ state: 'SUCCEEDED', merge: { inserted: 1, updated: 1, unchanged: 1, deleted: 0 } });
      const after = await currentRows();
      expect(after.map((r) => [r['code'], r['name'], Number(r['size']), r['_file_id'], r['_line']])).toEqual([
        ['A', 'Alpha', 10, corrected.file.id, 2],
        ['B', 'Beta', 2, base.file.id, 3],
        ['C', 'Gamma', 3, base.file.id, 4],
        ['D', 'Delta', 4, corrected.file.id, 4],
      ]);
      // The file's history holds its rows once.
      const [history] = await t.database.sql`select count(*)::int as n from ds_crashdim_v1 where _file_id = ${corrected.file.id}`;
      expect(history!['n']).toBe(3);
      expect(w2.stdout()).toContain(corrected.job.id);
    } finally {
      await blocker`rollback`.catch(() => undefined);
      blocker.release();
      await stop(w1).catch(() => undefined);
      if (w2) await stop(w2);
    }
  });

  it('a ZIP job killed after one CSV merged: the retry does not merge that CSV again (a later change to its rows stays)', async () => {
    const w1 = worker();
    let w2: ServiceProcess | undefined;
    const blocker = await t.database.sql.reserve();
    try {
      await w1.waitFor(/job workers started/);
      const seed = await t.admin.upload(
        UploadNationalProgramWithModeDocument,
        { file: null },
        {
          file: {
            body: await zipOf([
              { name: 'zipa.csv', body: 'code,name\nK,old\n' },
              { name: 'zipb.csv', body: 'code,name\nX,x\n' },
            ]),
            filename: 'seed.zip',
          },
        },
      );
      await collectJobEvents(t.admin, seed.uploadNationalProgram.job.id, { afterSeq: 0 });

      await blocker`begin`;
      await blocker`select code from ds_zipb_v1_current where code = 'X' for update`;
      const { uploadNationalProgram: up } = await t.admin.upload(
        UploadNationalProgramWithModeDocument,
        { file: null },
        {
          file: {
            body: await zipOf([
              { name: 'zipa.csv', body: 'code,name\nK,zip\nL,new\n' },
              { name: 'zipb.csv', body: 'code,name\nX,changed\n' },
            ]),
            filename: 'p.zip',
          },
        },
      );
      // zipa.csv committed its merge; zipb.csv waits inside its own.
      await untilMergeWaits('ds_zipb_v1_current', w1);
      w1.child.kill('SIGKILL');
      await w1.exited;
      await blocker`rollback`;
      // A later change to a row the committed CSV wrote (as another file's merge would make).
      await t.database.sql`update ds_zipa_v1_current set name = 'later' where code = 'K'`;

      w2 = worker();
      await collectJobEvents(t.admin, up.job.id, { afterSeq: 0, timeoutMs: 60_000 });
      const { file } = await t.admin.request(FileMergeDocument, { id: up.file.id });
      const byName = Object.fromEntries(file.children.map((c) => [c.fileName, c]));
      expect(file.state).toBe('SUCCEEDED');
      // The counts of the attempt that merged it, and its rows left as they are now.
      expect(byName['zipa.csv']!.merge).toEqual({ inserted: 1, updated: 1, unchanged: 0, deleted: 0 });
      expect(byName['zipb.csv']!.merge).toEqual({ inserted: 0, updated: 1, unchanged: 0, deleted: 0 });
      const a = await t.database.sql`select code, name from ds_zipa_v1_current order by code`;
      expect(a.map((r) => [r['code'], r['name']])).toEqual([
        ['K', 'later'],
        ['L', 'new'],
      ]);
      const b = await t.database.sql`select code, name from ds_zipb_v1_current order by code`;
      expect(b.map((r) => [r['code'], r['name']])).toEqual([['X', 'changed']]);
    } finally {
      await blocker`rollback`.catch(() => undefined);
      blocker.release();
      await stop(w1).catch(() => undefined);
      if (w2) await stop(w2);
    }
  });
});

describe('dry-run bounds', () => {
  it('a diff that cannot finish within SLUICE_DRY_RUN_DIFF_TIMEOUT_MS ends with REQUEST_TIMEOUT (DIFF_TIMEOUT); nothing is kept', async () => {
    const blocker = await t.database.sql.reserve();
    try {
      // Nothing can read the current table while this lock is held: the diff waits, and is cancelled.
      await blocker`begin`;
      await blocker`lock table ds_crashdim_v1_current in access exclusive mode`;
      const res = await t.admin.uploadRaw(
        ValidateFileWithModeDocument,
        { spec: 'crashdim', file: null, mode: 'MERGE' },
        { file: { body: 'code,name\nA,x\n', filename: 'd.csv' } },
      );
      expect(codeOf(res.body), JSON.stringify(res.body)).toBe('REQUEST_TIMEOUT');
      expect(res.body.errors?.[0]?.extensions).toMatchObject({ reason: 'DIFF_TIMEOUT', timeoutMs: 500 });
      await blocker`rollback`;
      const ok = await t.admin.upload(
        ValidateFileWithModeDocument,
        { spec: 'crashdim', file: null, mode: 'MERGE' },
        { file: { body: 'code,name\nA,x\n', filename: 'd.csv' } },
      );
      expect(ok.validateFile.diff).toMatchObject({ updated: 1 });
    } finally {
      await blocker`rollback`.catch(() => undefined);
      blocker.release();
    }
  });
});
