import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileDocument, FileMergeDocument, FileRowErrorsDocument, RegisterSpecDocument, UploadFileDocument, type SluiceClient } from '../../src/sdk/client';
import { attendanceCsv, attendanceSpec } from '../helpers/attendance';
import { startTestApp, type TestApp } from '../helpers/app';
import { announceBrowserSkip, ARTIFACTS, audit, launchChromium, runBrowserTests, shoot, signIn } from '../helpers/browser';
import { collectJobEvents, FAST_JOBS } from '../helpers/jobs';
import { repoRoot } from '../helpers/process';

/**
 * The import screen's later steps in Chromium against a real started service: matching a file's
 * columns to the spec (the upload then loads them), the merge diff of a dimension before its
 * upload, fixing invalid rows in a grid and sending them back as corrections, and the downloads of
 * the error report and the stored rows. Each step is audited with axe-core and shown at 390 px;
 * screenshots go to test-results/.
 */

/** A keyed dimension whose school_id is also read from a "School Code" column (an alias). */
const schoolSpec = {
  program: 'wschool',
  input: {
    type: 'object',
    properties: {
      school_id: { type: 'string', shouldNotNull: true, unique: true, aliases: ['School Code'] },
      school_name: { type: 'string', shouldNotNull: true },
      students: { type: 'integer' },
    },
    required: ['school_id', 'school_name'],
  },
};

let t: TestApp;
let dir: string;
let browser: Browser;
let page: Page;
let ingestor: SluiceClient;
const pageErrors: string[] = [];

const upload = async (spec: string, body: string, filename: string) => {
  const { uploadFile } = await ingestor.upload(UploadFileDocument, { program: spec, spec, file: null }, { file: { body, filename, contentType: 'text/csv' } });
  await collectJobEvents(ingestor, uploadFile.job.id, { afterSeq: 0 });
  return uploadFile;
};

/** Clicks a download button and returns the saved file's name and text. */
async function download(selector: string, saveAs: string): Promise<{ name: string; text: string }> {
  const [d] = await Promise.all([page.waitForEvent('download'), page.click(selector)]);
  const saved = path.join(ARTIFACTS, saveAs);
  await d.saveAs(saved);
  return { name: d.suggestedFilename(), text: await fs.readFile(saved, 'utf8') };
}

beforeAll(async () => {
  execFileSync(process.execPath, [path.join(repoRoot, 'web/build.mjs')], { cwd: repoRoot, stdio: 'inherit', timeout: 300_000 });
  await fs.mkdir(ARTIFACTS, { recursive: true });
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-web-steps-'));
  t = await startTestApp({ ...FAST_JOBS });
  await t.admin.request(RegisterSpecDocument, { kind: 'EVENT', spec: attendanceSpec });
  await t.admin.request(RegisterSpecDocument, { kind: 'DIMENSION', spec: schoolSpec });
  ingestor = await t.clientWith(['INGESTOR']);
}, 400_000);

afterAll(async () => {
  await browser?.close();
  await ingestor?.close();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

announceBrowserSkip();

describe.runIf(runBrowserTests)('import steps in Chromium', () => {
  beforeAll(async () => {
    browser = await launchChromium();
    const context = await browser.newContext({ viewport: { width: 1200, height: 900 }, acceptDownloads: true });
    page = await context.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => m.type() === 'error' && pageErrors.push(m.text()));
    await signIn(page, t, ingestor, ['INGESTOR']);
  });

  it('matches the columns of a file whose header differs from the spec, and the upload loads them with that matching', async () => {
    // "Date" matches by name, "schoolid" is a close name of school_id, "Attendance Count" must be chosen, "notes" is extra.
    const csv = path.join(dir, 'register.csv');
    await fs.writeFile(csv, 'Date,schoolid,Attendance Count,notes\n01/03/23,s1,4,ok\n01/03/23,s2,5,late\n02/03/23,s3,6,\n');
    await page.goto(`${t.url}/`);
    await page.waitForSelector('#upload:not([hidden])');
    await page.selectOption('[data-testid=spec]', 'attendance');
    await page.setInputFiles('[data-testid=file]', csv);
    await expect.poll(() => page.textContent('[data-testid=preview-status]'), { timeout: 20_000 }).toMatch(/do not match the spec/);
    await page.waitForSelector('[data-testid=mapping]:not([hidden])');
    const select = (header: string) => `[data-testid=mapping-select][data-header="${header}"]`;
    // The suggestions are chosen: the API's did-you-mean, the name match, and "ignore" for the rest.
    expect(await page.inputValue(select('Date'))).toBe('date');
    expect(await page.inputValue(select('schoolid'))).toBe('school_id');
    expect(await page.inputValue(select('Attendance Count'))).toBe('');
    expect(await page.inputValue(select('notes'))).toBe('');
    expect(await page.textContent('[data-testid=mapping-note]')).toMatch(/Still needed: present/);
    // Every select is labelled with the column it is for.
    expect(await page.getAttribute(select('Attendance Count'), 'aria-label')).toBe('Spec column for your column Attendance Count');

    // Two columns for one spec column are caught before anything is sent.
    await page.selectOption(select('Attendance Count'), 'school_id');
    expect(await page.textContent('[data-testid=mapping-note]')).toMatch(/schoolid and Attendance Count are both matched to school_id/);
    await page.selectOption(select('Attendance Count'), 'present');
    expect(await page.textContent('[data-testid=mapping-note]')).toMatch(/Every required column is matched\. Ignored: notes\./);
    await page.click('[data-testid=mapping-apply]');
    await expect
      .poll(() => page.textContent('[data-testid=preview-status]'), { timeout: 20_000 })
      .toBe('With the columns as matched, the first 3 rows are valid.');
    expect(await page.textContent('[data-testid=preview-table] thead')).toContain('Attendance Count → present');
    expect(await page.textContent('[data-testid=preview-table] thead')).toContain('notes (ignored)');
    expect(await page.textContent('[data-testid=preview-problems]')).toMatch(/notes/);
    await audit(page, 'mapping');
    await shoot(page, 'mapping');

    await page.click('#upload-form button[type=submit]');
    await expect.poll(() => page.textContent('[data-testid=job-title]'), { timeout: 30_000 }).toBe('register.csv');
    await page.waitForSelector('[data-testid=job-state][data-state=SUCCEEDED]', { timeout: 60_000 });
    const fileId = new URL(page.url()).searchParams.get('file')!;
    const { file } = await ingestor.request(FileDocument, { id: fileId });
    expect(file.rows).toEqual({ total: 3, valid: 3, invalid: 0 });
    expect(file.warnings).toEqual([expect.objectContaining({ code: 'IGNORED_COLUMNS', columns: [expect.objectContaining({ name: 'notes' })] })]);
    // The stored rows, as the download gives them: the mapped columns loaded.
    const stored = await download('[data-testid=download-valid]', 'web-register-valid.csv');
    expect(stored.name).toBe('register_valid.csv');
    expect(stored.text).toBe('_line,date,school_id,present\n2,2023-03-01,s1,4\n3,2023-03-01,s2,5\n4,2023-03-02,s3,6\n');
    expect(pageErrors).toEqual([]);
  }, 240_000);

  it('shows the merge diff of a dimension (new, updated with before and after, unchanged, removed) before the upload applies it', async () => {
    await upload('wschool', 'school_id,school_name,students\ns1,One,10\ns2,Two,20\ns3,Three,30\n', 'schools-first.csv');
    // "School Code" is the spec's other name for school_id: no mapping step.
    const csv = path.join(dir, 'schools-next.csv');
    await fs.writeFile(csv, 'School Code,school_name,students\ns1,One,10\ns2,Two Renamed,25\ns4,Four,40\n');
    await page.goto(`${t.url}/`);
    await page.waitForSelector('#upload:not([hidden])');
    await page.selectOption('[data-testid=spec]', 'wschool');
    expect(await page.isVisible('[data-testid=delete-missing]')).toBe(true);
    expect(await page.textContent('#upload-form button[type=submit]')).toBe('Upload and merge');
    await page.setInputFiles('[data-testid=file]', csv);
    await expect.poll(() => page.textContent('[data-testid=preview-status]'), { timeout: 20_000 }).toBe('The first 3 rows are valid.');
    expect(await page.isHidden('[data-testid=mapping]')).toBe(true);
    const counts = () => page.$$eval('[data-testid=diff-counts] li', (els) => els.map((e) => e.textContent));
    await expect
      .poll(counts, { timeout: 20_000 })
      .toEqual([
        'add 1 new row',
        'update 1 row whose values changed',
        'leave 1 row as it is (no change)',
        'remove no row (the file is not marked as the whole table)',
      ]);
    const changes = await page.$$eval('[data-testid=diff-changes] tbody tr', (els) =>
      els.map((e) => [...e.querySelectorAll('th, td')].map((c) => c.textContent)),
    );
    expect(changes).toEqual([
      ['3', 'school_id s2', 'school_name', 'Two', 'Two Renamed'],
      ['students', '20', '25'],
    ]);
    // As the whole table: s3 would go.
    await page.check('[data-testid=delete-missing]');
    await expect.poll(counts, { timeout: 20_000 }).toContain('remove 1 row whose key is not in the file');
    expect(await page.textContent('[data-testid=diff-status]')).toMatch(/Nothing is changed until you press Upload/);
    await audit(page, 'merge diff');
    await shoot(page, 'merge-diff');

    await page.click('#upload-form button[type=submit]');
    await expect.poll(() => page.textContent('[data-testid=job-title]'), { timeout: 30_000 }).toBe('schools-next.csv');
    await page.waitForSelector('[data-testid=job-state][data-state=SUCCEEDED]', { timeout: 60_000 });
    const { file } = await ingestor.request(FileMergeDocument, { id: new URL(page.url()).searchParams.get('file')! });
    // The upload applied exactly the diff shown.
    expect(file).toMatchObject({ mode: 'MERGE', deleteMissing: true, merge: { inserted: 1, updated: 1, unchanged: 1, deleted: 1 } });
    expect(pageErrors).toEqual([]);
  }, 240_000);

  it('fixes invalid rows in a grid, sends them back, follows the corrections job, and the fixed row is stored', async () => {
    // Lines 6 and 11 have "x" as present.
    const original = await upload('attendance', attendanceCsv(10, 5), 'fix-me.csv');
    await page.goto(`${t.url}/?file=${original.file.id}`);
    await page.waitForSelector('[data-testid=job-state][data-state=SUCCEEDED_WITH_ERRORS]', { timeout: 30_000 });
    await page.waitForSelector('[data-testid=errors]:not([hidden])');
    const report = await download('[data-testid=download]', 'web-fix-me-errors.csv');
    expect(report.name).toBe('fix-me_errors.csv');
    expect(
      report.text
        .trim()
        .split('\n')
        .map((l) => l.split(',').slice(0, 4).join(',')),
    ).toEqual(['_line,date,school_id,present', '6,01/03/23,s5,x', '11,01/03/23,s10,x']);

    await page.click('[data-testid=fix-open]');
    await page.waitForSelector('[data-testid=fix]:not([hidden]) [data-testid=fix-table] tbody tr');
    expect(await page.locator('[data-testid=fix-table] tbody tr').count()).toBe(2);
    // The bad cells are marked, and the first has the keyboard focus.
    const bad = page.locator('[data-testid=fix-table] input.bad');
    expect(await bad.count()).toBe(2);
    expect(await page.evaluate(`document.activeElement.dataset.line + ':' + document.activeElement.dataset.column`)).toBe('6:present');
    expect(await bad.first().getAttribute('aria-label')).toMatch(/^Line 6, present \(problem: .*not a number/);
    // Sending nothing changed is refused in the page.
    await page.click('[data-testid=fix-send]');
    await expect.poll(() => page.textContent('[data-testid=fix-status]')).toMatch(/Change at least one cell first/);
    await bad.first().focus();
    await page.keyboard.press('ControlOrMeta+A');
    await page.keyboard.type('7');
    await audit(page, 'fix grid');
    await shoot(page, 'fix-grid');

    await page.click('[data-testid=fix-send]');
    await expect.poll(() => page.textContent('[data-testid=job-title]'), { timeout: 30_000 }).toBe('fix-me_corrections.csv');
    await page.waitForSelector('[data-testid=job-state][data-state=SUCCEEDED]', { timeout: 60_000 });
    // The outcome is read again once the job ended.
    await expect.poll(() => page.textContent('[data-testid=job-error]:not([hidden])'), { timeout: 20_000 }).toBe('All 1 rows were stored.');
    expect(await page.isHidden('[data-testid=download-valid]')).toBe(true);
    expect(await page.textContent('[data-testid=job-links]')).toBe('These rows correct an earlier upload: open the corrected file.');
    await page.click('[data-testid=job-links] a');
    await expect.poll(() => page.textContent('[data-testid=job-title]'), { timeout: 20_000 }).toBe('fix-me.csv');
    await expect.poll(() => page.textContent('[data-testid=rows-valid]'), { timeout: 20_000 }).toBe('9');
    expect(await page.textContent('[data-testid=job-links]')).toMatch(/Corrections sent \(1\): .*\(done\)/);
    const { file } = await ingestor.request(FileRowErrorsDocument, { id: original.file.id });
    expect(file.rowErrors.nodes.map((e) => e.line)).toEqual([11]);
    // The fixed row is in the table under its original line.
    const stored = await download('[data-testid=download-valid]', 'web-fix-me-valid.csv');
    expect(stored.name).toBe('fix-me_valid.csv');
    const lines = stored.text.trim().split('\n');
    expect(lines).toHaveLength(10);
    expect(lines).toContain('6,2023-03-01,s5,7');
    expect(lines.some((l) => l.startsWith('11,'))).toBe(false);
    await audit(page, 'corrected file');
    await shoot(page, 'corrected');
    expect(pageErrors).toEqual([]);
  }, 240_000);
});
