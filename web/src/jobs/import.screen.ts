import { JobDocument, UploadFileDocument, ValidateFileDocument, type UploadFileMutation, type ValidateFileMutation } from '../../../src/sdk/client';
import { formatBytes, formatCount, formatDuration, RateMeter } from '../../../src/sdk/progress';
import { app, client, fail, loadSpecs, messageOf, onJobChange, type Spec } from './app';
import { previewCsv, type CsvPreview } from './csv-preview';
import { $, flash, h } from './dom';
import { openFile } from './job.screen';
import { stateLabel, TERMINAL } from './labels';
import { uploadWithProgress } from './upload';

/**
 * Import a CSV for a spec: choose the spec, drop one or more files, see a preview of the first
 * rows with the dry run (`validateFile` on those rows) as cell highlights, then upload. Files are
 * queued and uploaded one after another while earlier jobs run; the Upload button is free again
 * as soon as a file is stored. Each queue line follows its job live (the `jobs` subscription) and
 * the queued jobs are kept in localStorage, so a reload shows them again. Files not yet uploaded
 * cannot survive a reload: a page cannot reopen a File without the user choosing it again.
 */

interface Item {
  key: number;
  name: string;
  size: number;
  file?: File;
  spec: string;
  program: string;
  onInvalidRows: 'SKIP' | 'FAIL';
  status: 'waiting' | 'uploading' | 'stored' | 'failed';
  sent?: number;
  meter?: RateMeter;
  fileId?: string;
  jobId?: string;
  jobState?: string;
  percent?: number | null;
  error?: string;
}

const QUEUE_KEY = 'sluice.queue';
const queue: Item[] = [];
let nextKey = 1;
let uploading = false;
/** Files chosen but not yet sent to the queue, with their previews. */
let chosen: File[] = [];

function form(): HTMLFormElement {
  return $<HTMLFormElement>('upload-form');
}
const field = <T extends HTMLElement>(name: string) => form().querySelector<T>(`[name=${name}]`)!;

function saveQueue(): void {
  const kept = queue.filter((q) => q.jobId).slice(-20).map(({ key, name, size, spec, program, onInvalidRows, fileId, jobId, jobState }) => ({ key, name, size, spec, program, onInvalidRows, fileId, jobId, jobState, status: 'stored' }));
  localStorage.setItem(QUEUE_KEY, JSON.stringify(kept));
}
function restoreQueue(): void {
  try {
    const saved = JSON.parse(localStorage.getItem(QUEUE_KEY) ?? '[]') as Item[];
    for (const s of saved) queue.push({ ...s, key: nextKey++ });
  } catch {
    localStorage.removeItem(QUEUE_KEY);
  }
}

// ---------------------------------------------------------------- specs and program

function fillSpecs(specs: Spec[]): void {
  field<HTMLSelectElement>('spec').replaceChildren(...specs.map((s) => h('option', { value: s.name }, `${s.name} (v${s.version}, ${s.kind.toLowerCase()})`)));
  if (!specs.length) flash('No specs registered yet: an ADMIN registers them (npx sluice specs register <file.json>).');
  fillProgram();
}

/** The program defaults to the spec's own; a typed value is kept. */
function fillProgram(): void {
  const program = field<HTMLInputElement>('program');
  const spec = currentSpec();
  if (spec && (!program.value || program.dataset['auto'] === '1')) {
    program.value = spec.program.toLowerCase().replace(/[^a-z0-9_]/g, '_');
    program.dataset['auto'] = '1';
  }
}
const currentSpec = (): Spec | undefined => app.specs.find((s) => s.name === field<HTMLSelectElement>('spec').value);

// ---------------------------------------------------------------- preview and dry run

/** Which CSV column an error's column name refers to: the spec column's source name or its own. */
function columnIndex(header: string[], spec: Spec | undefined, column: string | null): number {
  if (!column) return -1;
  const c = spec?.columns.find((x) => x.column === column || x.sourceName === column);
  const names = [column, c?.sourceName, c?.column].filter(Boolean).map((s) => s!.toLowerCase());
  return header.findIndex((x) => names.includes(x.trim().toLowerCase()));
}

async function showPreview(): Promise<void> {
  const box = $('preview');
  const file = chosen[0];
  const spec = currentSpec();
  if (!file || !spec) {
    box.hidden = true;
    return;
  }
  box.hidden = false;
  const status = $('preview-status');
  status.textContent = `Checking the first rows of ${file.name}…`;
  delete status.dataset['tone'];
  let p: CsvPreview;
  try {
    p = await previewCsv(file);
  } catch (err) {
    status.textContent = `Could not read ${file.name}: ${messageOf(err)}`;
    return;
  }
  let report: ValidateFileMutation['validateFile'] | undefined;
  try {
    ({ validateFile: report } = await uploadWithProgress(app.session!.token, ValidateFileDocument, { spec: spec.name, maxErrors: 1000 }, file.slice(0, p.bytes), file.name, () => {}));
  } catch (err) {
    status.textContent = `The dry run failed: ${messageOf(err)}`;
    status.dataset['tone'] = 'error';
  }
  if (chosen[0] !== file) return;
  const errors = new Map<string, string[]>();
  for (const e of report?.errors ?? []) {
    const k = `${e.line}:${columnIndex(p.header, spec, e.column)}`;
    errors.set(k, [...(errors.get(k) ?? []), e.message]);
  }
  const missing = (report?.headerProblems ?? []).filter((x) => x.column).map((x) => x.column!.toLowerCase());
  const tableEl = h(
    'table',
    { class: 'preview', 'data-testid': 'preview-table' },
    h('caption', {}, `First ${p.rows.length} rows of ${file.name}`),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Line'), ...p.header.map((c) => h('th', { scope: 'col', class: missing.includes(c.toLowerCase()) ? 'bad' : '' }, c)))),
    h(
      'tbody',
      {},
      ...p.rows.map((r) =>
        h(
          'tr',
          {},
          h('th', { scope: 'row' }, String(r.line)),
          ...p.header.map((_, i) => {
            const msgs = [...(errors.get(`${r.line}:${i}`) ?? []), ...(i === 0 ? (errors.get(`${r.line}:-1`) ?? []) : [])];
            return h('td', msgs.length ? { class: 'bad', title: msgs.join('; '), 'data-error': msgs.join('; ') } : {}, r.cells[i] ?? '');
          }),
        ),
      ),
    ),
  );
  $('preview-table-wrap').replaceChildren(tableEl);
  const problems = $('preview-problems');
  if (report?.headerProblems.length) {
    status.textContent = `The column names of ${file.name} do not match the spec ${spec.name}:`;
    status.dataset['tone'] = 'error';
    problems.replaceChildren(...report.headerProblems.map((x) => h('li', {}, x.message)));
    // COLUMN MAPPING (issue 18, part 2) goes here: matching each CSV column to a spec column
    // (suggestions, aliases, ignore) needs `columnMap`/aliases in the API, which does not exist
    // yet. Until then the page lists the expected columns so the file can be fixed.
    problems.append(h('li', { class: 'hint' }, `Expected columns: ${spec.columns.map((c) => c.sourceName ?? c.column).join(', ')}. Column mapping is not available yet: rename the columns in the file.`));
  } else if (report) {
    const bad = report.invalidRows;
    status.textContent =
      bad === 0
        ? `The first ${formatCount(report.total)} rows are valid.`
        : `${formatCount(bad)} of the first ${formatCount(report.total)} rows have problems (highlighted; hover or focus a cell for the reason). They would be ${field<HTMLSelectElement>('onInvalidRows').value === 'FAIL' ? 'refused with the whole file' : 'skipped and reported'}.`;
    status.dataset['tone'] = bad === 0 ? 'success' : 'warning';
    // The same problems as text, for screen readers and narrow screens where cells are cut off.
    problems.replaceChildren(...report.errors.filter((e) => e.line <= (p.rows.at(-1)?.line ?? 0)).map((e) => h('li', {}, `Line ${e.line}${e.column ? `, ${e.column}` : ''}: ${e.message}`)));
  }
  // MERGE DIFF (issue 18, part 2) goes here for dimension specs: inserts, updates with before and
  // after, unchanged and deletes need `mode: MERGE` and a diff from the API, which do not exist yet.
  $('preview-more').textContent = chosen.length > 1 ? `${chosen.length - 1} more file(s) chosen; each is checked on the server when it is imported.` : '';
}

function choose(files: File[]): void {
  chosen = files.filter((f) => f.name);
  $('chosen').textContent = chosen.length ? chosen.map((f) => `${f.name} (${formatBytes(f.size)})`).join(', ') : '';
  void showPreview().catch(fail);
}

// ---------------------------------------------------------------- queue

function itemLine(q: Item): string {
  if (q.status === 'waiting') return `waiting to upload (${formatBytes(q.size)})`;
  if (q.status === 'uploading') {
    const rate = q.meter?.perSecond();
    const left = rate ? (q.size - (q.sent ?? 0)) / rate : undefined;
    return `uploading ${formatBytes(q.sent ?? 0)} of ${formatBytes(q.size)}${rate ? ` · ${formatBytes(rate)}/s` : ''}${left !== undefined ? ` · about ${formatDuration(left * 1000)} left` : ''}`;
  }
  if (q.status === 'failed') return `not uploaded: ${q.error}`;
  if (!q.jobState || q.jobState === 'QUEUED') return 'stored; waiting for a worker';
  if (q.jobState === 'RUNNING') return `stored; processing${q.percent != null ? ` ${q.percent.toFixed(0)} %` : ''}`;
  return `stored; ${stateLabel(q.jobState)}`;
}

function renderQueue(): void {
  const list = $('queue-list');
  $('queue').hidden = queue.length === 0;
  list.replaceChildren(
    ...queue
      .slice()
      .reverse()
      .map((q) =>
        h(
          'li',
          { 'data-state': q.jobState ?? q.status, 'data-testid': 'queue-item' },
          q.fileId ? h('a', { href: `?file=${q.fileId}`, onclick: (ev: Event) => (ev.preventDefault(), void openFile(q.fileId!).catch(fail)) }, q.name) : h('span', {}, q.name),
          ' · ',
          h('span', { class: 'queue-status' }, itemLine(q)),
          q.status === 'uploading' ? h('progress', { max: q.size || 1, value: q.sent ?? 0, 'aria-label': `Upload of ${q.name}` }) : '',
          q.status === 'waiting' ? h('button', { type: 'button', class: 'link', onclick: () => (queue.splice(queue.indexOf(q), 1), renderQueue()) }, 'Remove') : '',
        ),
      ),
  );
  const clear = $<HTMLButtonElement>('queue-clear');
  clear.hidden = !queue.some((q) => q.status === 'failed' || TERMINAL.has(q.jobState ?? ''));
}

/** Uploads waiting items one at a time; the first stored file opens in the job card. */
async function pump(): Promise<void> {
  if (uploading) return;
  uploading = true;
  let opened = false;
  try {
    for (let q = queue.find((x) => x.status === 'waiting'); q; q = queue.find((x) => x.status === 'waiting')) {
      q.status = 'uploading';
      q.meter = new RateMeter();
      renderQueue();
      try {
        const res: UploadFileMutation = await uploadWithProgress(
          app.session!.token,
          UploadFileDocument,
          { spec: q.spec, program: q.program, onInvalidRows: q.onInvalidRows },
          q.file!,
          q.name,
          (sent) => {
            q.sent = sent;
            q.meter!.push(sent);
            renderQueue();
          },
        );
        Object.assign(q, { status: 'stored', fileId: res.uploadFile.file.id, jobId: res.uploadFile.job.id, jobState: res.uploadFile.job.state, file: undefined });
        saveQueue();
        renderQueue();
        if (!opened) {
          opened = true;
          void openFile(q.fileId!).catch(fail);
        }
      } catch (err) {
        Object.assign(q, { status: 'failed', error: messageOf(err), file: undefined });
        renderQueue();
      }
    }
  } finally {
    uploading = false;
  }
}

// ---------------------------------------------------------------- wiring

export function initImportScreen(): void {
  restoreQueue();
  renderQueue();
  field('spec').addEventListener('change', () => {
    fillProgram();
    void showPreview().catch(fail);
  });
  field('program').addEventListener('input', (ev) => {
    (ev.target as HTMLInputElement).dataset['auto'] = '0';
  });
  field('onInvalidRows').addEventListener('change', () => void showPreview().catch(fail));
  const input = field<HTMLInputElement>('file');
  input.addEventListener('change', () => choose([...(input.files ?? [])]));
  const zone = $('drop');
  zone.addEventListener('dragover', (ev) => {
    ev.preventDefault();
    zone.classList.add('over');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (ev) => {
    ev.preventDefault();
    zone.classList.remove('over');
    choose([...(ev.dataTransfer?.files ?? [])]);
  });
  form().addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (!form().reportValidity()) return;
    if (!chosen.length) {
      flash('Choose one or more CSV files first.');
      return;
    }
    flash(undefined);
    for (const file of chosen) {
      queue.push({
        key: nextKey++,
        name: file.name,
        size: file.size,
        file,
        spec: field<HTMLSelectElement>('spec').value,
        program: field<HTMLInputElement>('program').value,
        onInvalidRows: field<HTMLSelectElement>('onInvalidRows').value === 'FAIL' ? 'FAIL' : 'SKIP',
        status: 'waiting',
      });
    }
    // The form is free again at once: more files can be chosen and queued while these upload.
    input.value = '';
    choose([]);
    renderQueue();
    void pump();
  });
  $('queue-clear').addEventListener('click', () => {
    for (let i = queue.length - 1; i >= 0; i--) if (queue[i]!.status === 'failed' || TERMINAL.has(queue[i]!.jobState ?? '')) queue.splice(i, 1);
    saveQueue();
    renderQueue();
  });
  onJobChange((job) => {
    const q = queue.find((x) => x.jobId === job.id);
    if (!q) return;
    q.jobState = job.state;
    q.percent = job.progress.percent;
    saveQueue();
    renderQueue();
  });
}

export async function showImportScreen(): Promise<void> {
  fillSpecs(app.specs.length ? app.specs : await loadSpecs());
  // Jobs restored from a reload may have ended meanwhile: read their state once.
  await Promise.all(
    queue
      .filter((q) => q.jobId && !TERMINAL.has(q.jobState ?? ''))
      .map(async (q) => {
        const { job } = await client().request(JobDocument, { id: q.jobId! }).catch(() => ({ job: undefined }));
        if (job) Object.assign(q, { jobState: job.state, percent: job.progress.percent });
      }),
  );
  renderQueue();
}
