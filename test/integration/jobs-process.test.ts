import { beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/db/embedded';
import { JobDocument, RunDiagnosticJobDocument, SluiceClient, IssueTokenDocument, type JobEventFieldsFragment } from '../../src/sdk/client';
import { ADMIN_ID, ADMIN_SECRET, JWT_SECRET, createTestDatabase, startTestApp } from '../helpers/app';
import { collectJobEvents, expectContiguous, FAST_JOBS } from '../helpers/jobs';
import { spawnService, type ServiceProcess } from '../helpers/process';

let databaseUrl: string;
beforeAll(async () => {
  databaseUrl = (await createTestDatabase()).url;
});

function serviceEnv(extra: Record<string, string>): Record<string, string> {
  return {
    NODE_ENV: 'test',
    DATABASE_URL: databaseUrl,
    HOST: '127.0.0.1',
    LOG_LEVEL: 'info',
    SLUICE_JWT_SECRET: JWT_SECRET,
    SLUICE_ADMIN_CLIENT_ID: ADMIN_ID,
    SLUICE_ADMIN_CLIENT_SECRET: ADMIN_SECRET,
    SLUICE_DATA_DIR: '/tmp/sluice-unused-data-dir',
    SLUICE_SHUTDOWN_TIMEOUT_MS: '2000',
    ...FAST_JOBS,
    ...extra,
  };
}

async function adminClient(url: string): Promise<SluiceClient> {
  const anon = new SluiceClient({ url });
  const { issueToken } = await anon.request(IssueTokenDocument, { clientId: ADMIN_ID, clientSecret: ADMIN_SECRET });
  return anon.withToken(issueToken.accessToken);
}

async function stop(p: ServiceProcess): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill('SIGTERM');
  await p.exited;
}

describe('roles split over processes on one database', () => {
  it('a job submitted to an api process is run by a worker process; the api-side subscriber sees every event in order', async () => {
    const port = await freePort();
    const api = spawnService(serviceEnv({ SLUICE_ROLE: 'api', PORT: String(port) }));
    const worker = spawnService(serviceEnv({ SLUICE_ROLE: 'worker', PORT: '0' }));
    try {
      await api.waitFor(/Sluice is listening/);
      await worker.waitFor(/job workers started/);
      expect(api.stdout()).not.toMatch(/job workers started/);
      const admin = await adminClient(`http://127.0.0.1:${port}`);
      const { runDiagnosticJob: job } = await admin.request(RunDiagnosticJobDocument, { input: { to: 20, stepMs: 20 } });
      const events = await collectJobEvents(admin, job.id, { afterSeq: 0 });
      expectContiguous(events);
      expect(events[0]).toMatchObject({ seq: 1, state: 'QUEUED' });
      expect(events.filter((e) => e.kind === 'STATE').map((e) => e.state)).toEqual(['QUEUED', 'RUNNING', 'SUCCEEDED']);
      expect(events.at(-1)).toMatchObject({ terminal: true, progress: { processed: 20 } });
      // The worker process logged the job; the api process has no workers.
      expect(worker.stdout()).toContain(job.id);
      await admin.close();
    } finally {
      await Promise.all([stop(api), stop(worker)]);
    }
  });
});

describe('crash safety', () => {
  it('a worker killed with SIGKILL mid-job: another worker finishes it, one terminal state, subscribers see it all', async () => {
    // The API runs in-process without workers; workers are real child processes.
    const t = await startTestApp({ ...FAST_JOBS, SLUICE_ROLE: 'api' }, { databaseUrl });
    const w1 = spawnService(serviceEnv({ SLUICE_ROLE: 'worker', PORT: '0' }));
    let w2: ServiceProcess | undefined;
    try {
      await w1.waitFor(/job workers started/);
      const { runDiagnosticJob: job } = await t.admin.request(RunDiagnosticJobDocument, { input: { to: 30, stepMs: 50 } });
      let killed = false;
      const seen: JobEventFieldsFragment[] = [];
      const events = await collectJobEvents(t.admin, job.id, {
        afterSeq: 0,
        timeoutMs: 45_000,
        onEvent: (e) => {
          seen.push(e);
          if (!killed && e.kind === 'PROGRESS' && (e.progress.processed ?? 0) >= 5) {
            killed = true;
            w1.child.kill('SIGKILL');
            // A new worker process (as after a restart) picks the job up once it is reaped.
            w2 = spawnService(serviceEnv({ SLUICE_ROLE: 'worker', PORT: '0' }));
          }
        },
      });
      expect(killed).toBe(true);
      expect((await w1.exited).signal).toBe('SIGKILL');
      expectContiguous(events);
      const states = events.filter((e) => e.kind === 'STATE').map((e) => `${e.state}@${e.attempt}`);
      expect(states).toEqual(['QUEUED@0', 'RUNNING@1', 'QUEUED@1', 'RUNNING@2', 'SUCCEEDED@2']);
      expect(events.filter((e) => e.terminal)).toHaveLength(1);
      const { job: done } = await t.admin.request(JobDocument, { id: job.id });
      expect(done).toMatchObject({ state: 'SUCCEEDED', attempt: 2, result: { counted: 30, attempt: 2 } });
      expect(w2!.stdout()).toContain(job.id);
    } finally {
      await stop(w1).catch(() => undefined);
      if (w2) await stop(w2);
    }
  });
});
