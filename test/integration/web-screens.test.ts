import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { ImportFileDocument, JobDocument, RegisterSpecDocument, RequestUploadUrlDocument, UploadFileDocument, type SluiceClient } from '../../src/sdk/client';
import { attendanceCsv, attendanceSpec } from '../helpers/attendance';
import { startTestApp, type TestApp } from '../helpers/app';
import { announceBrowserSkip, audit, launchChromium, runBrowserTests, shoot, signIn } from '../helpers/browser';
import { collectJobEvents, FAST_JOBS } from '../helpers/jobs';
import { repoRoot } from '../helpers/process';
import { FIXTURE_FRAMEWORK, fixtureGraph, startFakeRegistry, type FakeRegistry } from '../helpers/registry';

/**
 * The jobs page's screens in Chromium against a real started service: preview and dry run, the
 * upload queue, the jobs list (filters, paging, live), a job's page for each type with cancel and
 * retry, directory uploads, the Credential Engine import and the skills tree; each screen is
 * audited with axe-core and shown at 390 px wide. Screenshots go to test-results/.
 */

const artifacts = path.join(repoRoot, 'test-results');
const sunbird = path.join(repoRoot, 'test/fixtures/sunbird');

let t: TestApp;
let reg: FakeRegistry;
let dir: string;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let ingestor: SluiceClient;
const pageErrors: string[] = [];

beforeAll(async () => {
  execFileSync(process.execPath, [path.join(repoRoot, 'web/build.mjs')], { cwd: repoRoot, stdio: 'inherit', timeout: 300_000 });
  await fs.mkdir(artifacts, { recursive: true });
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-web-screens-'));
  reg = await startFakeRegistry();
  reg.routes.set(`/graph/${FIXTURE_FRAMEWORK}`, { body: await fixtureGraph() });
  t = await startTestApp({ ...FAST_JOBS, SLUICE_CE_REGISTRY_URL: reg.url, SLUICE_CE_ALLOW_PRIVATE_ADDRESSES: 'true' });
  await t.admin.request(RegisterSpecDocument, { kind: 'EVENT', spec: attendanceSpec });
  ingestor = await t.clientWith(['INGESTOR']);
}, 400_000);

afterAll(async () => {
  await browser?.close();
  await ingestor?.close();
  await reg?.close();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

announceBrowserSkip();

describe.runIf(runBrowserTests)('jobs page screens in Chromium', () => {
  beforeAll(async () => {
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
    page = await context.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => m.type() === 'error' && pageErrors.push(m.text()));
    await signIn(page, t, ingestor, ['INGESTOR']);
  });

  it('previews the first rows with the dry run as cell highlights, queues several files, and re-enables Upload while jobs run', async () => {
    const bad = path.join(dir, 'attendance-bad.csv');
    await fs.writeFile(bad, 'date,school_id,present\n01/03/23,s1,4\n01/03/23,s2,x\n31/02/23,s3,5\n01/03/23,s4,6\n');
    const big = path.join(dir, 'attendance-big.csv');
    await fs.writeFile(big, attendanceCsv(200_000, 50_000));
    const good = path.join(dir, 'attendance-good.csv');
    await fs.writeFile(good, attendanceCsv(50));
    await page.goto(`${t.url}/`);
    await page.waitForSelector('#upload:not([hidden])');
    await audit(page, 'import form');

    await page.selectOption('[data-testid=spec]', 'attendance');
    await page.setInputFiles('[data-testid=file]', bad);
    await page.waitForSelector('[data-testid=preview]:not([hidden]) [data-testid=preview-table]');
    await expect.poll(() => page.textContent('[data-testid=preview-status]'), { timeout: 20_000 }).toMatch(/2 of the first 4 rows have problems/);
    // Line 3's `present` and line 4's `date` are highlighted, with the reason on the cell.
    const cells = page.locator('[data-testid=preview-table] td.bad');
    expect(await cells.count()).toBe(2);
    expect(await cells.nth(0).textContent()).toBe('x');
    expect(await cells.nth(0).getAttribute('data-error')).toMatch(/not a number/);
    expect(await cells.nth(1).textContent()).toBe('31/02/23');
    expect(await page.$$eval('[data-testid=preview-problems] li', (els) => els.map((e) => e.textContent))).toEqual([
      expect.stringMatching(/^Line 3, present: /),
      expect.stringMatching(/^Line 4, date: /),
    ]);
    await audit(page, 'preview');
    await shoot(page, 'preview');

    // A header that does not match: the problems are a list, one item each.
    const header = path.join(dir, 'wrong-header.csv');
    await fs.writeFile(header, 'day,school,present\n01/03/23,s1,4\n');
    await page.setInputFiles('[data-testid=file]', header);
    await expect.poll(() => page.textContent('[data-testid=preview-status]'), { timeout: 20_000 }).toMatch(/do not match the spec/);
    expect(await page.locator('[data-testid=preview-problems] li').count()).toBeGreaterThanOrEqual(3);

    // Three files at once: uploaded one after another; the form stays usable.
    await page.setInputFiles('[data-testid=file]', [big, bad, good]);
    await page.click('#upload-form button[type=submit]');
    expect(await page.isDisabled('#upload-form button[type=submit]')).toBe(false);
    await expect.poll(() => page.locator('[data-testid=queue-item]').count()).toBe(3);
    await page.waitForSelector('[data-testid=job]:not([hidden])', { timeout: 30_000 });
    await expect.poll(() => page.textContent('[data-testid=job-title]'), { timeout: 30_000 }).toBe('attendance-big.csv');
    // Each queue line follows its job to the end (no stale "job queued").
    await expect
      .poll(() => page.$$eval('[data-testid=queue-item]', (els) => els.map((e) => e.getAttribute('data-state'))), { timeout: 90_000 })
      .toEqual(['SUCCEEDED', 'SUCCEEDED_WITH_ERRORS', 'SUCCEEDED_WITH_ERRORS']);
    expect(await page.textContent('[data-testid=queue]')).toMatch(/attendance-good\.csv · stored; done/);

    // The partial success is a warning in plain words with formatted numbers.
    await page.waitForSelector('[data-testid=job-state][data-state=SUCCEEDED_WITH_ERRORS]', { timeout: 60_000 });
    const outcome = page.locator('[data-testid=job-error]');
    // Polled: the state can show a moment before the outcome line is drawn (seen on a loaded machine).
    await expect.poll(() => outcome.getAttribute('data-tone'), { timeout: 20_000 }).toBe('warning');
    await expect.poll(() => outcome.textContent(), { timeout: 20_000 }).toContain('199,996 of 200,000 rows were stored. 4 had problems');
    expect(await outcome.textContent()).not.toMatch(/rowErrors/);
    expect(await page.textContent('[data-testid=eta]')).toBe('finished');
    // The queue survives a reload.
    await page.reload();
    await expect.poll(() => page.locator('[data-testid=queue-item]').count(), { timeout: 20_000 }).toBe(3);
    // Recent activity lists every file, live.
    await expect.poll(() => page.textContent('[data-testid=recent]')).toContain('attendance-good.csv');
    await audit(page, 'job page');
    await shoot(page, 'import');
    expect(pageErrors).toEqual([]);
  }, 240_000);

  it('a failed job shows its header problems as a list and can be retried from its page', async () => {
    const { uploadFile } = await ingestor.upload(
      UploadFileDocument,
      { program: 'attendance', spec: 'attendance', file: null },
      { file: { body: 'day,school,present\n1,2,3\n', filename: 'header-broken.csv', contentType: 'text/csv' } },
    );
    await collectJobEvents(ingestor, uploadFile.job.id, { afterSeq: 0 });
    await page.goto(`${t.url}/?file=${uploadFile.file.id}`);
    await page.waitForSelector('[data-testid=job-state][data-state=FAILED]', { timeout: 30_000 });
    expect(await page.textContent('[data-testid=job-title]')).toBe('header-broken.csv');
    expect(await page.getAttribute('[data-testid=job-error]', 'data-tone')).toBe('error');
    expect(await page.locator('[data-testid=header-problems] li').count()).toBeGreaterThanOrEqual(2);
    expect(await page.isVisible('#job-cancel')).toBe(false);
    await page.click('#job-retry');
    await expect.poll(async () => (await ingestor.request(JobDocument, { id: uploadFile.job.id })).job.attempt, { timeout: 30_000 }).toBeGreaterThanOrEqual(2);
    await page.waitForSelector('[data-testid=job-state][data-state=FAILED]', { timeout: 30_000 });
    await shoot(page, 'failed-job');
    expect(pageErrors).toEqual([]);
  }, 240_000);

  it('uploads locations, organisations and users and shows per-row results', async () => {
    await page.goto(`${t.url}/?view=directory`);
    await page.waitForSelector('#directory:not([hidden])');
    await audit(page, 'directory form');
    const blocks = path.join(dir, 'blocks.csv');
    await fs.writeFile(blocks, 'code,name,parentCode\nAPBLK101,Block 101,APDIST1\nAPBLK102,Block 102,APDIST1\nAPBLK201,Block 201,APDIST2\n');
    const steps: Array<[string, string, string | undefined]> = [
      ['LOCATION', path.join(sunbird, 'location-upload-state.CONSTRUCTED.csv'), 'STATE'],
      ['LOCATION', path.join(sunbird, 'location-upload-district.CONSTRUCTED.csv'), 'DISTRICT'],
      ['LOCATION', blocks, 'BLOCK'],
      ['ORGANISATION', path.join(sunbird, 'org-upload.CONSTRUCTED.csv'), undefined],
      ['USER', path.join(sunbird, 'user-upload.CONSTRUCTED.csv'), undefined],
    ];
    for (const [kind, file, level] of steps) {
      await page.selectOption('[data-testid=directory-kind]', kind);
      if (level) await page.selectOption('#directory-form select[name=locationType]', level);
      await page.setInputFiles('[data-testid=directory-file]', file);
      await page.click('#directory-form button[type=submit]');
      await expect.poll(() => page.textContent('[data-testid=job-title]'), { timeout: 30_000 }).toBe(path.basename(file));
      await page.waitForSelector('[data-testid=job-state][data-state^=SUCCEEDED]', { timeout: 60_000 });
      await page.waitForSelector('[data-testid=job-detail]:not([hidden]) [data-testid=bulk-successes]', { timeout: 30_000 });
      expect(await page.textContent('[data-testid=job-error]'), file).toMatch(/rows were stored/);
      expect(await page.locator('[data-testid=bulk-successes] tbody tr').count(), file).toBeGreaterThan(0);
      // The form is free for the next file, and the upload line does not outlive the job.
      expect(await page.isDisabled('#directory-form button[type=submit]')).toBe(false);
      await expect.poll(() => page.isHidden('#directory-progress')).toBe(true);
    }
    // The user file has bad rows: each with its line, column and a plain message.
    expect(await page.textContent('[data-testid=job-error]')).toMatch(/had problems and were skipped/);
    expect(await page.locator('[data-testid=bulk-failures] tbody tr').count()).toBeGreaterThan(0);
    // A bad row: reported with its line and a plain message.
    const bad = path.join(dir, 'locations-bad.csv');
    await fs.writeFile(bad, 'code,name,parentCode\nNOPE1,Nowhere,MISSING\nOK1,Somewhere,\n');
    await page.selectOption('[data-testid=directory-kind]', 'LOCATION');
    await page.selectOption('#directory-form select[name=locationType]', 'STATE');
    await page.setInputFiles('[data-testid=directory-file]', bad);
    await page.click('#directory-form button[type=submit]');
    await expect.poll(() => page.textContent('[data-testid=job-title]'), { timeout: 30_000 }).toBe('locations-bad.csv');
    await page.waitForSelector('[data-testid=job-detail]:not([hidden]) [data-testid=bulk-successes]', { timeout: 60_000 });
    await audit(page, 'directory results');
    await shoot(page, 'directory');
    expect(pageErrors).toEqual([]);
  }, 240_000);

  it('imports a Credential Engine framework, shows per-framework results, and browses and searches the skills tree', async () => {
    await page.goto(`${t.url}/?view=skills`);
    await page.waitForSelector('#ce:not([hidden])');
    await page.fill('[data-testid=ce-frameworks]', FIXTURE_FRAMEWORK);
    await page.click('#ce-form button[type=submit]');
    await page.waitForSelector('[data-testid=job-state][data-state=SUCCEEDED]', { timeout: 60_000 });
    await page.waitForSelector('[data-testid=frameworks]');
    expect(await page.textContent('[data-testid=frameworks]')).toContain(FIXTURE_FRAMEWORK);
    expect(await page.textContent('[data-testid=job-error]')).toMatch(/6 skills added/);
    // Browse: the top level, then down into children and back up through the parent.
    await expect.poll(() => page.locator('[data-testid=skills-results] li').count(), { timeout: 20_000 }).toBeGreaterThan(0);
    await page.locator('[data-testid=skills-results] button').first().click();
    await page.waitForSelector('[data-testid=skill-node]:not([hidden])');
    const child = page.locator('[data-testid=skill-children] button').first();
    const childName = (await child.textContent())!;
    await child.press('Enter');
    await expect.poll(() => page.textContent('#skill-node-title')).toBe(childName.replace(/ \(.*\)$/, ''));
    expect(await page.textContent('[data-testid=skill-node]')).toMatch(/Parent: /);
    // Search.
    await page.fill('[data-testid=skills-q]', childName.replace(/ \(.*\)$/, '').slice(0, 6));
    await page.press('[data-testid=skills-q]', 'Enter');
    await expect.poll(() => page.textContent('#skills-count')).toMatch(/match/);
    expect(await page.locator('[data-testid=skills-results] li').count()).toBeGreaterThan(0);
    await audit(page, 'skills');
    await shoot(page, 'skills');

    // Recent activity on the import tab lists every kind of job and takes new ones live.
    await page.click('#tab-import');
    await page.waitForSelector('#recent:not([hidden])');
    await expect.poll(() => page.textContent('[data-testid=recent]')).toContain('Credential Engine import');
    await expect.poll(() => page.textContent('[data-testid=recent]')).toContain('locations-bad.csv · Directory upload');
    await ingestor.upload(
      UploadFileDocument,
      { program: 'attendance', spec: 'attendance', file: null },
      { file: { body: attendanceCsv(4), filename: 'recent-live.csv', contentType: 'text/csv' } },
    );
    await expect.poll(() => page.textContent('[data-testid=recent] li:first-child'), { timeout: 30_000 }).toMatch(/recent-live\.csv · State CSV upload · done/);
    expect(pageErrors).toEqual([]);
  }, 240_000);

  it('lists every job type with filters, paging and live updates, and opens each job', async () => {
    // A signed-URL import: URL, PUT, importFile.
    const body = attendanceCsv(7);
    const { requestUploadUrl: u } = await ingestor.request(RequestUploadUrlDocument, {
      input: {
        fileName: 'signed.csv',
        program: 'attendance',
        spec: 'attendance',
        size: Buffer.byteLength(body),
        sha256: createHash('sha256').update(body).digest('hex'),
      },
    });
    const put = await fetch(u.url, { method: 'PUT', headers: Object.fromEntries(u.headers.map((x) => [x.name, x.value])), body });
    expect(put.status, await put.text()).toBeLessThan(300);
    const { importFile } = await ingestor.request(ImportFileDocument, { fileId: u.fileId });
    await collectJobEvents(ingestor, importFile.job!.id, { afterSeq: 0 });

    await page.goto(`${t.url}/?view=jobs`);
    await page.waitForSelector('[data-testid=jobs-table] [data-testid=job-row]');
    const text = () => page.textContent('[data-testid=jobs-table]');
    await expect.poll(text, { timeout: 20_000 }).toContain('attendance-good.csv');
    expect(await text()).toContain('location-upload-state.CONSTRUCTED.csv');
    expect(await text()).toContain('Credential Engine import');
    expect(await text()).toContain('Directory upload');
    expect(await page.textContent('[data-testid=jobs-page]')).toMatch(/page 1 of 1 · 1[0-9] jobs/);
    await audit(page, 'jobs list');

    await page.selectOption('[data-testid=jobs-type]', 'signed');
    await expect.poll(() => page.locator('[data-testid=job-row]').count()).toBe(1);
    expect(await text()).toMatch(/signed\.csv.*Signed-URL import/s);
    await page.selectOption('[data-testid=jobs-type]', 'directory.bulk-upload');
    await expect.poll(() => page.locator('[data-testid=job-row]').count()).toBe(6);
    await page.selectOption('[data-testid=jobs-type]', '');
    await page.selectOption('[data-testid=jobs-state]', 'FAILED');
    await expect.poll(() => page.locator('[data-testid=job-row]').count()).toBe(1);
    expect(await text()).toContain('header-broken.csv');
    await page.selectOption('[data-testid=jobs-state]', '');
    await page.selectOption('[data-testid=jobs-spec]', 'attendance');
    await expect.poll(() => page.locator('[data-testid=job-row]').count()).toBe(6);
    await page.selectOption('[data-testid=jobs-spec]', '');
    await expect.poll(() => page.locator('[data-testid=job-row]').count()).toBeGreaterThan(10);

    // Live: a job submitted elsewhere appears on top and runs to its end without a reload.
    const { uploadFile } = await ingestor.upload(
      UploadFileDocument,
      { program: 'attendance', spec: 'attendance', file: null },
      { file: { body: attendanceCsv(10), filename: 'live.csv', contentType: 'text/csv' } },
    );
    await expect.poll(() => page.textContent('[data-testid=job-row]:first-child'), { timeout: 30_000 }).toContain('live.csv');
    await page.waitForSelector(`[data-job="${uploadFile.job.id}"] .state[data-state=SUCCEEDED]`, { timeout: 30_000 });

    // Paging: 20 a page.
    for (let i = 0; i < 12; i++)
      await ingestor.upload(
        UploadFileDocument,
        { program: 'attendance', spec: 'attendance', file: null },
        { file: { body: attendanceCsv(3), filename: `page-${i}.csv`, contentType: 'text/csv' } },
      );
    await page.click('#jobs-refresh');
    await expect.poll(() => page.textContent('[data-testid=jobs-page]')).toMatch(/page 1 of 2/);
    await page.click('#jobs-next');
    await expect.poll(() => page.textContent('[data-testid=jobs-page]')).toMatch(/page 2 of 2/);
    await page.click('#jobs-prev');
    // Back on page 1 before its rows are clicked: a click while the list is redrawn can land on a row that is being replaced.
    await expect.poll(() => page.textContent('[data-testid=jobs-page]')).toMatch(/page 1 of 2/);
    await page.waitForSelector(`[data-job="${uploadFile.job.id}"] a`, { timeout: 20_000 });
    await shoot(page, 'jobs');

    // Each job opens on its own page.
    await page.click(`[data-job="${uploadFile.job.id}"] a`);
    await expect.poll(() => page.textContent('[data-testid=job-title]'), { timeout: 20_000 }).toBe('live.csv');
    expect(page.url()).toContain(`file=${uploadFile.file.id}`);
    expect(pageErrors).toEqual([]);
  }, 240_000);

  it('cancels a waiting job from its page', async () => {
    // A service without workers: the job waits in QUEUED until cancelled.
    const apiOnly = await startTestApp({ ...FAST_JOBS, SLUICE_ROLE: 'api' });
    await apiOnly.admin.request(RegisterSpecDocument, { kind: 'EVENT', spec: attendanceSpec });
    const { uploadFile } = await apiOnly.admin.upload(
      UploadFileDocument,
      { program: 'attendance', spec: 'attendance', file: null },
      { file: { body: attendanceCsv(5), filename: 'to-cancel.csv', contentType: 'text/csv' } },
    );
    const p = await context.newPage();
    p.on('pageerror', (e) => pageErrors.push(e.message));
    await signIn(p, apiOnly, apiOnly.admin, ['ADMIN']);
    await p.goto(`${apiOnly.url}/?file=${uploadFile.file.id}`);
    await p.waitForSelector('[data-testid=job-state][data-state=QUEUED]', { timeout: 20_000 });
    expect(await p.textContent('#job-percent')).toBe('waiting for a worker');
    await p.click('#job-cancel');
    await p.waitForSelector('[data-testid=job-state][data-state=CANCELLED]', { timeout: 20_000 });
    expect(await p.isVisible('#job-cancel')).toBe(false);
    await expect.poll(() => p.textContent('[data-testid=job-error]')).toMatch(/cancelled/);
    await p.close();
    expect(pageErrors).toEqual([]);
  }, 240_000);
});
