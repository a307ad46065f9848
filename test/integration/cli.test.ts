import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CreateClientDocument, FileDocument, FilesDocument, JobDocument, RunDiagnosticJobDocument, SignedUploadFileDocument } from '../../src/sdk/client';
import { attendanceCsv, attendanceSpec } from '../helpers/attendance';
import { ADMIN_ID, ADMIN_SECRET, startTestApp, type TestApp } from '../helpers/app';
import { runCli, show } from '../helpers/cli';
import { FAST_JOBS } from '../helpers/jobs';
import { repoRoot } from '../helpers/process';
import { FIXTURE_FRAMEWORK, fixtureGraph, startFakeRegistry, type FakeRegistry } from '../helpers/registry';

const fixtures = path.resolve(repoRoot, 'test/fixtures/cqube');
const sunbird = path.resolve(repoRoot, 'test/fixtures/sunbird');

let t: TestApp;
let reg: FakeRegistry;
let dir: string;
/** Environment of an admin who has run `sluice login`. */
let adminEnv: Record<string, string>;
/** Environment of an INGESTOR who has run `sluice login`. */
let ingestorEnv: Record<string, string>;

beforeAll(async () => {
  reg = await startFakeRegistry();
  t = await startTestApp({ ...FAST_JOBS, SLUICE_CE_REGISTRY_URL: reg.url, SLUICE_CE_ALLOW_PRIVATE_ADDRESSES: 'true', SLUICE_CE_TIMEOUT_MS: '2000' });
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-cli-test-'));
  adminEnv = { SLUICE_URL: t.url, SLUICE_CLI_CONFIG: path.join(dir, 'admin', 'config.json') };
  ingestorEnv = { SLUICE_URL: t.url, SLUICE_CLI_CONFIG: path.join(dir, 'ingestor', 'config.json') };
  await fs.writeFile(path.join(dir, 'event.attendance.json'), JSON.stringify(attendanceSpec));
});

afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe('sluice CLI', () => {
  it('lists its commands and exit codes; an unknown command or option fails with exit 1', async () => {
    const help = await runCli(['--help'], {});
    expect(help.code, show(help)).toBe(0);
    for (const c of [
      'login',
      'whoami',
      'specs register',
      'specs list',
      'upload',
      'import-url',
      'bulk',
      'credential-engine import',
      'files',
      'jobs',
      'job watch',
      'errors',
    ])
      expect(help.stdout).toContain(c);
    expect(help.stdout).toMatch(/Exit codes: 0 success; 2 success with errors/);
    const upHelp = await runCli(['upload', '--help'], {});
    expect(upHelp.stdout).toContain('--on-invalid-rows');
    const unknown = await runCli(['frobnicate'], {});
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('unknown command "frobnicate"');
    const badOption = await runCli(['whoami', '--colour'], adminEnv);
    expect(badOption.code).toBe(1);
    expect(badOption.stderr).toMatch(/Unknown option '--colour'/);
  });

  it('refuses commands before login, and a wrong secret', async () => {
    const before = await runCli(['whoami'], adminEnv);
    expect(before.code, show(before)).toBe(1);
    expect(before.stderr).toContain(`Not logged in to ${t.url}`);
    const wrong = await runCli(['login', '--client-id', ADMIN_ID], { ...adminEnv, SLUICE_CLIENT_SECRET: 'not-the-secret-at-all' });
    expect(wrong.code, show(wrong)).toBe(1);
    expect(wrong.stderr).toContain('UNAUTHENTICATED');
    const closedPort = await new Promise<number>((resolve) => {
      const srv = net.createServer().listen(0, '127.0.0.1', () => {
        const { port } = srv.address() as net.AddressInfo;
        srv.close(() => resolve(port));
      });
    });
    const unreachable = await runCli(['whoami', '--url', `http://127.0.0.1:${closedPort}`], { ...adminEnv, SLUICE_TOKEN: 'x' });
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toContain(`Cannot reach http://127.0.0.1:${closedPort}: ECONNREFUSED`);
    // Uploads stream over node:http rather than fetch: the same one-line answer.
    const csv = path.resolve(repoRoot, 'examples/attendance.csv');
    const uploadUnreachable = await runCli(['upload', csv, '--program', 'attendance', '--spec', 'attendance', '--url', `http://127.0.0.1:${closedPort}`], {
      ...adminEnv,
      SLUICE_TOKEN: 'x',
    });
    expect(uploadUnreachable.code, show(uploadUnreachable)).toBe(1);
    expect(uploadUnreachable.stderr).toContain(`Cannot reach http://127.0.0.1:${closedPort}: ECONNREFUSED`);
  });

  it('login caches a token (never the secret) in a file only the owner can read; whoami uses it', async () => {
    const login = await runCli(['login', '--client-id', ADMIN_ID], { ...adminEnv, SLUICE_CLIENT_SECRET: ADMIN_SECRET });
    expect(login.code, show(login)).toBe(0);
    expect(login.stdout).toContain(`Logged in to ${t.url} as ${ADMIN_ID} (ADMIN)`);
    const file = adminEnv['SLUICE_CLI_CONFIG']!;
    const saved = await fs.readFile(file, 'utf8');
    expect(saved).not.toContain(ADMIN_SECRET);
    expect(JSON.parse(saved)).toMatchObject({ url: t.url, servers: { [t.url]: { clientId: ADMIN_ID, roles: ['ADMIN'] } } });
    expect((await fs.stat(file)).mode & 0o777).toBe(0o600);
    const who = await runCli(['whoami', '--json'], adminEnv);
    expect(who.code, show(who)).toBe(0);
    expect(JSON.parse(who.stdout)).toMatchObject({ clientId: ADMIN_ID, roles: ['ADMIN'] });

    // An ingestor logs in with the secret on stdin.
    const { createClient } = await t.admin.request(CreateClientDocument, { input: { clientId: 'cli-ingestor', name: 'CLI ingestor', roles: ['INGESTOR'] } });
    const ing = await runCli(['login', '--client-id', 'cli-ingestor', '--client-secret-stdin'], ingestorEnv, { input: `${createClient.clientSecret}\n` });
    expect(ing.code, show(ing)).toBe(0);
  });

  it('specs register takes the kind from the file name; specs list shows it; only ADMIN registers', async () => {
    const reg = await runCli(['specs', 'register', path.join(dir, 'event.attendance.json')], adminEnv);
    expect(reg.code, show(reg)).toBe(0);
    expect(reg.stdout).toMatch(/Registered attendance v1 \(EVENT, program attendance\): table \S+, 3 columns/);
    const district = await runCli(['specs', 'register', path.join(fixtures, 'specs/dimension.district.json'), '--name', 'district'], adminEnv);
    expect(district.code, show(district)).toBe(0);
    const list = await runCli(['specs', 'list', '--json'], adminEnv);
    expect(
      JSON.parse(list.stdout)
        .map((s: { name: string }) => s.name)
        .sort(),
    ).toEqual(['attendance', 'district']);
    const table = await runCli(['specs', 'list'], adminEnv);
    expect(table.stdout.split('\n')[0]).toMatch(/^NAME\s+VERSION\s+KIND\s+PROGRAM/);

    const forbidden = await runCli(['specs', 'register', path.join(dir, 'event.attendance.json')], ingestorEnv);
    expect(forbidden.code).toBe(1);
    expect(forbidden.stderr).toContain('FORBIDDEN');
    await fs.writeFile(path.join(dir, 'broken.json'), '{ nope');
    const broken = await runCli(['specs', 'register', path.join(dir, 'broken.json'), '--kind', 'event'], adminEnv);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toMatch(/Cannot read .*broken\.json/);
    const noKind = await runCli(['specs', 'register', path.join(dir, 'broken.json')], adminEnv);
    expect(noKind.code).toBe(1);
    expect(noKind.stderr).toContain('--kind is required');
  });

  it('upload of the district fixture: progress as plain lines, exit 0, rows stored', async () => {
    const up = await runCli(['upload', path.join(fixtures, 'data/district-dimension.data.csv'), '--program', 'district', '--spec', 'district'], ingestorEnv);
    expect(up.code, show(up)).toBe(0);
    // Not a terminal: no carriage returns or escape codes, one line per update.
    expect(up.stderr).not.toMatch(/[\r\x1b]/);
    expect(up.stderr).toMatch(/^Uploading .*district-dimension\.data\.csv 100\.0%/m);
    expect(up.stderr).toMatch(/^Stored file [0-9a-f-]{36} .*; job [0-9a-f-]{36}$/m);
    expect(up.stdout).toMatch(/Job [0-9a-f-]{36} SUCCEEDED/);
    expect(up.stdout).toContain('5 rows, 5 valid, 0 invalid');
    const fileId = /^File ([0-9a-f-]{36})/m.exec(up.stdout)![1]!;
    const rows = await t.database.sql`select count(*)::int as n from ds_district_v1 where _file_id = ${fileId}`;
    expect(rows[0]!['n']).toBe(5);
  });

  it('upload with invalid rows: exit 2, the counts, the first row errors and the error report path', async () => {
    const csv = path.join(dir, 'attendance.csv');
    await fs.writeFile(csv, attendanceCsv(2000, 100));
    const up = await runCli(['upload', csv, '--program', 'attendance', '--spec', 'attendance', '--json'], ingestorEnv);
    expect(up.code, show(up)).toBe(2);
    const out = JSON.parse(up.stdout);
    expect(out.job.state).toBe('SUCCEEDED_WITH_ERRORS');
    expect(out.file.rows).toEqual({ total: 2000, valid: 1980, invalid: 20 });
    expect(out.rowErrors).toHaveLength(10);
    expect(out.rowErrors[0]).toMatchObject({ line: 101, column: 'present', code: 'NOT_A_NUMBER' });

    const human = await runCli(['upload', csv, '--program', 'attendance', '--spec', 'attendance'], ingestorEnv);
    expect(human.code, show(human)).toBe(2);
    expect(human.stdout).toContain('2,000 rows, 1,980 valid, 20 invalid');
    expect(human.stdout).toMatch(/line 101 present: NOT_A_NUMBER/);
    expect(human.stdout).toContain('… and 10 more');
    expect(human.stdout).toContain('Error summary: 20 row errors (NOT_A_NUMBER 20)');
    expect(human.stdout).toMatch(new RegExp(`GET ${t.url}/files/[0-9a-f-]{36}/errors\\.csv`));
  });

  it('errors --summary prints the error analytics of a file', async () => {
    const { files: page } = await t.admin.request(FilesDocument, { spec: 'attendance', first: 1 });
    const fileId = page.nodes[0]!.id;
    const human = await runCli(['errors', fileId, '--summary'], ingestorEnv);
    expect(human.code, show(human)).toBe(0);
    expect(human.stdout).toContain('Error summary: 20 row errors (NOT_A_NUMBER 20)');
    expect(human.stdout).toMatch(/^ {2}present: 20 \(NOT_A_NUMBER 20\)$/m);
    expect(human.stdout).toContain('top values: "x" ×20');
    const json = await runCli(['errors', fileId, '--summary', '--json'], ingestorEnv);
    expect(json.code, show(json)).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ total: 20, byCode: [{ code: 'NOT_A_NUMBER', count: 20 }] });
  });

  it('errors downloads the error report with the stored token; files and jobs list recent ones', async () => {
    const { files: page } = await t.admin.request(FilesDocument, { spec: 'attendance', first: 1 });
    const fileId = page.nodes[0]!.id;
    const out = path.join(dir, 'report.csv');
    const dl = await runCli(['errors', fileId, '-o', out], ingestorEnv);
    expect(dl.code, show(dl)).toBe(0);
    expect(dl.stderr).toMatch(/^Wrote .*report\.csv \(/m);
    const report = (await fs.readFile(out, 'utf8')).trim().split('\n');
    expect(report[0]).toContain('error_description');
    expect(report).toHaveLength(21);
    const toStdout = await runCli(['errors', fileId], ingestorEnv);
    expect(toStdout.code, show(toStdout)).toBe(0);
    expect(toStdout.stdout.trim().split('\n')).toEqual(report);
    const unknown = await runCli(['errors', '00000000-0000-4000-8000-000000000000', '-o', path.join(dir, 'none.csv')], ingestorEnv);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('NOT_FOUND');
    await expect(fs.stat(path.join(dir, 'none.csv'))).rejects.toThrow();

    const files = await runCli(['files', '--spec', 'attendance', '--limit', '5'], ingestorEnv);
    expect(files.code, show(files)).toBe(0);
    expect(files.stdout.split('\n')[0]).toMatch(/^ID\s+NAME\s+SPEC\s+STATE/);
    expect(files.stdout).toMatch(new RegExp(`^${fileId}\\s+attendance\\.csv\\s+attendance v1\\s+SUCCEEDED_WITH_ERRORS\\s+.*\\s2,000\\s+20\\s`, 'm'));
    const jobs = await runCli(['jobs', '--state', 'succeeded_with_errors', '--json'], ingestorEnv);
    expect(jobs.code, show(jobs)).toBe(0);
    const listed = JSON.parse(jobs.stdout);
    expect(listed.nodes.length).toBeGreaterThan(0);
    expect(listed.nodes.every((j: { state: string }) => j.state === 'SUCCEEDED_WITH_ERRORS')).toBe(true);
    const badState = await runCli(['jobs', '--state', 'DONE'], ingestorEnv);
    expect(badState.code).toBe(1);
    expect(badState.stderr).toContain('unknown state DONE');
  });

  it('correct sends a fixed error report back: the rows join the file once', async () => {
    const { files: page } = await t.admin.request(FilesDocument, { spec: 'attendance', first: 1 });
    const fileId = page.nodes[0]!.id;
    const out = path.join(dir, 'to-fix.csv');
    expect((await runCli(['errors', fileId, '-o', out], ingestorEnv)).code).toBe(0);
    const fixed = path.join(dir, 'fixed.csv');
    await fs.writeFile(fixed, (await fs.readFile(out, 'utf8')).replace(/,x,"present/g, ',7,"present'));
    const applied = await runCli(['correct', fileId, fixed], ingestorEnv);
    expect(applied.code, show(applied)).toBe(0);
    expect(applied.stderr).toMatch(new RegExp(`^Stored corrections [0-9a-f-]{36} for file ${fileId}`, 'm'));
    expect(applied.stdout).toContain('20 rows, 20 valid, 0 invalid');
    const { file } = await t.admin.request(FileDocument, { id: fileId });
    expect(file.rows).toEqual({ total: 2000, valid: 2000, invalid: 0 });
    const again = await runCli(['correct', fileId, fixed], ingestorEnv);
    expect(again.code, show(again)).toBe(1);
    expect(again.stdout).toMatch(/line 101: ALREADY_CORRECTED/);
    expect(again.stdout).toContain('Error summary: 20 row errors (ALREADY_CORRECTED 20)');
  });

  it('upload reads a semicolon Windows-1252 file with an extra column and a renamed header when told how', async () => {
    const csv = path.join(dir, 'attendance-excel.csv');
    const text = 'Datum;School;present;grade_state\n01/03/23;s1;3;Sa\xe9\n01/03/23;s2;4;Sb\n';
    await fs.writeFile(csv, Buffer.from(text, 'latin1'));
    const refused = await runCli(['upload', csv, '--program', 'attendance', '--spec', 'attendance', '--delimiter', 'SEMICOLON'], ingestorEnv);
    expect(refused.code, show(refused)).toBe(1);
    expect(refused.stdout + refused.stderr).toContain('HEADER_INVALID');
    const up = await runCli(
      [
        'upload',
        csv,
        '--program',
        'attendance',
        '--spec',
        'attendance',
        '--json',
        '--delimiter',
        'SEMICOLON',
        '--encoding',
        'WINDOWS_1252',
        '--on-unknown-columns',
        'IGNORE',
        '--column-map',
        '{"Datum":"date","School":"school_id"}',
      ],
      ingestorEnv,
    );
    expect(up.code, show(up)).toBe(0);
    const out = JSON.parse(up.stdout);
    expect(out.file.rows).toEqual({ total: 2, valid: 2, invalid: 0 });
    const bad = await runCli(['upload', csv, '--program', 'attendance', '--spec', 'attendance', '--column-map', '{nope'], ingestorEnv);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('--column-map must be JSON');
    const badEnum = await runCli(['upload', csv, '--program', 'attendance', '--spec', 'attendance', '--delimiter', 'colon'], ingestorEnv);
    expect(badEnum.stderr).toContain('--delimiter must be one of COMMA, SEMICOLON, TAB, PIPE');
  });

  it('upload with --on-invalid-rows FAIL fails the job: exit 1 and the job error', async () => {
    const csv = path.join(dir, 'attendance-fail.csv');
    await fs.writeFile(csv, attendanceCsv(50, 10));
    const up = await runCli(['upload', csv, '--program', 'attendance', '--spec', 'attendance', '--on-invalid-rows', 'fail'], ingestorEnv);
    expect(up.code, show(up)).toBe(1);
    expect(up.stdout).toMatch(/Job [0-9a-f-]{36} FAILED/);
    expect(up.stdout).toContain('ROWS_INVALID');
  });

  it('upload refuses bad usage and a missing file before sending anything', async () => {
    const noSpec = await runCli(['upload', path.join(dir, 'attendance.csv'), '--program', 'attendance'], ingestorEnv);
    expect(noSpec.code).toBe(1);
    expect(noSpec.stderr).toContain('--spec is required');
    const missing = await runCli(['upload', path.join(dir, 'nope.csv'), '--program', 'attendance', '--spec', 'attendance'], ingestorEnv);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('No such file');
    const badEnum = await runCli(
      ['upload', path.join(dir, 'attendance.csv'), '--program', 'attendance', '--spec', 'attendance', '--on-invalid-rows', 'maybe'],
      ingestorEnv,
    );
    expect(badEnum.code).toBe(1);
    expect(badEnum.stderr).toContain('--on-invalid-rows must be one of SKIP, FAIL');
  });

  it('upload --no-wait prints the ids; job watch follows the job to its end and exits by its state', async () => {
    const csv = path.join(dir, 'attendance-big.csv');
    await fs.writeFile(csv, attendanceCsv(30_000, 1000));
    const up = await runCli(['upload', csv, '--program', 'attendance', '--spec', 'attendance', '--no-wait'], ingestorEnv);
    expect(up.code, show(up)).toBe(0);
    const jobId = /^job ([0-9a-f-]{36})$/m.exec(up.stdout)![1]!;
    const fileId = /^file ([0-9a-f-]{36})$/m.exec(up.stdout)![1]!;
    const watch = await runCli(['job', 'watch', jobId], ingestorEnv);
    expect(watch.code, show(watch)).toBe(2);
    expect(watch.stdout).toMatch(new RegExp(`Job ${jobId} SUCCEEDED_WITH_ERRORS in \\d+s: 30,000 processed, 29,970 succeeded, 30 failed`));
    const { file } = await t.admin.request(FileDocument, { id: fileId });
    expect(file.rows).toEqual({ total: 30_000, valid: 29_970, invalid: 30 });
    // A finished job: watch returns at once with the same verdict.
    const again = await runCli(['job', 'watch', jobId, '--json'], ingestorEnv);
    expect(again.code).toBe(2);
    expect(JSON.parse(again.stdout)).toMatchObject({ id: jobId, state: 'SUCCEEDED_WITH_ERRORS' });
  });

  it('job watch shows progress lines for a running job and exits 1 when it fails', async () => {
    const { runDiagnosticJob } = await t.admin.request(RunDiagnosticJobDocument, { input: { to: 60, stepMs: 100, failAt: 50 } });
    const watch = await runCli(['job', 'watch', runDiagnosticJob.id], adminEnv);
    expect(watch.code, show(watch)).toBe(1);
    expect(watch.stderr).toMatch(/^RUNNING .*rows/m);
    expect(watch.stdout).toMatch(/FAILED/);
    expect(watch.stdout).toContain('REQUESTED_FAILURE');
    const { job } = await t.admin.request(JobDocument, { id: runDiagnosticJob.id });
    expect(job.state).toBe('FAILED');
    const unknown = await runCli(['job', 'watch', '00000000-0000-0000-0000-000000000000'], adminEnv);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('NOT_FOUND');
  });
  it('import-url: size and sha256 locally, PUT to the signed URL, importFile, then the job: exit 0', async () => {
    const csv = path.join(dir, 'signed.csv');
    await fs.writeFile(csv, attendanceCsv(40));
    const r = await runCli(['import-url', csv, '--program', 'attendance', '--spec', 'attendance'], ingestorEnv);
    expect(r.code, show(r)).toBe(0);
    expect(r.stderr).toMatch(/^Declared file [0-9a-f-]{36}; upload URL valid until /m);
    expect(r.stderr).toMatch(/^Uploading .*signed\.csv 100\.0%/m);
    expect(r.stdout).toMatch(/Job [0-9a-f-]{36} SUCCEEDED/);
    expect(r.stdout).toContain('40 rows, 40 valid, 0 invalid');
    const fileId = /^File ([0-9a-f-]{36})/m.exec(r.stdout)![1]!;
    // It went through the signed-URL path (declared and uploaded), not the multipart upload.
    const { file } = await t.admin.request(SignedUploadFileDocument, { id: fileId });
    expect(file).toMatchObject({ state: 'SUCCEEDED', declaredSize: (await fs.stat(csv)).size, fileName: 'signed.csv' });
    expect(file.uploadedAt).not.toBeNull();
  });

  it('import-url with invalid rows (SYNC): exit 2 and the row errors; a ZIP refuses --program before sending', async () => {
    const csv = path.join(dir, 'signed-bad.csv');
    await fs.writeFile(csv, attendanceCsv(30, 10));
    const r = await runCli(['import-url', csv, '--program', 'attendance', '--spec', 'attendance', '--mode', 'sync'], ingestorEnv);
    expect(r.code, show(r)).toBe(2);
    expect(r.stdout).toMatch(/Job [0-9a-f-]{36} SUCCEEDED_WITH_ERRORS/);
    expect(r.stdout).toContain('30 rows, 27 valid, 3 invalid');
    expect(r.stdout).toMatch(/line 11 present: NOT_A_NUMBER/);
    const zip = await runCli(['import-url', path.join(dir, 'programs.zip'), '--program', 'attendance'], ingestorEnv);
    expect(zip.code, show(zip)).toBe(1);
    expect(zip.stderr).toContain('a national program ZIP takes neither --program nor --spec');
  });

  it('bulk LOCATION: the states apply (exit 0); the districts with bad rows exit 2 with line, column, code, message', async () => {
    const states = await runCli(['bulk', 'location', path.join(sunbird, 'location-upload-state.CONSTRUCTED.csv'), '--location-type', 'STATE'], ingestorEnv);
    expect(states.code, show(states)).toBe(0);
    expect(states.stderr).toMatch(/^Stored LOCATION upload [0-9a-f-]{36} \(.*, 2 rows\); job [0-9a-f-]{36}$/m);
    expect(states.stdout).toMatch(/Job [0-9a-f-]{36} SUCCEEDED/);
    expect(states.stdout).toMatch(/Upload [0-9a-f-]{36} \(LOCATION STATE\) COMPLETED: Operation is completed\. 2 rows, 2 succeeded, 0 failed/);

    const districts = await runCli(
      ['bulk', 'LOCATION', path.join(sunbird, 'location-upload-district.CONSTRUCTED.csv'), '--location-type', 'district', '--json'],
      ingestorEnv,
    );
    expect(districts.code, show(districts)).toBe(2);
    const out = JSON.parse(districts.stdout);
    expect(out.job.state).toBe('SUCCEEDED_WITH_ERRORS');
    expect(out.status).toMatchObject({ status: 'COMPLETED', counts: { total: 6, processed: 6, succeeded: 2, failed: 4 } });
    expect(out.failureCount).toBe(4);
    expect(out.failures.map((f: { line: number; errorCode: string; errorColumn: string }) => [f.line, f.errorCode, f.errorColumn])).toEqual([
      [4, 'PARENT_NOT_FOUND', 'parentId'],
      [5, 'PARENT_NOT_FOUND', 'parentCode'],
      [6, 'PARENT_REQUIRED', 'parentCode'],
      [7, 'MISSING_FIELD', 'code'],
    ]);
    // The same rows, read by a person: the first few failed rows and the rest counted.
    const human = await runCli(
      ['bulk', 'LOCATION', path.join(sunbird, 'location-upload-district.CONSTRUCTED.csv'), '--location-type', 'DISTRICT'],
      ingestorEnv,
    );
    expect(human.code, show(human)).toBe(2);
    expect(human.stdout).toMatch(/\(LOCATION DISTRICT\) COMPLETED: .* 6 rows, 2 succeeded, 4 failed/);
    expect(human.stdout).toMatch(/^ {2}line 5 parentCode: PARENT_NOT_FOUND: .*NOSUCHCODE/m);
    expect(human.stdout).toMatch(/^ {2}line 7 code: MISSING_FIELD: /m);

    const wrongType = await runCli(['bulk', 'USER', path.join(sunbird, 'user-upload.CONSTRUCTED.csv'), '--location-type', 'STATE'], ingestorEnv);
    expect(wrongType.code).toBe(1);
    expect(wrongType.stderr).toContain('--location-type applies to LOCATION uploads only, not USER');
  });

  it('credential-engine import follows the job: exit 0 with the counts; a framework the registry lacks fails alone (exit 2)', async () => {
    reg.routes.set(`/graph/${FIXTURE_FRAMEWORK}`, { body: await fixtureGraph() });
    const ok = await runCli(['credential-engine', 'import', FIXTURE_FRAMEWORK], ingestorEnv);
    expect(ok.code, show(ok)).toBe(0);
    expect(ok.stderr).toMatch(/^Queued job [0-9a-f-]{36} for 1 framework$/m);
    expect(ok.stdout).toMatch(/Job [0-9a-f-]{36} SUCCEEDED .*7 processed, 7 succeeded, 0 failed/);
    expect(ok.stdout).toContain(
      `${FIXTURE_FRAMEWORK} "Information Systems Foundations Competency Framework": SUCCEEDED: 6 competencies (6 created, 0 updated, 0 removed)`,
    );

    const missing = 'ce-00000000-0000-4000-8000-000000000404';
    const mixed = await runCli(['credential-engine', 'import', `${reg.url}/resources/${FIXTURE_FRAMEWORK}`, missing], ingestorEnv);
    expect(mixed.code, show(mixed)).toBe(2);
    expect(mixed.stdout).toMatch(/SUCCEEDED_WITH_ERRORS/);
    expect(mixed.stdout).toContain('SUCCEEDED: 6 competencies (0 created, 6 updated, 0 removed)');
    expect(mixed.stdout).toMatch(new RegExp(`^  ${missing}: FAILED: REGISTRY_NOT_FOUND: `, 'm'));

    const refused = await runCli(['credential-engine', 'import', 'https://evil.example/resources/x'], ingestorEnv);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('BAD_USER_INPUT');
  });
});
