import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import postgres from 'postgres';
import { freePort } from '../../src/db/embedded';
import { DEFAULT_EMBEDDED_PG_PORT } from '../../src/env';
import { IssueTokenDocument, MeDocument, SluiceClient } from '../../src/sdk/client';
import { spawnService } from '../helpers/process';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await fs.rm(d, { recursive: true, force: true });
});

/** Holds 127.0.0.1:`port` until released (if another process holds it already, that is as good). */
async function occupy(port: number): Promise<{ release(): Promise<void> }> {
  const server = net.createServer();
  const held = await new Promise<boolean>((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => resolve(true));
  });
  return { release: () => new Promise<void>((resolve) => (held ? server.close(() => resolve()) : resolve())) };
}

/** Runs `select 1` through a psql-style URL the banner printed. */
async function canQuery(url: string): Promise<boolean> {
  const sql = postgres(url, { max: 1, onnotice: () => undefined });
  try {
    const [row] = await sql<{ one: number }[]>`select 1 as one`;
    return row?.one === 1;
  } finally {
    await sql.end();
  }
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

describe('the service as a process', () => {
  it('exits 1 at start listing every configuration problem', async () => {
    const p = spawnService({ PORT: 'abc', SLUICE_ROLE: 'boss', SLUICE_JWT_SECRET: 'short' });
    const { code } = await p.exited;
    expect(code).toBe(1);
    expect(p.stderr()).toMatch(/Invalid configuration/);
    for (const name of ['PORT', 'SLUICE_ROLE', 'SLUICE_JWT_SECRET']) expect(p.stderr()).toContain(name);
  });

  it('in production, exits 1 naming a JWT secret without entropy (32 spaces)', async () => {
    const p = spawnService({ NODE_ENV: 'production', SLUICE_JWT_SECRET: ' '.repeat(32), DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' });
    const { code } = await p.exited;
    expect(code, p.stderr()).toBe(1);
    expect(p.stderr()).toMatch(/Invalid configuration/);
    expect(p.stderr()).toMatch(/SLUICE_JWT_SECRET: is only whitespace/);
  });

  it('with no DATABASE_URL: starts embedded PostgreSQL, prints a generated admin secret once, and SIGTERM drains and exits 0', async () => {
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-proc-'));
    await fs.chmod(dataDir, 0o755);
    dirs.push(dataDir);
    const port = await freePort();
    const pgPort = await freePort();
    const p = spawnService({ PORT: String(port), HOST: '127.0.0.1', SLUICE_DATA_DIR: dataDir, SLUICE_EMBEDDED_PG_PORT: String(pgPort), LOG_LEVEL: 'info' });
    try {
      const [, clientId, clientSecret] = (await p.waitFor(/clientId:\s+(\S+)\s+clientSecret:\s+(\S+)/, 90_000)) as unknown as [string, string, string];
      await p.waitFor(/Sluice is listening/);
      const url = `http://127.0.0.1:${port}`;
      // The start banner says where everything is, and its psql URL works as printed.
      const [, psqlUrl] = (await p.waitFor(/^ {2}psql +psql (\S+)$/m)) as unknown as [string, string];
      expect(p.stdout()).toMatch(/Sluice \S+ is ready \(role all\)/);
      expect(p.stdout()).toContain(`Jobs page  ${url}/\n`);
      expect(p.stdout()).toContain(`GraphiQL   ${url}/graphql\n`);
      expect(psqlUrl).toBe(`postgres://postgres:sluice-embedded@127.0.0.1:${pgPort}/postgres`);
      expect(await canQuery(psqlUrl)).toBe(true);
      expect(await (await fetch(`${url}/readyz`)).json()).toMatchObject({ status: 'ready' });
      expect(await portOpen(pgPort)).toBe(true);

      const anon = new SluiceClient({ url });
      const { issueToken } = await anon.request(IssueTokenDocument, { clientId, clientSecret });
      const { me } = await anon.withToken(issueToken.accessToken).request(MeDocument);
      expect(me.roles).toEqual(['ADMIN']);

      // An open subscription socket must be closed by the server with 1001 during shutdown.
      const ws = new WebSocket(`ws://127.0.0.1:${port}/graphql`, 'graphql-transport-ws');
      const closed = new Promise<number>((resolve) => ws.on('close', (c) => resolve(c)));
      await new Promise<void>((resolve) => {
        ws.on('open', () => ws.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${issueToken.accessToken}` } })));
        ws.on('message', (m) => {
          if (JSON.parse(m.toString()).type === 'connection_ack') {
            ws.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: 'subscription { heartbeat(intervalMs: 50, count: 1000) { seq } }' } }));
            resolve();
          }
        });
      });

      p.child.kill('SIGTERM');
      const exit = await p.exited;
      expect(exit, p.stderr()).toEqual({ code: 0, signal: null });
      expect(await closed).toBe(1001);
      expect(await portOpen(port)).toBe(false);
      // The embedded server is stopped with the service.
      expect(await portOpen(pgPort)).toBe(false);

      // The second start reuses the data folder and prints no new secret. SLUICE_EMBEDDED_PG_PORT
      // is unset and the default port is taken: it falls back to a free port and says so.
      const blocker = await occupy(DEFAULT_EMBEDDED_PG_PORT);
      const again = spawnService({ PORT: String(port), HOST: '127.0.0.1', SLUICE_DATA_DIR: dataDir, LOG_LEVEL: 'info' });
      try {
        await again.waitFor(/Sluice is listening/, 90_000);
        const [, fallbackUrl, fallbackPort] = (await again.waitFor(/^ {2}psql +psql (\S+:(\d+)\/postgres)$/m)) as unknown as [string, string, string];
        expect(Number(fallbackPort)).not.toBe(DEFAULT_EMBEDDED_PG_PORT);
        expect(again.stdout()).toContain(`port ${DEFAULT_EMBEDDED_PG_PORT} was taken`);
        expect(await canQuery(fallbackUrl)).toBe(true);
      } finally {
        await blocker.release();
      }
      expect(again.stdout()).not.toMatch(/clientSecret:/);
      const { issueToken: t2 } = await anon.request(IssueTokenDocument, { clientId, clientSecret });
      // The generated JWT secret persisted in the data folder, so old tokens still verify.
      expect((await anon.withToken(issueToken.accessToken).request(MeDocument)).me.clientId).toBe(clientId);
      expect(t2.accessToken).toBeTruthy();
      again.child.kill('SIGTERM');
      expect((await again.exited).code).toBe(0);
    } finally {
      if (p.child.exitCode === null) p.child.kill('SIGKILL');
    }
  });

  it('refuses to start, naming the setting, when an explicitly set embedded PostgreSQL port is taken', async () => {
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-proc-'));
    dirs.push(dataDir);
    const busy = await freePort();
    const blocker = await occupy(busy);
    try {
      const p = spawnService({ PORT: '0', HOST: '127.0.0.1', SLUICE_DATA_DIR: dataDir, SLUICE_EMBEDDED_PG_PORT: String(busy), LOG_LEVEL: 'info' });
      const { code } = await p.exited;
      expect(code, p.stderr()).toBe(1);
      expect(p.stderr()).toContain(`SLUICE_EMBEDDED_PG_PORT: port ${busy} on 127.0.0.1 is already in use`);
      // An explanation, not a stack trace; and nothing was initialised in the data folder.
      expect(p.stderr()).not.toMatch(/\n\s+at /);
      expect(await fs.readdir(dataDir)).not.toContain('pg');
    } finally {
      await blocker.release();
    }
  });
});
