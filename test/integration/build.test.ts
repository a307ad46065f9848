import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/db/embedded';
import { IssueTokenDocument, MeDocument, SluiceClient } from '../../src/sdk/client';
import { ensureBuild } from '../helpers/build';
import { repoRoot, spawnService } from '../helpers/process';

const run = promisify(execFile);
const pkg = JSON.parse(await fs.readFile(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string; scripts: Record<string, string> };
const dirs: string[] = [];

beforeAll(async () => {
  await ensureBuild();
}, 180_000);
afterAll(async () => {
  for (const d of dirs) await fs.rm(d, { recursive: true, force: true });
});

/** Runs `node bin/sluice.mjs args`, recording every module it resolves; returns output, modules and time. */
async function sluice(args: string[]): Promise<{ stdout: string; modules: string[]; ms: number }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-imports-'));
  dirs.push(dir);
  const log = path.join(dir, 'imports.txt');
  const started = performance.now();
  const { stdout } = await run(process.execPath, ['--import', './test/helpers/record-imports.mjs', 'bin/sluice.mjs', ...args], {
    cwd: repoRoot,
    env: { PATH: process.env['PATH'] ?? '', HOME: dir, SLUICE_TEST_IMPORT_LOG: log },
  });
  const ms = performance.now() - started;
  const modules = (await fs.readFile(log, 'utf8').catch(() => '')).split('\n').filter(Boolean);
  return { stdout, modules, ms };
}

describe('the compiled build (npm run build -> dist/)', () => {
  it('npm start runs the compiled service: it starts an embedded PostgreSQL, migrates from drizzle/, answers /readyz and GraphQL, and stops on SIGTERM', async () => {
    expect(pkg.scripts['start']).toMatch(/dist\/main\.js/);
    expect(pkg.scripts['prestart']).toMatch(/scripts\/build\.mjs/);
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-build-'));
    await fs.chmod(dataDir, 0o755);
    dirs.push(dataDir);
    const port = await freePort();
    // No DATABASE_URL: the embedded binaries and the migrations folder are found from dist/.
    const p = spawnService(
      { PORT: String(port), HOST: '127.0.0.1', SLUICE_DATA_DIR: dataDir, SLUICE_EMBEDDED_PG_PORT: String(await freePort()), LOG_LEVEL: 'info' },
      'compiled',
    );
    try {
      const [, clientId, clientSecret] = (await p.waitFor(/clientId:\s+(\S+)\s+clientSecret:\s+(\S+)/, 90_000)) as unknown as [string, string, string];
      await p.waitFor(/Sluice is listening/);
      const url = `http://127.0.0.1:${port}`;
      const ready = await fetch(`${url}/readyz`);
      expect(ready.status, p.stdout()).toBe(200);
      expect(await ready.json()).toMatchObject({ status: 'ready', database: 'ok' });

      // The schema (type-graphql decorators, compiled by esbuild) answers, with the package's version.
      const info = await fetch(`${url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: '{ serviceInfo { version role } }' }),
      });
      expect(await info.json()).toEqual({ data: { serviceInfo: { version: pkg.version, role: 'all' } } });
      const anon = new SluiceClient({ url });
      const { issueToken } = await anon.request(IssueTokenDocument, { clientId, clientSecret });
      expect((await anon.withToken(issueToken.accessToken).request(MeDocument)).me.roles).toEqual(['ADMIN']);
      await anon.close();

      p.child.kill('SIGTERM');
      expect(await p.exited, p.stderr()).toEqual({ code: 0, signal: null });
    } finally {
      if (p.child.exitCode === null) p.child.kill('SIGKILL');
    }
  });

  it('sluice --version prints the package version without loading any package', async () => {
    const r = await sluice(['--version']);
    expect(r.stdout).toBe(`${pkg.version}\n`);
    expect(r.modules.filter((m) => m.includes('/node_modules/') || m.includes('/dist/') || m.includes('/src/'))).toEqual([]);
    // Generous: the bound of the issue is 500 ms on an idle machine; this one is shared.
    expect(r.ms).toBeLessThan(5000);
  });

  it('sluice --help prints the command list stored by the build without loading any package; the full CLI prints the same text', async () => {
    const fast = await sluice(['--help']);
    expect(fast.stdout).toMatch(/^Usage: sluice <command> \[options\]/);
    expect(fast.stdout).toContain('--version');
    expect(fast.modules.filter((m) => m.includes('/node_modules/') || m.includes('/dist/') || m.includes('/src/'))).toEqual([]);
    expect(fast.ms).toBeLessThan(5000);

    // `sluice --url x --help` goes through the compiled CLI (dist/cli.js), not tsx, and agrees.
    const full = await sluice(['--url', 'http://127.0.0.1:1', '--help']);
    expect(full.stdout).toBe(fast.stdout);
    expect(full.modules.some((m) => m.endsWith('/dist/cli.js'))).toBe(true);
    expect(full.modules.some((m) => m.includes('/node_modules/tsx/'))).toBe(false);
  });
});
