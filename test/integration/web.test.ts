import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CreateClientDocument,
  FileDocument,
  IssueTokenDocument,
  RegisterSpecDocument,
  UploadCorrectionsDocument,
  UploadFileDocument,
  type SluiceClient,
} from '../../src/sdk/client';
import { attendanceCsv, attendanceSpec } from '../helpers/attendance';
import { startTestApp, type TestApp } from '../helpers/app';
import { announceBrowserSkip, launchChromium, runBrowserTests } from '../helpers/browser';
import { collectJobEvents, FAST_JOBS } from '../helpers/jobs';
import { repoRoot } from '../helpers/process';

/** Screenshots and the downloaded report are kept here as test artifacts (gitignored). */
const artifacts = path.join(repoRoot, 'test-results');

let t: TestApp;
let dir: string;
let browser: Browser;
let ingestor: SluiceClient;
let ingestorToken: string;
const INGESTOR_ID = 'web-ingestor';
let ingestorSecret: string;

beforeAll(async () => {
  // npm test builds web/dist first (pretest); this makes `vitest run` of this file alone work too.
  execFileSync(process.execPath, [path.join(repoRoot, 'web/build.mjs')], { cwd: repoRoot, stdio: 'inherit', timeout: 300_000 });
  await fs.mkdir(artifacts, { recursive: true });
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-web-test-'));
  t = await startTestApp({ ...FAST_JOBS });
  await t.admin.request(RegisterSpecDocument, { kind: 'EVENT', spec: attendanceSpec });
  const { createClient } = await t.admin.request(CreateClientDocument, { input: { clientId: INGESTOR_ID, name: 'Web ingestor', roles: ['INGESTOR'] } });
  ingestorSecret = createClient.clientSecret;
  const { issueToken } = await t.anon.request(IssueTokenDocument, { clientId: INGESTOR_ID, clientSecret: ingestorSecret });
  ingestorToken = issueToken.accessToken;
  ingestor = t.anon.withToken(ingestorToken);
}, 400_000);

afterAll(async () => {
  await browser?.close();
  await ingestor?.close();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

describe('pages served by Sluice', () => {
  it('serves the jobs page at / and GraphiQL at GET /graphql for browsers, all from local files', async () => {
    const home = await fetch(`${t.url}/`);
    expect(home.status).toBe(200);
    const html = await home.text();
    expect(html).toContain('<title>Sluice · Jobs</title>');
    const ide = await fetch(`${t.url}/graphql`, { headers: { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' } });
    expect(ide.status).toBe(200);
    const ideHtml = await ide.text();
    expect(ideHtml).toContain('<title>Sluice · GraphQL IDE</title>');
    for (const page of [html, ideHtml]) {
      // Nothing from a CDN: every script and stylesheet is a local path.
      expect(page).not.toMatch(/(src|href)="(https?:)?\/\//);
      const script = /<script type="module" crossorigin src="(\/assets\/[^"]+\.js)"/.exec(page)?.[1];
      expect(script, page).toBeDefined();
      const asset = await fetch(`${t.url}${script}`);
      expect(asset.status).toBe(200);
      expect(asset.headers.get('content-type')).toMatch(/javascript/);
      expect(asset.headers.get('cache-control')).toContain('immutable');
    }
    // GraphQL itself is untouched: JSON GET with a query, and POST.
    const get = await fetch(`${t.url}/graphql?query=%7B__typename%7D`, { headers: { accept: 'application/json', 'apollo-require-preflight': 'true' } });
    expect(await get.json()).toEqual({ data: { __typename: 'Query' } });
    const post = await fetch(`${t.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ __typename }' }),
    });
    expect(await post.json()).toEqual({ data: { __typename: 'Query' } });
    // The IDE page answers only at /graphql.
    expect((await fetch(`${t.url}/graphiql.html`)).status).toBe(404);
  });

  it('SLUICE_PLAYGROUND=false turns GraphiQL off; the jobs page stays', async () => {
    const off = await startTestApp({ SLUICE_PLAYGROUND: 'false' });
    const res = await fetch(`${off.url}/graphql`, { headers: { accept: 'text/html' } });
    expect(await res.text()).not.toContain('GraphQL IDE');
    expect((await fetch(`${off.url}/`)).status).toBe(200);
  });

  it('GET /files/:id/errors.csv streams the error report to its owner only', async () => {
    const upload = async (csv: string) =>
      (
        await ingestor.upload(
          UploadFileDocument,
          { program: 'attendance', spec: 'attendance', file: null },
          { file: { body: csv, filename: 'a.csv', contentType: 'text/csv' } },
        )
      ).uploadFile;
    const bad = await upload(attendanceCsv(100, 10));
    const good = await upload(attendanceCsv(5, 1000));
    await collectJobEvents(ingestor, bad.job.id, { afterSeq: 0 });
    await collectJobEvents(ingestor, good.job.id, { afterSeq: 0 });
    const url = (id: string) => `${t.url}/files/${id}/errors.csv`;
    const auth = { authorization: `Bearer ${ingestorToken}` };

    const ok = await fetch(url(bad.file.id), { headers: auth });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('content-type')).toMatch(/^text\/csv/);
    expect(ok.headers.get('content-disposition')).toBe('attachment; filename="a_errors.csv"');
    const lines = (await ok.text()).trim().split('\n');
    expect(lines[0]).toContain('error_description');
    expect(lines).toHaveLength(11);

    const anon = await fetch(url(bad.file.id));
    expect(anon.status).toBe(401);
    expect(await anon.json()).toMatchObject({ errors: [{ extensions: { code: 'UNAUTHENTICATED' } }] });
    const other = await t.clientWith(['VIEWER']);
    const foreign = await fetch(url(bad.file.id), { headers: { authorization: `Bearer ${other.options.token}` } });
    expect(foreign.status).toBe(404);
    const none = await fetch(url(good.file.id), { headers: auth });
    expect(none.status).toBe(404);
    expect(await none.json()).toMatchObject({ errors: [{ message: expect.stringMatching(/has no error report/), extensions: { code: 'NOT_FOUND' } }] });
    expect((await fetch(url('not-a-uuid'), { headers: auth })).status).toBe(404);
  });

  it('GET /files/:id/valid.csv streams the rows stored in the table to their owner only, corrected rows included', async () => {
    const upload = async (csv: string, filename: string) =>
      (
        await ingestor.upload(
          UploadFileDocument,
          { program: 'attendance', spec: 'attendance', file: null },
          { file: { body: csv, filename, contentType: 'text/csv' } },
        )
      ).uploadFile;
    // Line 3 has a bad number, line 5 a formula-like school id (stored as written, neutralised in the CSV).
    const mixed = await upload('date,school_id,present\n01/03/23,s1,4\n01/03/23,s2,x\n02/03/23,"s3, north",5\n02/03/23,=cmd,6\n', 'mixed rows.csv');
    const broken = await upload('day,school,present\n1,2,3\n', 'broken.csv');
    await collectJobEvents(ingestor, mixed.job.id, { afterSeq: 0 });
    await collectJobEvents(ingestor, broken.job.id, { afterSeq: 0 });
    const url = (id: string) => `${t.url}/files/${id}/valid.csv`;
    const auth = { authorization: `Bearer ${ingestorToken}` };

    const ok = await fetch(url(mixed.file.id), { headers: auth });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('content-type')).toMatch(/^text\/csv/);
    expect(ok.headers.get('content-disposition')).toBe('attachment; filename="mixed_rows_valid.csv"');
    expect(await ok.text()).toBe('_line,date,school_id,present\n2,2023-03-01,s1,4\n4,2023-03-02,"s3, north",5\n5,2023-03-02,\'=cmd,6\n');

    // A corrected row joins the file's rows, and the download.
    const { uploadCorrections } = await ingestor.upload(
      UploadCorrectionsDocument,
      { fileId: mixed.file.id, file: null },
      { file: { body: '_line,date,school_id,present,error_description\n3,01/03/23,s2,7,\n', filename: 'fixed.csv', contentType: 'text/csv' } },
    );
    await collectJobEvents(ingestor, uploadCorrections.job.id, { afterSeq: 0 });
    const after = (await (await fetch(url(mixed.file.id), { headers: auth })).text()).trim().split('\n');
    expect(after).toEqual(['_line,date,school_id,present', '2,2023-03-01,s1,4', '3,2023-03-01,s2,7', '4,2023-03-02,"s3, north",5', "5,2023-03-02,'=cmd,6"]);

    expect((await fetch(url(mixed.file.id))).status).toBe(401);
    const other = await t.clientWith(['VIEWER']);
    expect((await fetch(url(mixed.file.id), { headers: { authorization: `Bearer ${other.options.token}` } })).status).toBe(404);
    const none = await fetch(url(broken.file.id), { headers: auth });
    expect(none.status).toBe(404);
    expect(await none.json()).toMatchObject({ errors: [{ message: expect.stringMatching(/has no valid rows/), extensions: { code: 'NOT_FOUND' } }] });
    const corrections = await fetch(url(uploadCorrections.file.id), { headers: auth });
    expect(corrections.status).toBe(404);
    expect(await corrections.json()).toMatchObject({ errors: [{ message: expect.stringMatching(/corrections upload/) }] });
    expect((await fetch(url('not-a-uuid'), { headers: auth })).status).toBe(404);
  });

  it('GET /files/:id/valid.csv lists the rows by line number: line 10 comes after line 9, not after line 1', async () => {
    const rows = Array.from({ length: 12 }, (_, i) => `01/03/23,s${i + 2},${i}\n`).join('');
    const { uploadFile } = await ingestor.upload(
      UploadFileDocument,
      { program: 'attendance', spec: 'attendance', file: null },
      { file: { body: `date,school_id,present\n${rows}`, filename: 'twelve.csv', contentType: 'text/csv' } },
    );
    await collectJobEvents(ingestor, uploadFile.job.id, { afterSeq: 0 });
    const res = await fetch(`${t.url}/files/${uploadFile.file.id}/valid.csv`, { headers: { authorization: `Bearer ${ingestorToken}` } });
    expect(res.status).toBe(200);
    const lines = (await res.text()).trim().split('\n').slice(1);
    expect(lines.map((l) => Number(l.split(',')[0]))).toEqual(Array.from({ length: 12 }, (_, i) => i + 2));
    expect(lines[8]).toBe('10,2023-03-01,s10,8');
  });
});

announceBrowserSkip();

describe.runIf(runBrowserTests)('in Chromium', () => {
  let page: Page;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    browser = await launchChromium();
    const context = await browser.newContext({ viewport: { width: 1200, height: 1000 }, acceptDownloads: true });
    page = await context.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => m.type() === 'error' && pageErrors.push(m.text()));
  });

  it('signs in, uploads a CSV, watches its job live, resumes after a reload, pages through row errors and downloads the report', async () => {
    const rows = 300_000;
    const invalid = rows / 5000;
    const csvPath = path.join(dir, 'attendance-web.csv');
    await fs.writeFile(csvPath, attendanceCsv(rows, 5000));
    const sent: string[] = [];
    const received: string[] = [];
    page.on('websocket', (ws) => {
      ws.on('framesent', (f) => sent.push(String(f.payload)));
      ws.on('framereceived', (f) => received.push(String(f.payload)));
    });

    await page.goto(`${t.url}/`);
    await page.fill('input[name=clientId]', INGESTOR_ID);
    await page.fill('input[name=clientSecret]', ingestorSecret);
    await page.click('#signin-form button[type=submit]');
    await page.waitForSelector('#upload:not([hidden])');
    await expect.poll(() => page.textContent('[data-testid=who]')).toContain(INGESTOR_ID);

    await page.selectOption('[data-testid=spec]', 'attendance');
    expect(await page.inputValue('input[name=program]')).toBe('attendance');
    await page.setInputFiles('[data-testid=file]', csvPath);
    await page.click('#upload-form button[type=submit]');
    await page.waitForSelector('[data-testid=job]:not([hidden])');
    await expect.poll(() => page.textContent('#job-id'), { timeout: 30_000 }).toMatch(/^[0-9a-f-]{36}$/);
    const jobId = (await page.textContent('#job-id'))!;
    expect(page.url()).toMatch(/\?file=[0-9a-f-]{36}$/);

    // Live: the page subscribed to jobUpdated over graphql-ws and gets its events.
    await expect.poll(() => sent.some((m) => m.includes('jobUpdated') && m.includes(jobId)), { timeout: 30_000 }).toBe(true);
    await expect.poll(() => received.some((m) => m.includes('"jobUpdated"')), { timeout: 30_000 }).toBe(true);

    // Reload mid-job (or just after it ended): the page picks the same job up again.
    sent.length = 0;
    await page.reload();
    await expect.poll(() => page.textContent('#job-id'), { timeout: 30_000 }).toBe(jobId);
    const resumed = sent.filter((m) => m.includes('jobUpdated'));
    for (const m of resumed) expect(Number(/"afterSeq":(\d+)/.exec(m)?.[1])).toBeGreaterThan(0);

    await page.waitForSelector('[data-testid=job-state][data-state=SUCCEEDED_WITH_ERRORS]', { timeout: 90_000 });
    expect(await page.textContent('[data-testid=rows-processed]')).toBe('300,000');
    expect(await page.textContent('[data-testid=rows-valid]')).toBe('299,940');
    expect(await page.textContent('[data-testid=rows-invalid]')).toBe(String(invalid));
    expect(await page.textContent('[data-testid=rows-rate]')).toMatch(/^[\d,]+ rows\/s$/);
    expect(await page.getAttribute('[data-testid=job-bar]', 'value')).toBe('100');
    const fileId = new URL(page.url()).searchParams.get('file')!;
    const { file } = await ingestor.request(FileDocument, { id: fileId });
    expect(file).toMatchObject({ state: 'SUCCEEDED_WITH_ERRORS', rows: { total: rows, valid: rows - invalid, invalid } });

    // Row errors, 20 a page.
    await page.waitForSelector('[data-testid=errors]:not([hidden])');
    expect(await page.locator('#errors-body tr').count()).toBe(20);
    expect(await page.textContent('#errors-page')).toBe('page 1 of 3');
    expect(await page.textContent('[data-testid=errors-summary] li:first-child')).toBe(`${invalid} errors: NOT_A_NUMBER ${invalid}`);
    expect(await page.textContent('[data-testid=errors-summary] li:nth-child(2)')).toBe(
      `present: ${invalid} (NOT_A_NUMBER ${invalid}); most frequent "x" ×${invalid}`,
    );
    expect(await page.textContent('#errors-body tr:first-child td:first-child')).toBe('5001');
    await page.click('#errors-next');
    await expect.poll(() => page.textContent('#errors-page')).toBe('page 2 of 3');
    expect(await page.textContent('#errors-body tr:first-child td:first-child')).toBe(String(21 * 5000 + 1));
    await page.click('#errors-prev');
    await expect.poll(() => page.textContent('#errors-page')).toBe('page 1 of 3');

    const [download] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid=download]')]);
    expect(download.suggestedFilename()).toBe('attendance-web_errors.csv');
    const saved = path.join(artifacts, 'web-error-report.csv');
    await download.saveAs(saved);
    const report = (await fs.readFile(saved, 'utf8')).trim().split('\n');
    expect(report[0]).toContain('error_description');
    expect(report).toHaveLength(invalid + 1);

    await page.screenshot({ path: path.join(artifacts, 'web-jobs-page.png'), fullPage: true });
    expect(pageErrors).toEqual([]);
  });

  it('GraphiQL runs a query and a subscription with the token in its headers editor', async () => {
    // The jobs page's session (the same origin's localStorage) is where GraphiQL finds a token.
    await page.goto(`${t.url}/`);
    const session = { clientId: INGESTOR_ID, token: ingestorToken, expiresAt: new Date(Date.now() + 3_600_000).toISOString(), roles: ['INGESTOR'] };
    await page.evaluate(`localStorage.setItem('sluice.session', ${JSON.stringify(JSON.stringify(session))})`);
    await page.goto(`${t.url}/graphql`);
    await page.waitForSelector('.graphiql-container .graphiql-query-editor .monaco-editor', { timeout: 60_000 });
    // Signed in on the jobs page: the headers editor already holds that token.
    await expect.poll(() => page.textContent('.graphiql-editor-tool'), { timeout: 20_000 }).toMatch(/Bearer\s+eyJ/);

    const editor = '.graphiql-query-editor .monaco-editor .view-lines';
    // Monaco renders spaces as non-breaking ones.
    const text = async (selector: string) => ((await page.textContent(selector)) ?? '').replace(/\s+/g, ' ');
    await expect.poll(() => text(editor), { timeout: 20_000 }).toContain('Sluice GraphQL IDE');
    const run = async (query: string, name: string) => {
      await page.click(editor);
      await page.keyboard.press('ControlOrMeta+A');
      await page.keyboard.press('Delete');
      await page.keyboard.insertText(query);
      await expect.poll(() => text(editor)).toContain(name);
      // GraphiQL picks the operation name from the edited document a moment later; the tab shows it.
      await expect.poll(() => text('.graphiql-tab-active')).toContain(name);
      await page.click('.graphiql-execute-button');
    };
    const response = () => text('.graphiql-response');

    await run('query Who { me { clientId roles } }', 'Who');
    await expect.poll(response, { timeout: 30_000 }).toContain(INGESTOR_ID);
    await run('subscription Beat { heartbeat(intervalMs: 100, count: 3) { seq } }', 'Beat');
    await expect.poll(response, { timeout: 30_000 }).toMatch(/"seq":\s*3/);
    await page.screenshot({ path: path.join(artifacts, 'graphiql.png') });
    expect(pageErrors).toEqual([]);
  });
});
