import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Kind, parse, print } from 'graphql';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/db/embedded';
import { spawnService, repoRoot, type ServiceProcess } from '../helpers/process';
import { readmeBlocks, type ReadmeBlock } from '../helpers/readme';
import { FIXTURE_FRAMEWORK, fixtureGraph, startFakeRegistry, type FakeRegistry } from '../helpers/registry';

/**
 * The README's shell examples, run as written against a started service, so they cannot rot. The
 * blocks marked `<!-- readme-test -->` run in order in one bash session (as a reader following
 * along in one terminal), with `set -e`: every command must succeed, except those whose comment
 * says `# exits N`, which must exit exactly N. What the test changes, and why:
 * - `npm install` / `npm start` lines are skipped: this test starts the service itself, with the
 *   variables the README's `npm start` line sets, on free ports;
 * - `localhost:4000` becomes the service's address, the README's psql URL the one the start banner
 *   printed, and the Credential Engine registry a local server with the repository's fixture.
 */

const README_PSQL_URL = 'postgres://postgres:sluice-embedded@127.0.0.1:54329/postgres';
const SKIPPED = [/^\s*npm (install|ci)\b/, /^\s*(?:[A-Z_]+=\S+\s+)*npm (start|run dev)\b/];
const hasPsql = spawnSync('psql', ['--version']).status === 0;

let service: ServiceProcess;
let registry: FakeRegistry;
let baseUrl: string;
let psqlUrl: string;
let dataDir: string;
let workDir: string;
const blocks = readmeBlocks();

/** The variables the README's `npm start` line sets (the admin client the examples log in with). */
function startVariables(): Record<string, string> {
  for (const b of blocks) {
    for (const line of b.body.split('\n')) {
      const m = line.match(/^\s*((?:[A-Z_]+=\S+\s+)+)npm start\b/);
      if (m)
        return Object.fromEntries(
          m[1]!
            .trim()
            .split(/\s+/)
            .map((kv) => kv.split('=', 2) as [string, string]),
        );
    }
  }
  throw new Error('README.md has no `VAR=value npm start` line');
}

/** One marked sh block as bash, with the skips and exit-code checks described above. */
function toBash(block: ReadmeBlock): string {
  const lines = block.body.split('\n').map((line, i) => {
    const where = `README.md line ${block.line + i + 1}`;
    if (SKIPPED.some((re) => re.test(line))) return `# skipped by the README test: ${line}`;
    if (!hasPsql && /^\s*psql\b/.test(line)) return `# skipped (no psql on PATH): ${line}`;
    // A trailing `# exits N` comment: outside quotes (an even number of each quote before it).
    const m = line.match(/^(.*\S)\s+#\s*exits (\d+)\b.*$/);
    const balanced = (t: string) => (t.match(/'/g) ?? []).length % 2 === 0 && (t.match(/"/g) ?? []).length % 2 === 0;
    if (!m || !balanced(m[1]!)) return line;
    return `${m[1]} || __rc=$?; [ "\${__rc:-0}" -eq ${m[2]} ] || { echo "${where}: expected exit ${m[2]}, got \${__rc:-0}" >&2; exit 1; }; unset __rc`;
  });
  return [`echo "::: README.md line ${block.line}" >&2`, ...lines].join('\n');
}

function substitute(script: string): string {
  return script
    .replaceAll('http://localhost:4000', baseUrl)
    .replaceAll('localhost:4000', baseUrl.replace(/^http:\/\//, ''))
    .replaceAll(README_PSQL_URL, psqlUrl)
    .replaceAll('https://credentialengineregistry.org', registry.url);
}

function runBash(script: string, env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', script], { cwd: workDir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 400_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

beforeAll(async () => {
  registry = await startFakeRegistry();
  registry.routes.set(`/graph/${FIXTURE_FRAMEWORK}`, { body: await fixtureGraph() });
  dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-readme-'));
  // As root the embedded PostgreSQL runs as `postgres`, which must reach its data folder.
  await fs.chmod(dataDir, 0o755);
  // The examples run from a folder inside the checkout (so `npx sluice` finds this package) that
  // git ignores, with a copy of examples/; what they write (errors.csv) stays there.
  await fs.mkdir(path.join(repoRoot, 'test-results'), { recursive: true });
  workDir = await fs.mkdtemp(path.join(repoRoot, 'test-results', 'readme-'));
  await fs.cp(path.join(repoRoot, 'examples'), path.join(workDir, 'examples'), { recursive: true });
  const port = await freePort();
  service = spawnService({
    ...startVariables(),
    PORT: String(port),
    HOST: '127.0.0.1',
    SLUICE_DATA_DIR: dataDir,
    SLUICE_EMBEDDED_PG_PORT: String(await freePort()),
    SLUICE_CE_REGISTRY_URL: registry.url,
    SLUICE_CE_ALLOW_PRIVATE_ADDRESSES: 'true',
    LOG_LEVEL: 'warn',
  });
  [, psqlUrl] = (await service.waitFor(/^ {2}psql +psql (\S+)$/m, 120_000)) as unknown as [string, string];
  baseUrl = `http://127.0.0.1:${port}`;
}, 180_000);

afterAll(async () => {
  if (service && service.child.exitCode === null) {
    service.child.kill('SIGTERM');
    await service.exited;
  }
  await fs.rm(dataDir, { recursive: true, force: true });
  await fs.rm(workDir, { recursive: true, force: true });
});

describe('the README examples, run as written', () => {
  it('has the marked blocks: quick start, curl walk-throughs, signed URL, directory, CLI', () => {
    const bodies = blocks.filter((b) => b.kind === 'test' && b.lang === 'sh').map((b) => b.body);
    for (const needle of [
      'npx sluice specs register',
      'issueToken',
      'uploadFile',
      'errors.csv',
      'bulkUpload',
      'requestUploadUrl',
      'importCredentialEngine',
      'npx sluice whoami',
    ]) {
      expect(
        bodies.some((b) => b.includes(needle)),
        needle,
      ).toBe(true);
    }
    // The quick start: from nothing to rows in psql in at most six commands.
    const quick = blocks.filter((b) => b.kind === 'test' && b.lang === 'sh').slice(0, 2);
    const commands = quick.flatMap((b) => b.body.split('\n')).filter((l) => l.trim() && !l.trim().startsWith('#'));
    expect(commands.length).toBeLessThanOrEqual(6);
    expect(commands.at(-1)).toMatch(/^psql /);
  });

  it('the shell blocks exit 0 (documented exit codes hold) and leave the rows in PostgreSQL; the uploadStatus example fits the limits', async () => {
    const shBlocks = blocks.filter((b) => b.kind === 'test' && b.lang === 'sh');
    const script = [
      'set -eo pipefail',
      ...shBlocks.map(toBash),
      // What the GraphQL examples below need from the session.
      `for v in TOKEN PROCESS_ID; do printf '%s=%s\\n' "$v" "\${!v}"; done > vars.txt`,
    ].join('\n');
    const run = await runBash(substitute(script), {
      PATH: process.env['PATH'] ?? '',
      HOME: process.env['HOME'] ?? os.tmpdir(),
      SLUICE_URL: baseUrl,
      SLUICE_CLI_CONFIG: path.join(workDir, 'cli-config.json'),
      NO_COLOR: '1',
    });
    const shown = `exit ${run.code}\n--- stdout\n${run.stdout}\n--- stderr\n${run.stderr}\n--- service log (warnings and errors)\n${service.stdout().slice(-8000)}`;
    expect(run.code, shown).toBe(0);
    // curl exits 0 on a GraphQL error: none of the answers may carry one.
    expect(run.stdout, shown).not.toMatch(/"errors"\s*:/);
    // The quick start's upload listed its refused rows; the psql query printed the stored ones.
    expect(run.stdout, shown).toMatch(/INVALID_DATE/);
    if (hasPsql) expect(run.stdout, shown).toMatch(/\(11 rows\)/);

    // The rows are in the database the banner's psql URL points at.
    const sql = postgres(psqlUrl, { max: 1, onnotice: () => undefined });
    try {
      const [{ n }] = (await sql`select count(*)::int as n from ds_attendance_v1`) as unknown as [{ n: number }];
      expect(n).toBeGreaterThanOrEqual(11);
      const [{ e }] = (await sql`select count(*)::int as e from row_errors`) as unknown as [{ e: number }];
      expect(e).toBeGreaterThanOrEqual(4);
    } finally {
      await sql.end();
    }
    const report = await fs.readFile(path.join(workDir, 'errors.csv'), 'utf8');
    expect(report.split('\n')[0]).toMatch(/error_description/);

    // The GraphQL blocks marked to run, with the values of the session (processId, token).
    const vars = Object.fromEntries(
      (await fs.readFile(path.join(workDir, 'vars.txt'), 'utf8'))
        .trim()
        .split('\n')
        .map((l) => l.split('=', 2) as [string, string]),
    );
    const gqlBlocks = blocks.filter((b) => b.kind === 'test' && b.lang === 'graphql');
    expect(gqlBlocks.map((b) => b.body).join('\n')).toMatch(/uploadStatus/);
    for (const b of gqlBlocks) {
      for (const op of parse(b.body.replaceAll('<processId>', vars['PROCESS_ID']!)).definitions) {
        if (op.kind !== Kind.OPERATION_DEFINITION) continue;
        const query = print(op);
        const res = await fetch(`${baseUrl}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${vars['TOKEN']}` },
          body: JSON.stringify({ query }),
        });
        const body = (await res.json()) as { data?: unknown; errors?: unknown[] };
        expect(body.errors, `README.md line ${b.line}: ${query}\n${JSON.stringify(body)}`).toBeUndefined();
        expect(res.status).toBe(200);
      }
    }
  }, 420_000);
});
