import {
  CancelJobDocument,
  FileDocument,
  FileRowErrorsDocument,
  FilesDocument,
  IssueTokenDocument,
  followJob,
  SluiceClient,
  SluiceRequestError,
  SpecsDocument,
  TokenRefusedError,
  type FileQuery,
  type FileState,
  type JobEventFieldsFragment,
  type JobState,
  type SpecsQuery,
} from '../../../src/sdk/client';
import { averageRate, formatBytes, formatCount, formatDuration, formatRate, RateMeter } from '../../../src/sdk/progress';
import { clearSession, loadSession, saveSession, type Session } from './session';
import { downloadErrorReport, uploadFile } from './upload';

/**
 * The jobs page: sign in, upload a CSV for a spec, watch its job live over graphql-ws
 * (`jobUpdated`), then page through its row errors. The open file is kept in the URL (`?file=`)
 * and localStorage, so a reload resumes: the job is read once, then the subscription continues
 * after the last sequence number the page has.
 */

type FileData = FileQuery['file'];
type Spec = SpecsQuery['specs'][number];

const TERMINAL: ReadonlySet<FileState> = new Set(['SUCCEEDED', 'SUCCEEDED_WITH_ERRORS', 'FAILED', 'CANCELLED', 'EXPIRED']);
const ERRORS_PAGE = 20;
const CURRENT_FILE_KEY = 'sluice.file';

const $ = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} missing from index.html`);
  return el as T;
};

let session: Session | undefined = loadSession();
let client: SluiceClient | undefined;
let specs: Spec[] = [];

/** The file and job on screen. `watchGen` stops a superseded watch loop. */
const view = {
  fileId: undefined as string | undefined,
  jobId: undefined as string | undefined,
  lastSeq: 0,
  state: undefined as FileState | undefined,
  startedAt: undefined as string | undefined,
  finishedAt: undefined as string | undefined,
  processed: 0,
  rate: new RateMeter(),
  watchGen: 0,
  errorCursors: [null] as Array<string | null>,
};

// ---------------------------------------------------------------- helpers

function flash(message: string | undefined): void {
  const el = $('flash');
  el.textContent = message ?? '';
  el.hidden = !message;
}

function messageOf(err: unknown): string {
  if (err instanceof SluiceRequestError) {
    const e = err.response.errors?.[0];
    return e ? `${e.message} (${String(e.extensions?.['code'] ?? 'ERROR')})` : err.message;
  }
  return err instanceof Error ? err.message : String(err);
}

/** A request failed: an expired or revoked token signs out, anything else is shown. */
function fail(err: unknown): void {
  if (err instanceof SluiceRequestError && err.code === 'UNAUTHENTICATED') {
    signOut('Your session ended; sign in again.');
    return;
  }
  flash(messageOf(err));
}


// ---------------------------------------------------------------- session

function showSignedIn(s: Session): void {
  client = new SluiceClient({ url: window.location.origin, token: s.token });
  $('signin').hidden = true;
  $('upload').hidden = false;
  $('recent').hidden = false;
  $('who').hidden = false;
  $('who').textContent = `${s.clientId} (${s.roles.join(', ')})`;
  $('signout').hidden = false;
}

function signOut(message?: string): void {
  view.watchGen++;
  void client?.close();
  client = undefined;
  session = undefined;
  clearSession();
  for (const id of ['upload', 'recent', 'job', 'errors', 'who', 'signout']) $(id).hidden = true;
  $('signin').hidden = false;
  flash(message);
}

$('signin-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const form = new FormData(ev.target as HTMLFormElement);
  try {
    const anon = new SluiceClient({ url: window.location.origin });
    const { issueToken } = await anon.request(IssueTokenDocument, {
      clientId: String(form.get('clientId')).trim(),
      clientSecret: String(form.get('clientSecret')),
    });
    session = { clientId: String(form.get('clientId')).trim(), token: issueToken.accessToken, expiresAt: issueToken.expiresAt, roles: issueToken.roles };
    saveSession(session);
    (ev.target as HTMLFormElement).reset();
    flash(undefined);
    await start();
  } catch (err) {
    flash(messageOf(err));
  }
});

$('signout').addEventListener('click', () => signOut());

// ---------------------------------------------------------------- upload

async function loadSpecs(): Promise<void> {
  ({ specs } = await client!.request(SpecsDocument, {}));
  const select = $<HTMLSelectElement>('upload-form').querySelector<HTMLSelectElement>('select[name=spec]')!;
  select.replaceChildren(
    ...specs.map((s) => {
      const o = document.createElement('option');
      o.value = s.name;
      o.textContent = `${s.name} (v${s.version}, ${s.kind.toLowerCase()})`;
      return o;
    }),
  );
  if (!specs.length) flash('No specs registered yet: an ADMIN registers them (npx sluice specs register <file.json>).');
  fillProgram();
}

/** The program defaults to the spec's own; a typed value is kept. */
function fillProgram(): void {
  const form = $<HTMLFormElement>('upload-form');
  const program = form.querySelector<HTMLInputElement>('input[name=program]')!;
  const spec = specs.find((s) => s.name === form.querySelector<HTMLSelectElement>('select[name=spec]')!.value);
  if (spec && (!program.value || program.dataset['auto'] === '1')) {
    program.value = spec.program.toLowerCase().replace(/[^a-z0-9_]/g, '_');
    program.dataset['auto'] = '1';
  }
}
$('upload-form').querySelector('select[name=spec]')!.addEventListener('change', fillProgram);
$('upload-form').querySelector('input[name=program]')!.addEventListener('input', (ev) => {
  (ev.target as HTMLInputElement).dataset['auto'] = '0';
});

$('upload-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const formEl = ev.target as HTMLFormElement;
  const form = new FormData(formEl);
  const file = form.get('file');
  if (!(file instanceof File) || !file.name) return;
  const button = formEl.querySelector('button')!;
  const line = $('upload-progress');
  const bar = line.querySelector('progress')!;
  const label = line.querySelector('span')!;
  const meter = new RateMeter();
  button.disabled = true;
  line.hidden = false;
  flash(undefined);
  try {
    const res = await uploadFile(
      session!.token,
      { spec: String(form.get('spec')), program: String(form.get('program')), onInvalidRows: form.get('onInvalidRows') === 'FAIL' ? 'FAIL' : 'SKIP' },
      file,
      (sent, total) => {
        meter.push(sent);
        bar.value = total ? (sent / total) * 100 : 0;
        label.textContent = `Uploading ${formatBytes(sent)} of ${formatBytes(total)} · ${formatBytes(meter.perSecond() ?? 0)}/s`;
      },
    );
    label.textContent = `Uploaded ${file.name} (${formatBytes(res.file.size)}), job queued.`;
    await openFile(res.file.id);
  } catch (err) {
    line.hidden = true;
    fail(err);
  } finally {
    button.disabled = false;
  }
});

// ---------------------------------------------------------------- job

function remember(fileId: string): void {
  localStorage.setItem(CURRENT_FILE_KEY, fileId);
  const url = new URL(window.location.href);
  url.searchParams.set('file', fileId);
  window.history.replaceState(null, '', url);
}

/** A file's state is its job's state, or (signed-URL uploads) its upload phase before the job. */
function renderState(state: JobState | FileState, percent: number | null): void {
  view.state = state;
  const badge = $('job-state');
  badge.textContent = state.replaceAll('_', ' ').toLowerCase();
  badge.dataset['state'] = state;
  const bar = $<HTMLProgressElement>('job-bar');
  const done = TERMINAL.has(state);
  const value = done && state !== 'FAILED' && state !== 'CANCELLED' ? 100 : percent;
  if (value === null) bar.removeAttribute('value');
  else bar.value = value;
  $('job-percent').textContent = value === null ? (state === 'QUEUED' ? 'waiting for a worker' : '') : `${value.toFixed(value < 10 ? 1 : 0)} %`;
  $('job-cancel').hidden = done;
}

function renderCounts(c: { processed: number | null; valid: number | null; invalid: number | null }): void {
  $('c-processed').textContent = formatCount(c.processed);
  $('c-valid').textContent = formatCount(c.valid);
  $('c-invalid').textContent = formatCount(c.invalid);
}

function renderTiming(): void {
  const running = view.state === 'RUNNING';
  const rate = running ? view.rate.perSecond() : averageRate(view.processed, view.startedAt, view.finishedAt);
  $('c-rate').textContent = view.startedAt ? formatRate(rate) : '–';
  const end = view.finishedAt ? Date.parse(view.finishedAt) : Date.now();
  $('c-elapsed').textContent = view.startedAt ? formatDuration(end - Date.parse(view.startedAt)) : '–';
}
setInterval(() => view.state === 'RUNNING' && renderTiming(), 1000);

function renderError(e: { code: string; message: string } | null | undefined): void {
  $('job-error').hidden = !e;
  $('job-error').textContent = e ? `${e.code}: ${e.message}` : '';
}

function renderFile(f: FileData): void {
  const job = f.job;
  $('job').hidden = false;
  $('job-id').textContent = job?.id ?? '–';
  $('job-file').textContent = `${f.fileName} · ${formatBytes(f.size)} · spec ${f.spec ? `${f.spec.name} v${f.spec.version}` : '–'} · program ${f.program ?? '–'}`;
  view.startedAt = job?.startedAt ?? undefined;
  view.finishedAt = job?.finishedAt ?? undefined;
  view.processed = job?.progress.processed ?? 0;
  renderState(f.state, job?.progress.percent ?? null);
  if (f.finished && f.rows.total !== null) renderCounts({ processed: f.rows.total, valid: f.rows.valid, invalid: f.rows.invalid });
  else renderCounts({ processed: job?.progress.processed ?? 0, valid: job?.progress.succeeded ?? 0, invalid: job?.progress.failed ?? 0 });
  renderError(f.error ?? job?.error);
  renderTiming();
}

function applyEvent(e: JobEventFieldsFragment): void {
  view.lastSeq = e.seq;
  if (e.kind === 'STATE' && e.state === 'RUNNING') view.startedAt ??= e.at;
  if (e.terminal) view.finishedAt = e.at;
  view.processed = e.progress.processed;
  view.rate.push(e.progress.processed, Date.parse(e.at));
  renderState(e.state, e.progress.percent);
  renderCounts({ processed: e.progress.processed, valid: e.progress.succeeded, invalid: e.progress.failed });
  renderError(e.error);
  renderTiming();
}

/** Shows a file and, while its job runs, follows it. */
async function openFile(fileId: string): Promise<void> {
  const gen = ++view.watchGen;
  remember(fileId);
  $('errors').hidden = true;
  const { file } = await client!.request(FileDocument, { id: fileId });
  if (gen !== view.watchGen) return;
  Object.assign(view, { fileId, jobId: file.job?.id, lastSeq: file.job?.lastSeq ?? 0, rate: new RateMeter() });
  renderFile(file);
  if (file.job && !TERMINAL.has(file.job.state)) await watch(gen, file.job.id);
  else await finished(gen, file);
}

/**
 * Follows `jobUpdated` from the last seen sequence number. A dropped socket is retried with
 * back-off; replay after `afterSeq` means no event is missed or shown twice.
 */
async function watch(gen: number, jobId: string): Promise<void> {
  if (!client) return;
  try {
    for await (const e of followJob(client, jobId, {
      afterSeq: view.lastSeq,
      maxReconnects: Infinity,
      backoffMs: (n) => Math.min(500 * 2 ** n, 10_000),
      onReconnect: (n) => flash(`Connection lost; reconnecting (attempt ${n})…`),
      stopped: () => gen !== view.watchGen || !client,
    })) {
      applyEvent(e);
      flash(undefined);
    }
  } catch (err) {
    if (err instanceof SluiceRequestError) return fail(err);
    if (err instanceof TokenRefusedError) return signOut('Your session ended; sign in again.');
    throw err;
  }
  if (gen !== view.watchGen || !client) return;
  const { file } = await client.request(FileDocument, { id: view.fileId! });
  // The subscription can end without a terminal event (a server shutting down): follow on.
  if (file.job && !TERMINAL.has(file.job.state)) return watch(gen, file.job.id);
  await finished(gen, file);
}

async function finished(gen: number, file: FileData): Promise<void> {
  if (gen !== view.watchGen) return;
  renderFile(file);
  void loadRecent();
  view.errorCursors = [null];
  renderErrorSummary(file);
  if ((file.rows.invalid ?? 0) > 0 || file.error) await loadErrors(0);
}

/** The file's error analytics above the row errors: one line per column, with its most frequent bad values. */
function renderErrorSummary(file: FileData): void {
  const s = file.errorSummary;
  const codes = (list: ReadonlyArray<{ code: string; count: number }>) => list.map((c) => `${c.code} ${formatCount(c.count)}`).join(', ');
  const items = !s || s.total === 0 ? [] : [`${formatCount(s.total)} errors: ${codes(s.byCode)}`, ...s.byColumn.map((c) => {
    const top = c.topValues.slice(0, 3).map((v) => `${JSON.stringify(v.value)} ×${formatCount(v.count)}`).join(', ');
    return `${c.column}: ${formatCount(c.count)} (${codes(c.byCode)})${top ? `; most frequent ${top}` : ''}`;
  })];
  $('errors-summary').replaceChildren(
    ...items.map((text) => {
      const li = document.createElement('li');
      li.textContent = text;
      return li;
    }),
  );
}

// ---------------------------------------------------------------- row errors

async function loadErrors(page: number): Promise<void> {
  const fileId = view.fileId!;
  const { file } = await client!.request(FileRowErrorsDocument, { id: fileId, first: ERRORS_PAGE, after: view.errorCursors[page] ?? null });
  const { rowErrors } = file;
  $('errors').hidden = rowErrors.totalCount === 0;
  $('errors-total').textContent = `${formatCount(rowErrors.totalCount)} in all`;
  $('errors-body').replaceChildren(
    ...rowErrors.nodes.map((e) => {
      const tr = document.createElement('tr');
      for (const v of [String(e.line), e.column ?? '', e.code, e.message]) {
        const td = document.createElement('td');
        td.textContent = v;
        tr.append(td);
      }
      return tr;
    }),
  );
  view.errorCursors.length = page + 1;
  if (rowErrors.pageInfo.hasNextPage) view.errorCursors.push(rowErrors.pageInfo.endCursor);
  const pages = Math.max(1, Math.ceil(rowErrors.totalCount / ERRORS_PAGE));
  $('errors-page').textContent = `page ${page + 1} of ${pages}`;
  $('errors-page').dataset['page'] = String(page);
  $<HTMLButtonElement>('errors-prev').disabled = page === 0;
  $<HTMLButtonElement>('errors-next').disabled = !rowErrors.pageInfo.hasNextPage;
}

const errorsPage = () => Number($('errors-page').dataset['page'] ?? 0);
$('errors-prev').addEventListener('click', () => loadErrors(errorsPage() - 1).catch(fail));
$('errors-next').addEventListener('click', () => loadErrors(errorsPage() + 1).catch(fail));
$('errors-download').addEventListener('click', () => downloadErrorReport(session!.token, view.fileId!).catch(fail));
$('job-cancel').addEventListener('click', () => client!.request(CancelJobDocument, { id: view.jobId! }).catch(fail));

// ---------------------------------------------------------------- recent files

async function loadRecent(): Promise<void> {
  const { files } = await client!.request(FilesDocument, { first: 10 });
  $('recent-list').replaceChildren(
    ...files.nodes.map((f) => {
      const li = document.createElement('li');
      const a = document.createElement('a');
      a.textContent = f.fileName;
      a.href = `?file=${f.id}`;
      a.addEventListener('click', (ev) => {
        ev.preventDefault();
        openFile(f.id).catch(fail);
      });
      li.append(a, ` · ${f.spec?.name ?? f.kind} · ${f.state.replaceAll('_', ' ').toLowerCase()} · ${new Date(f.createdAt).toLocaleString()}`);
      return li;
    }),
  );
}

// ---------------------------------------------------------------- start

async function start(): Promise<void> {
  if (!session) return signOut();
  showSignedIn(session);
  try {
    await Promise.all([loadSpecs(), loadRecent()]);
    const fileId = new URL(window.location.href).searchParams.get('file') ?? localStorage.getItem(CURRENT_FILE_KEY);
    if (fileId) {
      await openFile(fileId).catch((err: unknown) => {
        // A remembered file from another server or client: forget it quietly.
        if (!(err instanceof SluiceRequestError && err.code === 'NOT_FOUND')) throw err;
        localStorage.removeItem(CURRENT_FILE_KEY);
        $('job').hidden = true;
      });
    }
  } catch (err) {
    fail(err);
  }
}

void start();
