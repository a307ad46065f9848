import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { freePort } from '../../src/db/embedded';
import { IssueTokenDocument, MeDocument, SluiceClient } from '../../src/sdk/client';
import { spawnService } from '../helpers/process';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await fs.rm(d, { recursive: true, force: true });
});

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

      // The second start reuses the data folder and prints no new secret.
      const again = spawnService({ PORT: String(port), HOST: '127.0.0.1', SLUICE_DATA_DIR: dataDir, LOG_LEVEL: 'info' });
      await again.waitFor(/Sluice is listening/, 90_000);
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
});
