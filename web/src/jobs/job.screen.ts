import {
  CancelJobDocument,
  FileDocument,
  FileRowErrorsDocument,
  followJob,
  JobDocument,
  RetryJobDocument,
  SluiceRequestError,
  TokenRefusedError,
  UploadStatusDocument,
  type FileQuery,
  type JobEventFieldsFragment,
} from '../../../src/sdk/client';
import { averageRate, formatBytes, formatCount, formatDuration, formatRate, RateMeter } from '../../../src/sdk/progress';
import { app, client, fail, signOut, type Job } from './app';
import { $, flash, h, table } from './dom';
import { BULK_JOB, CE_JOB, codeText, objectLabel, rowsOutcome, stateLabel, TERMINAL, toneOf, typeLabel } from './labels';
import { closeFixGrid, initFixGrid, openFixGrid } from './corrections';
import { downloadErrorReport, downloadFileCsv } from './upload';

/**
 * A job's page, for every job type: title (the file name), state, progress with rate and ETA,
 * counts, a plain-language outcome, cancel/retry, then what the type has: row errors (CSV), the
 * CSVs of a ZIP, per-row results (directory), per-framework results (Credential Engine). While the
 * job runs it follows `jobUpdated` from the last sequence number seen, so a reload resumes.
 * A CSV's page also offers its stored rows as a download, and its invalid rows as a grid to fix
 * and send back (uploadCorrections); the corrections file then opens and its job is followed.
 */

type FileData = FileQuery['file'];
const ERRORS_PAGE = 20;
const RESULTS_PAGE = 20;
export const CURRENT_FILE_KEY = 'sluice.file';

const view = {
  job: undefined as Job | undefined,
  file: undefined as FileData | undefined,
  lastSeq: 0,
  state: undefined as string | undefined,
  startedAt: undefined as string | undefined,
  finishedAt: undefined as string | undefined,
  processed: 0,
  total: null as number | null,
  rate: new RateMeter(),
  watchGen: 0,
  errorCursors: [null] as Array<string | null>,
  resultCursors: { success: [null] as Array<string | null>, failure: [null] as Array<string | null> },
};

/** Which tab a job belongs to. */
export function viewOfJob(type: string): string {
  if (type === BULK_JOB) return 'directory';
  if (type === CE_JOB) return 'skills';
  return 'import';
}

export function closeJob(): void {
  view.watchGen++;
  for (const id of ['job', 'errors', 'job-detail', 'job-download-valid', 'job-links']) $(id).hidden = true;
  closeFixGrid();
}

// ---------------------------------------------------------------- rendering

function renderState(state: string, percent: number | null): void {
  view.state = state;
  const badge = $('job-state');
  badge.textContent = stateLabel(state);
  badge.dataset['state'] = state;
  const bar = $<HTMLProgressElement>('job-bar');
  const done = TERMINAL.has(state);
  const value = done && state !== 'FAILED' && state !== 'CANCELLED' && state !== 'EXPIRED' ? 100 : percent;
  if (value === null) bar.removeAttribute('value');
  else bar.value = value;
  $('job-percent').textContent = value === null ? (state === 'QUEUED' ? 'waiting for a worker' : '') : `${value.toFixed(value < 10 ? 1 : 0)} %`;
  const job = view.job;
  $('job-cancel').hidden = done || !job;
  $('job-retry').hidden = state !== 'FAILED' || !job;
}

function renderCounts(c: { processed: number | null; valid: number | null; invalid: number | null }): void {
  $('c-processed').textContent = formatCount(c.processed);
  $('c-valid').textContent = formatCount(c.valid);
  $('c-invalid').textContent = formatCount(c.invalid);
}

function unit(): string {
  return view.job?.type === CE_JOB ? 'items' : 'rows';
}

function renderTiming(): void {
  const running = view.state === 'RUNNING';
  const rate = running
    ? (view.rate.perSecond() ?? averageRate(view.processed, view.startedAt, new Date().toISOString()))
    : averageRate(view.processed, view.startedAt, view.finishedAt);
  $('c-rate').textContent = view.startedAt ? formatRate(rate, unit()) : '–';
  const end = view.finishedAt ? Date.parse(view.finishedAt) : Date.now();
  $('c-elapsed').textContent = view.startedAt ? formatDuration(end - Date.parse(view.startedAt)) : '–';
  const left = view.total !== null && rate ? (view.total - view.processed) / rate : undefined;
  $('c-eta').textContent =
    running && left !== undefined && left >= 0 ? `about ${formatDuration(left * 1000)}` : TERMINAL.has(view.state ?? '') ? 'finished' : '–';
}
setInterval(() => view.state === 'RUNNING' && renderTiming(), 1000);

/**
 * The outcome in plain words: green when all went well, amber for a partial success, red for a
 * failure. Header problems are a list, one per line.
 */
function renderOutcome(state: string, error: { code: string; message: string; problems?: unknown } | null | undefined): void {
  const box = $('job-error');
  const tone = toneOf(state);
  const parts: Node[] = [];
  const job = view.job;
  const f = view.file;
  if (!TERMINAL.has(state)) {
    // No earlier job's outcome may linger in the hidden box.
    box.replaceChildren();
    box.hidden = true;
    return;
  }
  if (f && f.rows.total !== null && state !== 'FAILED' && state !== 'CANCELLED') {
    parts.push(h('p', {}, rowsOutcome(f.rows.total, f.rows.valid ?? 0, f.rows.invalid ?? 0)));
  } else if (job && job.type === BULK_JOB && state !== 'FAILED') {
    parts.push(h('p', {}, rowsOutcome(job.progress.processed, job.progress.succeeded, job.progress.failed)));
  } else if (job && job.type === CE_JOB && job.result) {
    const t = (job.result as { totals?: Record<string, number> }).totals ?? {};
    parts.push(
      h(
        'p',
        {},
        `${formatCount(t['frameworks'] ?? 0)} framework(s): ${formatCount(t['created'] ?? 0)} skills added, ${formatCount(t['updated'] ?? 0)} updated, ${formatCount(t['removed'] ?? 0)} removed.`,
      ),
    );
    if (t['invalidCompetencies'])
      parts.push(h('p', {}, `${formatCount(t['invalidCompetencies'])} competencies had problems and were skipped: see the frameworks below.`));
  } else if (state === 'SUCCEEDED') parts.push(h('p', {}, 'Finished without problems.'));
  if (state === 'CANCELLED') parts.push(h('p', {}, 'The job was cancelled; nothing it wrote was kept.'));
  if (error && state !== 'SUCCEEDED_WITH_ERRORS') {
    parts.push(h('p', {}, codeText(error.code) ?? error.message, ' ', h('small', { class: 'code' }, `(${error.code})`)));
    const problems = Array.isArray(error.problems) ? (error.problems as Array<{ message?: string; column?: string }>) : [];
    if (problems.length) parts.push(h('ul', { 'data-testid': 'header-problems' }, ...problems.map((p) => h('li', {}, p.message ?? JSON.stringify(p)))));
    else if (codeText(error.code)) parts.push(h('p', {}, error.message));
  }
  box.replaceChildren(...parts);
  box.dataset['tone'] = tone;
  box.hidden = parts.length === 0;
}

function titleOf(job: Job | undefined, f: FileData | undefined, name?: string): string {
  if (f) return f.fileName;
  if (name) return name;
  if (job?.type === CE_JOB) {
    const list = (job.input as { frameworks?: Array<{ ctid?: string } | string> } | null)?.frameworks ?? [];
    return `Credential Engine import (${list.length} framework${list.length === 1 ? '' : 's'})`;
  }
  return job ? typeLabel(job.type) : 'Job';
}

function renderHeader(job: Job | undefined, f: FileData | undefined, subtitle: string, name?: string): void {
  $('job').hidden = false;
  $('job-title').textContent = titleOf(job, f, name);
  $('job-type').textContent = job ? typeLabel(job.type, Boolean(f && 'declaredSize' in f && f.declaredSize != null)) : f ? 'File' : '';
  $('job-id').textContent = job?.id ?? '–';
  $('job-file').textContent = subtitle;
}

function applyJob(job: Job): void {
  view.job = job;
  view.startedAt = job.startedAt ?? undefined;
  view.finishedAt = job.finishedAt ?? undefined;
  view.processed = job.progress.processed;
  view.total = job.progress.total ?? null;
}

function renderFile(f: FileData): void {
  const job = f.job ?? undefined;
  view.file = f;
  if (job) applyJob(job);
  renderHeader(
    job,
    f,
    `${formatBytes(f.size)} · spec ${f.spec ? `${f.spec.name} v${f.spec.version}` : '–'} · program ${f.program ?? '–'} · uploaded ${new Date(f.createdAt).toLocaleString()}`,
  );
  renderState(f.state, job?.progress.percent ?? null);
  if (f.finished && f.rows.total !== null) renderCounts({ processed: f.rows.total, valid: f.rows.valid, invalid: f.rows.invalid });
  else renderCounts({ processed: job?.progress.processed ?? 0, valid: job?.progress.succeeded ?? 0, invalid: job?.progress.failed ?? 0 });
  renderOutcome(f.state, f.error ?? job?.error);
  renderTiming();
  $('job-download-valid').hidden = !(f.finished && f.kind === 'CSV' && !f.correctsFileId && (f.rows.valid ?? 0) > 0);
  renderLinks(f);
}

/** A corrections file links to the file it corrects; a corrected file lists its corrections. */
function renderLinks(f: FileData): void {
  const el = $('job-links');
  const link = (id: string, text: string) =>
    h('a', { href: `?file=${id}`, onclick: (ev: Event) => (ev.preventDefault(), void openFile(id).catch(fail)) }, text);
  const corrections = f.corrections ?? [];
  if (f.correctsFileId) el.replaceChildren('These rows correct an earlier upload: ', link(f.correctsFileId, 'open the corrected file'), '.');
  else if (corrections.length) {
    el.replaceChildren(
      `Corrections sent (${corrections.length}): `,
      ...corrections.flatMap((c, i) => [i ? ', ' : '', link(c.id, `${new Date(c.createdAt).toLocaleString()} (${stateLabel(c.state)})`)]),
    );
  } else el.replaceChildren();
  el.hidden = !el.childNodes.length;
}

function renderJob(job: Job, name?: string, subtitle = ''): void {
  applyJob(job);
  renderHeader(job, undefined, subtitle || `submitted ${new Date(job.createdAt).toLocaleString()} by ${job.createdBy}`, name);
  renderState(job.state, job.progress.percent ?? null);
  renderCounts({ processed: job.progress.processed, valid: job.progress.succeeded, invalid: job.progress.failed });
  renderOutcome(job.state, job.error);
  renderTiming();
}

function applyEvent(e: JobEventFieldsFragment): void {
  view.lastSeq = e.seq;
  if (e.kind === 'STATE' && e.state === 'RUNNING') view.startedAt ??= e.at;
  if (e.terminal) view.finishedAt = e.at;
  view.processed = e.progress.processed;
  view.total = e.progress.total ?? view.total;
  view.rate.push(e.progress.processed, Date.parse(e.at));
  renderState(e.state, e.progress.percent);
  renderCounts({ processed: e.progress.processed, valid: e.progress.succeeded, invalid: e.progress.failed });
  if (!e.terminal) renderOutcome(e.state, e.error);
  renderTiming();
}

// ---------------------------------------------------------------- opening

function remember(key: 'file' | 'job', id: string): void {
  localStorage.setItem(CURRENT_FILE_KEY, JSON.stringify({ [key]: id }));
  const url = new URL(window.location.href);
  url.searchParams.delete('file');
  url.searchParams.delete('job');
  url.searchParams.set(key, id);
  window.history.replaceState(null, '', url);
}

/** Shows a file (CSV or ZIP) and, while its job runs, follows it. */
export async function openFile(fileId: string): Promise<void> {
  const gen = ++view.watchGen;
  remember('file', fileId);
  $('errors').hidden = true;
  $('job-detail').hidden = true;
  closeFixGrid();
  const { file } = await client().request(FileDocument, { id: fileId });
  if (gen !== view.watchGen) return;
  Object.assign(view, { lastSeq: file.job?.lastSeq ?? 0, rate: new RateMeter(), job: undefined, file: undefined });
  renderFile(file);
  if (file.job && !TERMINAL.has(file.job.state)) await watch(gen, file.job.id);
  else await finished(gen);
}

/** Shows any job by id; a file ingestion opens as its file. */
export async function openJob(jobId: string): Promise<void> {
  const gen = ++view.watchGen;
  const { job } = await client().request(JobDocument, { id: jobId });
  if (gen !== view.watchGen) return;
  const fileId = (job.input as { fileId?: string } | null)?.fileId;
  if (fileId && job.type !== BULK_JOB && job.type !== CE_JOB) return openFile(fileId);
  remember('job', jobId);
  $('errors').hidden = true;
  $('job-detail').hidden = true;
  closeFixGrid();
  Object.assign(view, { lastSeq: job.lastSeq, rate: new RateMeter(), job, file: undefined });
  renderJob(job);
  if (job.type === BULK_JOB) await renderBulk(gen, job, false);
  if (!TERMINAL.has(job.state)) await watch(gen, job.id);
  else await finished(gen);
}

/**
 * Follows `jobUpdated` from the last seen sequence number. A dropped socket is retried with
 * back-off; replay after `afterSeq` means no event is missed or shown twice.
 */
async function watch(gen: number, jobId: string): Promise<void> {
  if (!app.client) return;
  try {
    for await (const e of followJob(client(), jobId, {
      afterSeq: view.lastSeq,
      maxReconnects: Infinity,
      backoffMs: (n) => Math.min(500 * 2 ** n, 10_000),
      onReconnect: (n) => flash(`Connection lost; reconnecting (attempt ${n})…`, 'info'),
      stopped: () => gen !== view.watchGen || !app.client,
    })) {
      applyEvent(e);
      flash(undefined);
    }
  } catch (err) {
    if (err instanceof SluiceRequestError) return fail(err);
    if (err instanceof TokenRefusedError) return signOut('Your session ended; sign in again.');
    throw err;
  }
  if (gen !== view.watchGen || !app.client) return;
  const { job } = await client().request(JobDocument, { id: jobId });
  // The subscription can end without a terminal event (a server shutting down): follow on.
  if (!TERMINAL.has(job.state)) return watch(gen, jobId);
  await finished(gen);
}

/** The job ended (or was already over): read it again and show what its type has. */
async function finished(gen: number): Promise<void> {
  if (gen !== view.watchGen) return;
  if (view.file) {
    const { file } = await client().request(FileDocument, { id: view.file.id });
    if (gen !== view.watchGen) return;
    renderFile(file);
    view.errorCursors = [null];
    if (file.kind === 'ZIP') renderZipChildren(file);
    renderErrorSummary(file);
    // uploadCorrections takes a file whose rows were read: not one that failed as a whole (its header, say).
    $('errors-fix').hidden = !(
      file.kind === 'CSV' &&
      file.outputs.errors &&
      (file.state === 'SUCCEEDED_WITH_ERRORS' || file.error?.code === 'ALL_ROWS_INVALID')
    );
    if ((file.rows.invalid ?? 0) > 0 || file.error) await loadErrors(0);
    return;
  }
  const { job } = await client().request(JobDocument, { id: view.job!.id });
  if (gen !== view.watchGen) return;
  renderJob(job);
  if (job.type === BULK_JOB) await renderBulk(gen, job, true);
  if (job.type === CE_JOB) renderFrameworks(job);
}

// ---------------------------------------------------------------- CSV row errors

/** The file's error analytics above the row errors: one line per column, with its most frequent bad values. */
function renderErrorSummary(file: { errorSummary?: FileQuery['file']['errorSummary'] }): void {
  const s = file.errorSummary;
  const codes = (list: ReadonlyArray<{ code: string; count: number }>) => list.map((c) => `${c.code} ${formatCount(c.count)}`).join(', ');
  const items =
    !s || s.total === 0
      ? []
      : [
          `${formatCount(s.total)} errors: ${codes(s.byCode)}`,
          ...s.byColumn.map((c) => {
            const top = c.topValues
              .slice(0, 3)
              .map((v) => `${JSON.stringify(v.value)} ×${formatCount(v.count)}`)
              .join(', ');
            return `${c.column}: ${formatCount(c.count)} (${codes(c.byCode)})${top ? `; most frequent ${top}` : ''}`;
          }),
        ];
  $('errors-summary').replaceChildren(...items.map((text) => h('li', {}, text)));
}

export async function loadErrors(page: number): Promise<void> {
  const fileId = view.file!.id;
  const { file } = await client().request(FileRowErrorsDocument, { id: fileId, first: ERRORS_PAGE, after: view.errorCursors[page] ?? null });
  const { rowErrors } = file;
  $('errors').hidden = rowErrors.totalCount === 0;
  $('errors-total').textContent = `${formatCount(rowErrors.totalCount)} in all`;
  $('errors-body').replaceChildren(
    ...rowErrors.nodes.map((e) =>
      h('tr', {}, ...[String(e.line), e.column ?? '', e.message, e.code].map((v, i) => h('td', i === 3 ? { class: 'code' } : {}, v))),
    ),
  );
  view.errorCursors.length = page + 1;
  if (rowErrors.pageInfo.hasNextPage) view.errorCursors.push(rowErrors.pageInfo.endCursor);
  const pages = Math.max(1, Math.ceil(rowErrors.totalCount / ERRORS_PAGE));
  $('errors-page').textContent = `page ${page + 1} of ${pages}`;
  $('errors-page').dataset['page'] = String(page);
  $<HTMLButtonElement>('errors-prev').disabled = page === 0;
  $<HTMLButtonElement>('errors-next').disabled = !rowErrors.pageInfo.hasNextPage;
}

// ---------------------------------------------------------------- ZIP children

function renderZipChildren(f: FileData): void {
  const detail = $('job-detail');
  detail.replaceChildren(
    h('h3', {}, `Files in the ZIP (${f.children.length})`),
    table(
      'CSV files in the ZIP',
      ['File', 'State', 'Rows', 'Stored', 'Skipped'],
      f.children.map((c) => [
        h('a', { href: `?file=${c.id}`, onclick: (ev: Event) => (ev.preventDefault(), void openFile(c.id).catch(fail)) }, c.fileName),
        h('span', { class: 'state', 'data-state': c.state }, stateLabel(c.state)),
        formatCount(c.rows.total),
        formatCount(c.rows.valid),
        formatCount(c.rows.invalid),
      ]),
    ),
  );
  detail.hidden = false;
}

// ---------------------------------------------------------------- directory per-row results

async function renderBulk(gen: number, job: Job, done: boolean, which: { success?: number; failure?: number } = {}): Promise<void> {
  const processId = (job.input as { processId?: string }).processId;
  if (!processId) return;
  const sPage = which.success ?? 0;
  const fPage = which.failure ?? 0;
  const { uploadStatus: s } = await client().request(UploadStatusDocument, {
    processId,
    first: RESULTS_PAGE,
    successAfter: view.resultCursors.success[sPage] ?? null,
    failureAfter: view.resultCursors.failure[fPage] ?? null,
  });
  if (gen !== view.watchGen) return;
  renderHeader(
    job,
    undefined,
    `${objectLabel(s.objectType)}${s.locationType ? ` (${s.locationType.toLowerCase()})` : ''} · ${formatBytes(s.size)} · uploaded ${new Date(s.createdAt).toLocaleString()}`,
    s.fileName,
  );
  if (!done) return;
  const detail = $('job-detail');
  const page = (kind: 'success' | 'failure', conn: typeof s.successResult, n: number) => {
    const cursors = view.resultCursors[kind];
    cursors.length = n + 1;
    if (conn.pageInfo.hasNextPage) cursors.push(conn.pageInfo.endCursor);
    const go = (to: number) => () => void renderBulk(gen, job, true, { ...which, [kind]: to }).catch(fail);
    const pages = Math.max(1, Math.ceil(conn.totalCount / RESULTS_PAGE));
    return h(
      'p',
      { class: 'pager' },
      h('button', { type: 'button', disabled: n === 0, onclick: go(n - 1) }, '← Previous'),
      h('span', {}, `page ${n + 1} of ${pages}`),
      h('button', { type: 'button', disabled: !conn.pageInfo.hasNextPage, onclick: go(n + 1) }, 'Next →'),
    );
  };
  const dataText = (d: unknown) => {
    const o = (d ?? {}) as Record<string, unknown>;
    return String(o['name'] ?? o['code'] ?? o['externalId'] ?? '');
  };
  detail.replaceChildren(
    h('h3', {}, `Rows with problems (${formatCount(s.failureResult.totalCount)})`),
    s.failureResult.totalCount
      ? table(
          'Rows that failed',
          ['Line', 'Row', 'Column', 'Problem'],
          s.failureResult.nodes.map((r) => [
            String(r.line),
            dataText(r.data),
            r.errorColumn ?? '',
            h('span', {}, r.errorMessage ?? '', ' ', h('small', { class: 'code' }, r.errorCode ?? '')),
          ]),
          { 'data-testid': 'bulk-failures' },
        )
      : h('p', {}, 'None.'),
    s.failureResult.totalCount > RESULTS_PAGE ? page('failure', s.failureResult, fPage) : '',
    h('h3', {}, `Rows applied (${formatCount(s.successResult.totalCount)})`),
    table(
      'Rows applied',
      ['Line', 'Row', 'Change', 'Id'],
      s.successResult.nodes.map((r) => [
        String(r.line),
        dataText(r.data),
        r.operation === 'UPDATE' ? 'updated' : r.operation === 'CREATE' ? 'created' : '',
        h('code', {}, r.id ?? ''),
      ]),
      { 'data-testid': 'bulk-successes' },
    ),
    s.successResult.totalCount > RESULTS_PAGE ? page('success', s.successResult, sPage) : '',
  );
  detail.hidden = false;
}

// ---------------------------------------------------------------- Credential Engine per-framework results

interface FrameworkResult {
  ctid: string;
  state: string;
  name?: string | null;
  competencies?: number;
  created?: number;
  updated?: number;
  removed?: number;
  invalidCompetencies?: number;
  problemCount?: number;
  problems?: Array<{ code?: string; message?: string; ctid?: string }>;
  error?: { code: string; message: string };
}

function renderFrameworks(job: Job): void {
  const frameworks = ((job.result as { frameworks?: FrameworkResult[] } | null)?.frameworks ?? []) as FrameworkResult[];
  if (!frameworks.length) return;
  const detail = $('job-detail');
  detail.replaceChildren(
    h('h3', {}, 'Frameworks'),
    table(
      'Result of each framework',
      ['Framework', 'Result', 'Skills', 'Added', 'Updated', 'Removed', 'Problems'],
      frameworks.map((f) => [
        h('span', {}, f.name ?? f.ctid, h('br'), h('small', { class: 'code' }, f.ctid)),
        h('span', { class: 'state', 'data-state': f.state }, stateLabel(f.state)),
        formatCount(f.competencies ?? 0),
        formatCount(f.created ?? 0),
        formatCount(f.updated ?? 0),
        formatCount(f.removed ?? 0),
        f.error
          ? h('span', {}, f.error.message, ' ', h('small', { class: 'code' }, f.error.code))
          : f.problems?.length
            ? h(
                'details',
                {},
                h('summary', {}, `${formatCount(f.problemCount ?? f.problems.length)} problem(s)`),
                h('ul', {}, ...f.problems.map((p) => h('li', {}, p.message ?? p.code ?? ''))),
              )
            : 'none',
      ]),
      { 'data-testid': 'frameworks' },
    ),
  );
  detail.hidden = false;
}

// ---------------------------------------------------------------- wiring

export function initJobScreen(): void {
  const errorsPage = () => Number($('errors-page').dataset['page'] ?? 0);
  $('errors-prev').addEventListener('click', () => loadErrors(errorsPage() - 1).catch(fail));
  $('errors-next').addEventListener('click', () => loadErrors(errorsPage() + 1).catch(fail));
  $('errors-download').addEventListener('click', () => downloadErrorReport(app.session!.token, view.file!.id).catch(fail));
  $('job-download-valid').addEventListener('click', () => downloadFileCsv(app.session!.token, view.file!.id, 'valid').catch(fail));
  $('errors-fix').addEventListener('click', () => {
    const f = view.file;
    if (!f) return;
    openFixGrid(f, (id) => {
      flash('Corrections sent: their job checks the rows now.', 'info');
      void openFile(id).catch(fail);
    }).catch((err: unknown) => {
      closeFixGrid();
      fail(err);
    });
  });
  initFixGrid();
  $('job-cancel').addEventListener('click', () => {
    if (!view.job) return;
    client()
      .request(CancelJobDocument, { id: view.job.id })
      .then(() => flash('Cancel requested: the job stops at its next checkpoint.', 'info'))
      .catch(fail);
  });
  $('job-retry').addEventListener('click', async () => {
    if (!view.job) return;
    try {
      await client().request(RetryJobDocument, { id: view.job.id });
      await (view.file ? openFile(view.file.id) : openJob(view.job.id));
    } catch (err) {
      fail(err);
    }
  });
}

/** The job the page was showing before a reload, from the URL or localStorage. */
export function rememberedJob(params: URLSearchParams): { file?: string; job?: string } | undefined {
  if (params.get('file')) return { file: params.get('file')! };
  if (params.get('job')) return { job: params.get('job')! };
  try {
    const saved = JSON.parse(localStorage.getItem(CURRENT_FILE_KEY) ?? 'null') as { file?: string; job?: string } | string | null;
    // Older pages stored the bare file id.
    if (typeof saved === 'string') return { file: saved };
    return saved ?? undefined;
  } catch {
    const raw = localStorage.getItem(CURRENT_FILE_KEY);
    return raw ? { file: raw } : undefined;
  }
}
