import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/db/embedded';
import { CreateClientDocument, IssueTokenDocument, RegisterSpecDocument, SluiceClient } from '../../src/sdk/client';
import { ADMIN_ID, ADMIN_SECRET, JWT_SECRET, codeOf, createTestDatabase } from '../helpers/app';
import { attendanceSpec } from '../helpers/attendance';
import { filler, hostileBodies, multipartHead, multipartHeaders, rawRequest, type RawResponse } from '../helpers/multipart';
import { spawnService, type ServiceProcess } from '../helpers/process';

/**
 * The multipart layer in a real process: before the fix, the first of these requests made Node
 * exit with code 1 (an `error` event without a listener), taking every other request with it.
 */
const MAX_FILE_BYTES = 128 * 1024;
let databaseUrl: string;
const dirs: string[] = [];

beforeAll(async () => {
  databaseUrl = (await createTestDatabase()).url;
});
afterAll(async () => {
  for (const d of dirs) await fs.rm(d, { recursive: true, force: true });
});

const show = (r: RawResponse) => `HTTP ${r.status} ${r.text.slice(0, 300)}`;

describe.each(['api', 'all'] as const)('role %s: hostile multipart requests never end the process', (role) => {
  let p: ServiceProcess;
  let url: string;
  let auth: Record<string, string>;

  beforeAll(async () => {
    const port = await freePort();
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-mp-proc-'));
    dirs.push(dataDir);
    p = spawnService({
      NODE_ENV: 'test',
      DATABASE_URL: databaseUrl,
      HOST: '127.0.0.1',
      PORT: String(port),
      LOG_LEVEL: 'info',
      SLUICE_ROLE: role,
      SLUICE_JWT_SECRET: JWT_SECRET,
      SLUICE_ADMIN_CLIENT_ID: ADMIN_ID,
      SLUICE_ADMIN_CLIENT_SECRET: ADMIN_SECRET,
      SLUICE_DATA_DIR: dataDir,
      SLUICE_SHUTDOWN_TIMEOUT_MS: '2000',
      SLUICE_MAX_FILE_SIZE_BYTES: String(MAX_FILE_BYTES),
      SLUICE_UPLOAD_IDLE_TIMEOUT_MS: '500',
    });
    await p.waitFor(/Sluice is listening/, 90_000);
    url = `http://127.0.0.1:${port}`;
    const anon = new SluiceClient({ url });
    const { issueToken } = await anon.request(IssueTokenDocument, { clientId: ADMIN_ID, clientSecret: ADMIN_SECRET });
    const admin = anon.withToken(issueToken.accessToken);
    await admin.raw(RegisterSpecDocument, { kind: 'EVENT', spec: attendanceSpec });
    const id = `mp-${role}-${Date.now()}`;
    const { createClient } = await admin.request(CreateClientDocument, { input: { clientId: id, name: id, roles: ['INGESTOR'] } });
    const { issueToken: it2 } = await anon.request(IssueTokenDocument, { clientId: id, clientSecret: createClient.clientSecret });
    auth = { authorization: `Bearer ${it2.accessToken}` };
  }, 120_000);

  afterAll(async () => {
    if (p && p.child.exitCode === null && p.child.signalCode === null) {
      p.child.kill('SIGTERM');
      await p.exited;
    }
  });

  async function expectServing(after: string): Promise<void> {
    expect(p.child.exitCode, `${after}\nstderr:\n${p.stderr()}`).toBeNull();
    const res = await fetch(`${url}/healthz`);
    expect(res.status, after).toBe(200);
  }

  it('answers every malformed body 400 BAD_REQUEST, with and without a token, and keeps serving after each', async () => {
    for (const h of hostileBodies()) {
      for (const headers of [multipartHeaders(), multipartHeaders(auth)]) {
        const res = await rawRequest(url, { headers, body: h.body });
        const withToken = 'authorization' in headers;
        if (withToken) {
          expect(res.status, `${h.name}: ${show(res)}`).toBe(400);
          expect(codeOf(res.json!), `${h.name}: ${show(res)}`).toBe('BAD_REQUEST');
        } else {
          expect(['BAD_REQUEST', 'UNAUTHENTICATED'], `${h.name} (no token): ${show(res)}`).toContain(codeOf(res.json!));
        }
        await expectServing(h.name);
      }
    }
  });

  it('answers an endless oversize upload 413 and a stalled one 408, and keeps serving', async () => {
    const big = await rawRequest(url, {
      headers: multipartHeaders(auth),
      timeoutMs: 30_000,
      stream: async (write, answered) => {
        await write(multipartHead());
        await filler(0, { endless: true, pauseMs: 5 })(write, answered);
      },
    });
    expect(big.status, show(big)).toBe(413);
    expect(codeOf(big.json!)).toBe('PAYLOAD_TOO_LARGE');
    await expectServing('oversize');

    const stalled = await rawRequest(url, {
      headers: multipartHeaders(auth),
      stream: async (write) => {
        await write(multipartHead());
        await new Promise(() => undefined);
      },
    });
    expect(stalled.status, show(stalled)).toBe(408);
    expect(codeOf(stalled.json!)).toBe('REQUEST_TIMEOUT');
    await expectServing('stalled');
  });
});
