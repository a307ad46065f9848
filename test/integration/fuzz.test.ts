import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_ID, ADMIN_SECRET, startTestApp, type TestApp } from '../helpers/app';
import { repoRoot } from '../helpers/process';

// The fuzzers of scripts/fuzz/ (README, "Fuzzing a running service"), each a short seeded run
// against a real service: a run exits 1 on any finding (a 5xx, INTERNAL_SERVER_ERROR, an error
// without a code, a request left unanswered or reset, a WebSocket closed 4500) or when the
// service stops answering. They found the two defects their regression tests name: the
// keep-alive answer before a closing connection (multipart.test.ts) and the 4500 for a client's
// server-only message (ws-lifetime.test.ts).
const run = promisify(execFile);

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});

const RUNS: Array<[string, number]> = [
  ['graphql', 400],
  ['multipart', 200],
  ['ws', 80],
  ['routes', 250],
];

describe('the fuzzers find nothing', () => {
  for (const [name, count] of RUNS) {
    it(`scripts/fuzz/${name}.mjs, ${count} requests`, async () => {
      const { stdout } = await run(process.execPath, [path.join(repoRoot, 'scripts/fuzz', `${name}.mjs`), '7', String(count)], {
        env: { PATH: process.env['PATH'] ?? '', SLUICE_URL: t.url, SLUICE_CLIENT_ID: ADMIN_ID, SLUICE_CLIENT_SECRET: ADMIN_SECRET },
        timeout: 120_000,
      }).catch((err: { stdout?: string; stderr?: string; message: string }) => {
        throw new Error(`${name} fuzzer failed: ${err.stdout ?? ''}${err.stderr ?? ''}${err.message}`);
      });
      expect(stdout).toMatch(new RegExp(`^${name}: seed 7, sent ${count}, findings 0, /healthz 200`, 'm'));
    }, 150_000);
  }
});
