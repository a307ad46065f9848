import { JobDocument, type ValidateFileMutation } from '../../../src/sdk/client';
import { formatBytes, formatCount, formatDuration, RateMeter } from '../../../src/sdk/progress';
import { app, client, fail, loadSpecs, messageOf, onJobChange, type Spec } from './app';
import { previewCsv, type CsvPreview } from './csv-preview';
import { $, flash, h } from './dom';
import { openFile } from './job.screen';
import { stateLabel, TERMINAL } from './labels';
import {
  WebUploadFileDocument,
  WebValidateFileDocument,
  type WebValidateFileMutation,
  type WebValidateFileMutationVariables as WebValidateFileVariables,
} from '../../../src/sdk/client';
import { uploadWithProgress } from './upload';

/**
 * Import a CSV for a spec: choose the spec, drop one or more files, see a preview of the first
 * rows with the dry run (`validateFile` on those rows) as cell highlights, then upload. Files are
 * queued and uploaded one after another while earlier jobs run; the Upload button is free again
 * as soon as a file is stored. Each queue line follows its job live (the `jobs` subscription) and
 * the queued jobs are kept in localStorage, so a reload shows them again. Files not yet uploaded
 * cannot survive a reload: a page cannot reopen a File without the user choosing it again.
 *
 * When the header does not match the spec, a mapping step matches each CSV column to a spec column
 * (or ignores it); the matching is sent as `columnMap` (and `onUnknownColumns: IGNORE`) with the dry
 * run and the uploads. For a dimension with a key, the whole file is dry-run with `mode: MERGE` and
 * the diff (new, updated with before and after, unchanged, removed) is shown before the upload.
 */

interface Item {
  key: number;
  name: string;
  size: number;
  file?: File;
  spec: string;
  program: string;
  onInvalidRows: 'SKIP' | 'FAIL';
  /** From the mapping step, when the header did not match. */
  columnMap?: Record<string, string>;
  onUnknownColumns?: 'IGNORE';
  /** A keyed dimension's full snapshot: keys the file lacks are removed. */
  deleteMissing?: boolean;
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
  const kept = queue
    .filter((q) => q.jobId)
    .slice(-20)
    .map(({ key, name, size, spec, program, onInvalidRows, fileId, jobId, jobState }) => ({
      key,
      name,
      size,
      spec,
      program,
      onInvalidRows,
      fileId,
      jobId,
      jobState,
      status: 'stored',
    }));
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
  $('snapshot-wrap').hidden = !isKeyed(spec);
  $('upload-form').querySelector('button[type=submit]')!.textContent = isKeyed(spec) ? 'Upload and merge' : 'Upload';
  if (spec && (!program.value || program.dataset['auto'] === '1')) {
    program.value = spec.program.toLowerCase().replace(/[^a-z0-9_]/g, '_');
    program.dataset['auto'] = '1';
  }
}
const currentSpec = (): Spec | undefined => app.specs.find((s) => s.name === field<HTMLSelectElement>('spec').value);

// ---------------------------------------------------------------- column mapping

/** The select value of "ignore this column". */
const IGNORE = '';
/** A dimension bigger than this is not compared in the browser before its upload (the upload merges it anyway). */
const DIFF_MAX_BYTES = 50 * 1024 * 1024;

interface MapOptions {
  columnMap?: Record<string, string>;
  onUnknownColumns?: 'IGNORE';
}

/**
 * The mapping step, shown when the chosen file's header does not match the spec: one select per
 * CSV column. It belongs to one file and spec; choosing another drops it. `applied` once the user
 * checked the file with it.
 */
let mapping: { file: File; spec: string; header: string[]; selects: HTMLSelectElement[]; applied: boolean } | undefined;

const norm = (s: string): string => s.trim().toLowerCase();
const isKeyed = (spec: Spec | undefined): boolean => spec?.kind === 'DIMENSION' && spec.currentTableName != null;
/** A spec column by its spec name or SQL name. */
const columnNamed = (spec: Spec, name: string) => spec.columns.find((c) => norm(c.column) === norm(name) || norm(c.sourceName) === norm(name));
/** The spec column a header cell matches by itself (spec name, SQL name or alias), as the server matches it. */
const autoMatch = (spec: Spec, header: string) => spec.columns.find((c) => [c.sourceName, c.column, ...c.aliases].some((x) => norm(x) === norm(header)));

function hideMapping(): void {
  mapping = undefined;
  $('mapping').hidden = true;
  $('mapping-body').replaceChildren();
}

function buildMapping(file: File, spec: Spec, p: CsvPreview, problems: ValidateFileMutation['validateFile']['headerProblems']): void {
  // The API's did-you-mean, both ways: an unknown header names the column it may be; a missing column names the header that may be it.
  const suggested = new Map<string, string>();
  for (const x of problems) {
    if (!x.column || !x.suggestion) continue;
    if (x.code === 'UNKNOWN_COLUMN') suggested.set(norm(x.column), columnNamed(spec, x.suggestion)?.column ?? '');
    if (x.code === 'MISSING_REQUIRED_COLUMN') suggested.set(norm(x.suggestion), columnNamed(spec, x.column)?.column ?? '');
  }
  const taken = new Set(p.header.map((c) => autoMatch(spec, c)?.column).filter(Boolean));
  const selects: HTMLSelectElement[] = [];
  const rows = p.header.map((cell, i) => {
    const auto = autoMatch(spec, cell);
    const guess = suggested.get(norm(cell));
    const initial = auto?.column ?? (guess && !taken.has(guess) ? guess : IGNORE);
    if (!auto && guess) taken.add(guess);
    const select = h(
      'select',
      { 'aria-label': `Spec column for your column ${cell || `number ${i + 1}`}`, 'data-header': cell, 'data-testid': 'mapping-select' },
      // A header the server matches by name cannot be dropped: it is always read.
      auto ? '' : h('option', { value: IGNORE }, 'ignore this column'),
      ...spec.columns.map((c) =>
        h('option', { value: c.column }, `${c.sourceName}${c.required ? ' (required)' : ''}${c.column === guess && !auto ? ' (suggested)' : ''}`),
      ),
    ) as HTMLSelectElement;
    select.value = initial;
    select.addEventListener('change', () => noteMapping(spec));
    selects.push(select);
    const how = auto
      ? norm(auto.sourceName) === norm(cell) || norm(auto.column) === norm(cell)
        ? 'same name'
        : 'another name of it in the spec'
      : guess
        ? 'close name'
        : '';
    return h(
      'tr',
      {},
      h('th', { scope: 'row' }, cell || `(column ${i + 1} has no name)`, how ? h('small', { class: 'why' }, ` ${how}`) : ''),
      h('td', {}, p.rows[0]?.cells[i] ?? ''),
      h('td', {}, select),
    );
  });
  $('mapping-body').replaceChildren(...rows);
  $('mapping').hidden = false;
  mapping = { file, spec: spec.name, header: p.header, selects, applied: false };
  noteMapping(spec);
}

/** What the selects say, for validateFile and uploadFile; a string when two columns are matched to one spec column. */
function mapOptions(): MapOptions | string {
  if (!mapping) return {};
  const spec = app.specs.find((s) => s.name === mapping!.spec);
  if (!spec) return {};
  const columnMap: Record<string, string> = {};
  const seen = new Map<string, string>();
  let ignored = false;
  for (const [i, select] of mapping.selects.entries()) {
    const cell = mapping.header[i]!;
    const v = select.value;
    if (v === IGNORE) {
      ignored = true;
      continue;
    }
    const name = columnNamed(spec, v)?.sourceName ?? v;
    if (seen.has(v)) return `Your columns ${seen.get(v)} and ${cell} are both matched to ${name}: choose one, ignore the other.`;
    seen.set(v, cell);
    if (autoMatch(spec, cell)?.column !== v) columnMap[cell.trim()] = v;
  }
  return { ...(Object.keys(columnMap).length ? { columnMap } : {}), ...(ignored ? { onUnknownColumns: 'IGNORE' as const } : {}) };
}

/** The mapping in words under the selects, and which required columns no column holds yet. */
function noteMapping(spec: Spec): void {
  if (!mapping) return;
  const opts = mapOptions();
  const note = $('mapping-note');
  if (typeof opts === 'string') {
    note.textContent = opts;
    note.dataset['tone'] = 'error';
    return;
  }
  delete note.dataset['tone'];
  const chosenCols = new Set(mapping.selects.map((s) => s.value).filter((v) => v !== IGNORE));
  const missing = spec.columns.filter((c) => c.required && !chosenCols.has(c.column)).map((c) => c.sourceName);
  const ignored = mapping.header.filter((_, i) => mapping!.selects[i]!.value === IGNORE);
  note.textContent = [
    missing.length ? `Still needed: ${missing.join(', ')}.` : 'Every required column is matched.',
    ignored.length ? `Ignored: ${ignored.join(', ')}.` : '',
    mapping.applied ? 'This matching is used for the upload of every chosen file.' : 'Press "Check again" to try it on the first rows.',
  ]
    .filter(Boolean)
    .join(' ');
}

// ---------------------------------------------------------------- preview and dry run

/** Which CSV column an error's column name refers to: the mapped header, the spec column's source name or its own. */
function columnIndex(header: string[], spec: Spec | undefined, column: string | null, columnMap: Record<string, string> = {}): number {
  if (!column) return -1;
  const c = spec?.columns.find((x) => x.column === column || x.sourceName === column);
  const mapped = Object.entries(columnMap)
    .filter(([, v]) => v === c?.column || v === column)
    .map(([k]) => k.toLowerCase());
  const names = [column, c?.sourceName, c?.column, ...(c?.aliases ?? [])].filter(Boolean).map((s) => s!.toLowerCase());
  const i = header.findIndex((x) => mapped.includes(x.trim().toLowerCase()));
  return i >= 0 ? i : header.findIndex((x) => names.includes(x.trim().toLowerCase()));
}

const dryRun = (file: Blob, name: string, vars: Omit<WebValidateFileVariables, 'file'>) =>
  uploadWithProgress(app.session!.token, WebValidateFileDocument, vars, file, name, () => {}).then((r) => r.validateFile);

async function showPreview(): Promise<void> {
  const box = $('preview');
  const file = chosen[0];
  const spec = currentSpec();
  if (mapping && (mapping.file !== file || mapping.spec !== spec?.name)) hideMapping();
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
  const opts = mapOptions();
  if (typeof opts === 'string') {
    status.textContent = opts;
    status.dataset['tone'] = 'error';
    return;
  }
  let report: WebValidateFileMutation['validateFile'] | undefined;
  try {
    // APPEND: the first rows only; a dimension's diff comes from the whole file (showDiff).
    report = await dryRun(file.slice(0, p.bytes), file.name, { spec: spec.name, maxErrors: 1000, mode: 'APPEND', ...opts });
  } catch (err) {
    status.textContent = `The dry run failed: ${messageOf(err)}`;
    status.dataset['tone'] = 'error';
  }
  if (chosen[0] !== file) return;
  if (report?.headerProblems.length && !mapping) buildMapping(file, spec, p, report.headerProblems);
  const errors = new Map<string, string[]>();
  for (const e of report?.errors ?? []) {
    const k = `${e.line}:${columnIndex(p.header, spec, e.column, opts.columnMap)}`;
    errors.set(k, [...(errors.get(k) ?? []), e.message]);
  }
  const missing = (report?.headerProblems ?? []).filter((x) => x.column).map((x) => x.column!.toLowerCase());
  // With a mapping, each header cell says where it goes.
  const target = (cell: string, i: number): string => {
    const v = mapping?.applied ? mapping.selects[i]?.value : undefined;
    if (v === undefined) return '';
    if (v === IGNORE) return ' (ignored)';
    const c = spec.columns.find((x) => x.column === v);
    return c && norm(c.sourceName) !== norm(cell) ? ` → ${c.sourceName}` : '';
  };
  const tableEl = h(
    'table',
    { class: 'preview', 'data-testid': 'preview-table' },
    h('caption', {}, `First ${p.rows.length} rows of ${file.name}`),
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        h('th', { scope: 'col' }, 'Line'),
        ...p.header.map((c, i) => h('th', { scope: 'col', class: missing.includes(c.toLowerCase()) ? 'bad' : '' }, c, target(c, i))),
      ),
    ),
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
    status.textContent = mapping?.applied
      ? `With the columns as matched, ${file.name} still does not match the spec ${spec.name}:`
      : `The column names of ${file.name} do not match the spec ${spec.name}:`;
    status.dataset['tone'] = 'error';
    problems.replaceChildren(...report.headerProblems.map((x) => h('li', {}, x.message)));
    problems.append(h('li', { class: 'hint' }, 'Match the columns below, then check again; or rename the columns in the file.'));
    hideDiff();
  } else if (report) {
    const bad = report.invalidRows;
    const matched = mapping?.applied ? 'With the columns as matched, ' : '';
    const first = `${matched}${matched ? 'the' : 'The'} first ${formatCount(report.total)} rows`;
    status.textContent =
      bad === 0
        ? `${first} are valid.`
        : `${matched}${formatCount(bad)} of the first ${formatCount(report.total)} rows have problems (highlighted; hover or focus a cell for the reason). They would be ${field<HTMLSelectElement>('onInvalidRows').value === 'FAIL' ? 'refused with the whole file' : 'skipped and reported'}.`;
    status.dataset['tone'] = bad === 0 ? 'success' : 'warning';
    // The same problems as text, for screen readers and narrow screens where cells are cut off.
    problems.replaceChildren(
      ...report.errors
        .filter((e) => e.line <= (p.rows.at(-1)?.line ?? 0))
        .map((e) => h('li', {}, `Line ${e.line}${e.column ? `, ${e.column}` : ''}: ${e.message}`)),
    );
    const ignoredWarning = report.warnings.find((w) => w.code === 'IGNORED_COLUMNS');
    if (ignoredWarning) problems.append(h('li', { class: 'hint' }, ignoredWarning.message));
    if (isKeyed(spec)) void showDiff(file, spec, opts).catch(fail);
    else hideDiff();
  }
  if (mapping) noteMapping(spec);
  $('preview-more').textContent = chosen.length > 1 ? `${chosen.length - 1} more file(s) chosen; each is checked on the server when it is imported.` : '';
}

// ---------------------------------------------------------------- merge diff (dimensions)

let diffGen = 0;
function hideDiff(): void {
  diffGen++;
  $('diff').hidden = true;
}

/** A keyed dimension merges: the whole file is dry-run with mode MERGE and its diff shown before the upload. */
async function showDiff(file: File, spec: Spec, opts: MapOptions): Promise<void> {
  const gen = ++diffGen;
  const box = $('diff');
  const status = $('diff-status');
  box.hidden = false;
  $('diff-counts').replaceChildren();
  $('diff-changes-wrap').replaceChildren();
  if (file.size > DIFF_MAX_BYTES) {
    status.textContent = `${file.name} is too large (${formatBytes(file.size)}) to compare here; the upload merges it and its page shows what changed.`;
    return;
  }
  const deleteMissing = field<HTMLInputElement>('deleteMissing').checked;
  status.textContent = `Comparing all of ${file.name} with the current ${spec.name} table…`;
  let report: WebValidateFileMutation['validateFile'];
  try {
    report = await dryRun(file, file.name, { spec: spec.name, maxErrors: 0, mode: 'MERGE', deleteMissing, ...opts });
  } catch (err) {
    if (gen === diffGen) status.textContent = `Could not compare the file with the table: ${messageOf(err)}`;
    return;
  }
  if (gen !== diffGen) return;
  const d = report.diff;
  if (!d) {
    status.textContent = 'The file cannot be merged as it is: see the problems above.';
    return;
  }
  status.textContent = `Nothing is changed until you press Upload. Uploading ${file.name} now would:`;
  const n = (count: number, one: string, many: string) => `${formatCount(count)} ${count === 1 ? one : many}`;
  $('diff-counts').replaceChildren(
    h('li', { 'data-kind': 'inserted' }, `add ${n(d.inserted, 'new row', 'new rows')}`),
    h(
      'li',
      { 'data-kind': 'updated' },
      `update ${n(d.updated, 'row', 'rows')} whose values changed${d.updated > d.changes.length && d.changes.length ? ` (the first ${d.changes.length} are below)` : ''}`,
    ),
    h('li', { 'data-kind': 'unchanged' }, `leave ${n(d.unchanged, 'row', 'rows')} as ${d.unchanged === 1 ? 'it is' : 'they are'} (no change)`),
    h(
      'li',
      { 'data-kind': 'deleted' },
      deleteMissing ? `remove ${n(d.deleted, 'row', 'rows')} whose key is not in the file` : 'remove no row (the file is not marked as the whole table)',
    ),
    ...(report.invalidRows ? [h('li', { 'data-kind': 'invalid' }, `skip ${n(report.invalidRows, 'row', 'rows')} with problems`)] : []),
  );
  if (d.changes.length) {
    $('diff-changes-wrap').replaceChildren(
      h(
        'table',
        { class: 'diff', 'data-testid': 'diff-changes' },
        h('caption', { class: 'sr-only' }, 'Rows that would be updated: each changed value before and after'),
        h('thead', {}, h('tr', {}, ...['Line', 'Key', 'Column', 'Now', 'After the upload'].map((c) => h('th', { scope: 'col' }, c)))),
        h(
          'tbody',
          {},
          ...d.changes.flatMap((c) =>
            c.changes.map((x, i) =>
              h(
                'tr',
                {},
                i === 0 ? h('th', { scope: 'row', rowspan: String(c.changes.length) }, String(c.line)) : '',
                i === 0 ? h('td', { rowspan: String(c.changes.length) }, c.key.map((k) => `${k.column} ${k.value ?? '(empty)'}`).join(', ')) : '',
                h('td', {}, x.column),
                h('td', { class: 'before' }, x.before ?? '(empty)'),
                h('td', { class: 'after' }, x.after ?? '(empty)'),
              ),
            ),
          ),
        ),
      ),
    );
  }
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
          q.fileId
            ? h('a', { href: `?file=${q.fileId}`, onclick: (ev: Event) => (ev.preventDefault(), void openFile(q.fileId!).catch(fail)) }, q.name)
            : h('span', {}, q.name),
          ' · ',
          h('span', { class: 'queue-status' }, itemLine(q)),
          q.status === 'uploading' ? h('progress', { max: q.size || 1, value: q.sent ?? 0, 'aria-label': `Upload of ${q.name}` }) : '',
          q.status === 'waiting'
            ? h('button', { type: 'button', class: 'link', onclick: () => (queue.splice(queue.indexOf(q), 1), renderQueue()) }, 'Remove')
            : '',
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
        const res = await uploadWithProgress(
          app.session!.token,
          WebUploadFileDocument,
          {
            spec: q.spec,
            program: q.program,
            onInvalidRows: q.onInvalidRows,
            columnMap: q.columnMap,
            onUnknownColumns: q.onUnknownColumns,
            deleteMissing: q.deleteMissing,
          },
          q.file!,
          q.name,
          (sent) => {
            q.sent = sent;
            q.meter!.push(sent);
            renderQueue();
          },
        );
        Object.assign(q, {
          status: 'stored',
          fileId: res.uploadFile.file.id,
          jobId: res.uploadFile.job.id,
          jobState: res.uploadFile.job.state,
          file: undefined,
        });
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
  field('deleteMissing').addEventListener('change', () => void showPreview().catch(fail));
  $('mapping-apply').addEventListener('click', () => {
    if (!mapping) return;
    mapping.applied = true;
    void showPreview().catch(fail);
  });
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
    const opts = mapOptions();
    if (typeof opts === 'string') {
      flash(opts);
      return;
    }
    const keyed = isKeyed(currentSpec());
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
        ...opts,
        deleteMissing: keyed && field<HTMLInputElement>('deleteMissing').checked,
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
        const { job } = await client()
          .request(JobDocument, { id: q.jobId! })
          .catch(() => ({ job: undefined }));
        if (job) Object.assign(q, { jobState: job.state, percent: job.progress.percent });
      }),
  );
  renderQueue();
}
