import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { followJob, RunDiagnosticJobDocument, SluiceClient, type JobEventFieldsFragment } from '../../src/sdk/client';
import { startTestApp, type TestApp } from '../helpers/app';
import { FAST_JOBS } from '../helpers/jobs';

let t: TestApp;
/** A TCP proxy in front of the app whose connections the test can cut. */
let proxy: net.Server;
let proxyUrl: string;
const open = new Set<net.Socket>();

beforeAll(async () => {
  t = await startTestApp({ ...FAST_JOBS });
  const target = new URL(t.url);
  proxy = net.createServer((client) => {
    const upstream = net.connect(Number(target.port), target.hostname);
    open.add(client);
    client.on('close', () => open.delete(client));
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  proxyUrl = `http://127.0.0.1:${(proxy.address() as net.AddressInfo).port}`;
});

afterAll(async () => {
  for (const s of open) s.destroy();
  await new Promise((r) => proxy?.close(r));
});

describe('followJob (SDK): the one reconnect-with-afterSeq loop of the CLI and the jobs page', () => {
  it('resumes after a cut connection from the last event seen: every event once, in order, up to the terminal one', async () => {
    const { runDiagnosticJob: job } = await t.admin.request(RunDiagnosticJobDocument, { input: { to: 30, stepMs: 60 } });
    const client = new SluiceClient({ url: proxyUrl, token: t.admin.options.token });
    const events: JobEventFieldsFragment[] = [];
    const reconnects: Array<{ attempt: number; lastSeq: number }> = [];
    let cut = 0;
    try {
      for await (const e of followJob(client, job.id, { backoffMs: () => 50, onReconnect: (attempt, lastSeq) => reconnects.push({ attempt, lastSeq }) })) {
        events.push(e);
        // Cut every connection twice while the job runs.
        if (e.kind === 'PROGRESS' && cut < 2 && e.progress.processed >= 8 * (cut + 1)) {
          cut++;
          for (const s of open) s.destroy();
        }
      }
    } finally {
      await client.close();
    }
    expect(cut).toBe(2);
    expect(reconnects.length).toBeGreaterThanOrEqual(2);
    expect(events.at(-1)).toMatchObject({ terminal: true, state: 'SUCCEEDED', progress: { processed: 30 } });
    // Apart from each connection's SNAPSHOT, sequence numbers strictly increase: nothing twice.
    const seqs = events.filter((e) => e.kind !== 'SNAPSHOT').map((e) => e.seq);
    expect(new Set(seqs).size).toBe(seqs.length);
    expect([...seqs].sort((a, b) => a - b)).toEqual(seqs);
    // Every reconnect resumed after the last event delivered before it.
    for (const r of reconnects) expect(events.some((e) => e.seq === r.lastSeq)).toBe(true);
  });

  it('gives up after maxReconnects with ConnectionLostError, and a refused token ends at once with TokenRefusedError', async () => {
    const dead = new SluiceClient({ url: 'http://127.0.0.1:1', token: 'x' });
    await expect(async () => {
      for await (const _ of followJob(dead, '00000000-0000-4000-8000-000000000000', { maxReconnects: 2, backoffMs: () => 10 })) void _;
    }).rejects.toMatchObject({ name: 'ConnectionLostError', attempts: 3 });
    await dead.close();
    const forged = new SluiceClient({ url: t.url, token: 'not.a.token' });
    await expect(async () => {
      for await (const _ of followJob(forged, '00000000-0000-4000-8000-000000000000')) void _;
    }).rejects.toMatchObject({ name: 'TokenRefusedError', closeCode: 4403 });
    await forged.close();
  });
});
