import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/db/embedded';
import { IssueTokenDocument, MeDocument, RegisterSpecDocument, RequestUploadUrlDocument, SluiceClient } from '../../src/sdk/client';
import { ADMIN_ID, ADMIN_SECRET, createTestDatabase, JWT_SECRET } from '../helpers/app';
import { attendanceSpec } from '../helpers/attendance';
import { FAST_JOBS } from '../helpers/jobs';
import { repoRoot, spawnService, type ServiceProcess } from '../helpers/process';

const dirs: string[] = [];
const running: ServiceProcess[] = [];
afterAll(async () => {
  for (const p of running) if (p.child.exitCode === null) p.child.kill('SIGKILL');
  for (const d of dirs) await fs.rm(d, { recursive: true, force: true });
});

/** Starts the service as a child process (stdout is a pipe, not a terminal) and returns its URL. */
async function start(extra: Record<string, string> = {}): Promise<{ p: ServiceProcess; url: string }> {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-logs-'));
  dirs.push(dataDir);
  const port = await freePort();
  const p = spawnService({
    ...FAST_JOBS,
    DATABASE_URL: (await createTestDatabase()).url,
    PORT: String(port),
    HOST: '127.0.0.1',
    SLUICE_DATA_DIR: dataDir,
    SLUICE_JWT_SECRET: JWT_SECRET,
    SLUICE_ADMIN_CLIENT_ID: ADMIN_ID,
    SLUICE_ADMIN_CLIENT_SECRET: ADMIN_SECRET,
    LOG_LEVEL: 'info',
    ...extra,
  });
  running.push(p);
  await p.waitFor(/Sluice is listening/, 90_000);
  return { p, url: `http://127.0.0.1:${port}` };
}

interface AccessLine {
  msg: string;
  http: { method: string; path: string; route: string; operation?: string; clientId?: string; status: number; durationMs: number; aborted: boolean };
}

async function stopAndRead(p: ServiceProcess): Promise<string> {
  p.child.kill('SIGTERM');
  expect((await p.exited).code, p.stderr()).toBe(0);
  return p.stdout();
}

describe('logs of the service process', () => {
  it('JSON when stdout is not a terminal: one access line per request with method, path, operation, status, duration and client; never a token or secret', async () => {
    const { p, url } = await start();
    const anon = new SluiceClient({ url });
    const { issueToken } = await anon.request(IssueTokenDocument, { clientId: ADMIN_ID, clientSecret: ADMIN_SECRET });
    const admin = anon.withToken(issueToken.accessToken);
    await admin.request(MeDocument);
    await admin.request(RegisterSpecDocument, { kind: 'EVENT', spec: attendanceSpec });
    const body = 'date,school_id,present\n01/03/23,s1,10\n';
    const { requestUploadUrl: u } = await admin.request(RequestUploadUrlDocument, {
      input: { fileName: 'a.csv', program: 'state_prog', spec: 'attendance', size: body.length, sha256: createHash('sha256').update(body).digest('hex') },
    });
    const signedToken = new URL(u.url).searchParams.get('token')!;
    expect(signedToken.length).toBeGreaterThan(20);
    const put = await fetch(u.url, { method: 'PUT', headers: Object.fromEntries(u.headers.map((h) => [h.name, h.value])), body });
    expect(put.status).toBe(200);
    // A refused token in the query and a bad bearer token stay out of the logs as well.
    expect((await fetch(`${url}/uploads/${u.fileId}?token=forged-token-value-123456`, { method: 'PUT', body })).status).toBeGreaterThanOrEqual(400);
    await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer not-a-real-token-987654' },
      body: JSON.stringify({ query: 'query Mine { me { clientId } }' }),
    });
    expect((await fetch(`${url}/readyz?probe=secret-probe-arg`)).status).toBe(200);
    expect((await fetch(`${url}/files/${u.fileId}/errors.csv`, { headers: { authorization: `Bearer ${issueToken.accessToken}` } })).status).toBe(404);
    await anon.close();

    const out = await stopAndRead(p);
    const lines = out.split('\n').filter((l) => l.startsWith('{'));
    const records = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(records.length).toBeGreaterThan(5);
    const access = records.filter((r) => r['http']) as unknown as AccessLine[];
    const find = (pred: (a: AccessLine['http']) => boolean) => access.filter((a) => pred(a.http));

    const issue = find((a) => a.operation === 'IssueToken');
    expect(issue, out).toHaveLength(1);
    expect(issue[0]!.http).toMatchObject({ method: 'POST', path: '/graphql', route: '/graphql', status: 200, aborted: false });
    expect(issue[0]!.http.clientId).toBeUndefined();
    expect(issue[0]!.http.durationMs).toBeGreaterThanOrEqual(0);
    expect(find((a) => a.operation === 'Me')[0]?.http, out).toMatchObject({ method: 'POST', path: '/graphql', status: 200, clientId: ADMIN_ID });
    expect(find((a) => a.operation === 'RegisterSpec')[0]?.http, out).toMatchObject({ clientId: ADMIN_ID });
    expect(find((a) => a.operation === 'RequestUploadUrl')[0]?.http, out).toMatchObject({ clientId: ADMIN_ID, status: 200 });
    expect(find((a) => a.operation === 'Mine')[0]?.http, out).toMatchObject({ status: 200 });
    expect(find((a) => a.operation === 'Mine')[0]?.http.clientId).toBeUndefined();
    const puts = find((a) => a.method === 'PUT');
    expect(puts.map((a) => [a.http.path, a.http.route, a.http.status])).toEqual([
      [`/uploads/${u.fileId}`, '/uploads/:fileId', 200],
      [`/uploads/${u.fileId}`, '/uploads/:fileId', puts[1]!.http.status],
    ]);
    expect(find((a) => a.path === '/readyz')[0]?.http).toMatchObject({ method: 'GET', status: 200, route: '/readyz' });
    expect(find((a) => a.route === '/files/:id/errors.csv')[0]?.http).toMatchObject({ status: 404, clientId: ADMIN_ID });
    for (const a of access) expect(a.msg).toContain(`${a.http.method} ${a.http.path}`);
    // One line per request: IssueToken, Me, RegisterSpec, RequestUploadUrl, 2 PUTs, Mine, readyz, errors.csv.
    expect(access.filter((a) => a.http.path !== '/healthz')).toHaveLength(9);

    for (const secret of [
      issueToken.accessToken,
      signedToken,
      'forged-token-value',
      'not-a-real-token',
      ADMIN_SECRET,
      JWT_SECRET,
      'secret-probe-arg',
      'Bearer',
    ]) {
      expect(out.includes(secret), `stdout contains ${secret}`).toBe(false);
      expect(p.stderr().includes(secret), `stderr contains ${secret}`).toBe(false);
    }
  });

  it('SLUICE_LOG_FORMAT=pretty writes human lines (pino-pretty) even to a pipe', async () => {
    const { p, url } = await start({ SLUICE_LOG_FORMAT: 'pretty' });
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
    const out = await stopAndRead(p);
    expect(out).toMatch(/^\[\d{2}:\d{2}:\d{2}\.\d{3}\] INFO: Sluice is listening$/m);
    expect(out).toMatch(/^\[\d{2}:\d{2}:\d{2}\.\d{3}\] INFO: GET \/readyz 200 [\d.]+ ms$/m);
    expect(out.split('\n').some((l) => l.startsWith('{"level"'))).toBe(false);
  });

  it('SLUICE_LOG_FORMAT unset (auto): pretty lines when stdout is a terminal (run under script(1) for a pty)', async () => {
    const hasScript = spawnSync('script', ['--version'], { stdio: 'ignore' }).status === 0;
    expect(hasScript, 'util-linux script(1) gives the service a terminal here').toBe(true);
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-logs-tty-'));
    dirs.push(dataDir);
    const port = await freePort();
    const env = {
      PATH: process.env['PATH'] ?? '',
      HOME: dataDir,
      DATABASE_URL: (await createTestDatabase()).url,
      PORT: String(port),
      HOST: '127.0.0.1',
      SLUICE_DATA_DIR: dataDir,
      SLUICE_JWT_SECRET: JWT_SECRET,
      SLUICE_ADMIN_CLIENT_ID: ADMIN_ID,
      SLUICE_ADMIN_CLIENT_SECRET: ADMIN_SECRET,
      LOG_LEVEL: 'info',
    };
    const child = spawn('script', ['-qfec', `${JSON.stringify(process.execPath)} --import tsx src/main.ts`, '/dev/null'], {
      cwd: repoRoot,
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
    try {
      for (let i = 0; i < 900 && !/Sluice is listening/.test(out) && child.exitCode === null; i++) await new Promise((r) => setTimeout(r, 100));
      expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);
      for (let i = 0; i < 50 && !/GET \/readyz 200/.test(out); i++) await new Promise((r) => setTimeout(r, 100));
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
    const plain = out.replace(/\x1b\[[0-9;]*m/g, '').replace(/\r/g, '');
    expect(plain, out).toMatch(/^\[\d{2}:\d{2}:\d{2}\.\d{3}\] INFO: Sluice is listening$/m);
    expect(plain).toMatch(/INFO: GET \/readyz 200 [\d.]+ ms$/m);
    expect(plain).not.toMatch(/^\{"level"/m);
  });

  it('refuses an unknown SLUICE_LOG_FORMAT at start', async () => {
    const p = spawnService({ SLUICE_LOG_FORMAT: 'xml' });
    running.push(p);
    expect((await p.exited).code).toBe(1);
    expect(p.stderr()).toMatch(/SLUICE_LOG_FORMAT/);
  });
});
