import { FileRowErrorsDocument, UploadCorrectionsDocument } from '../../../src/sdk/client';
import { formatCount } from '../../../src/sdk/progress';
import { app, client, messageOf } from './app';
import { previewCsv } from './csv-preview';
import { $, h } from './dom';
import { fetchFileCsv, uploadWithProgress } from './upload';

/**
 * The invalid rows of a file as an editable grid: the error report (`_line`, the file's own
 * columns, `error_description`) is read, its cells become inputs with the row errors marked, and
 * the rows the user changed go back as a corrections file (`uploadCorrections`). The caller then
 * opens the corrections file, whose page follows its job.
 */

/** Rows shown for editing; a longer report is fixed by downloading it. */
const FIX_ROWS = 200;

interface FixRow {
  line: string;
  cells: string[];
  inputs: HTMLInputElement[];
}

const grid = {
  fileId: '',
  fileName: '',
  header: [] as string[],
  /** Index of `error_description` in the header: the columns before it (after `_line`) are editable. */
  description: -1,
  rows: [] as FixRow[],
  onSent: (_fileId: string) => {},
};

/** One CSV cell, quoted only when it must be. */
const cell = (v: string): string => (/[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);

function setStatus(text: string, tone?: 'error' | 'info' | 'success'): void {
  const el = $('fix-status');
  el.textContent = text;
  el.hidden = !text;
  if (tone) el.dataset['tone'] = tone;
  else delete el.dataset['tone'];
}

export function closeFixGrid(): void {
  $('fix').hidden = true;
  $('fix-body').replaceChildren();
  grid.rows = [];
}

/** Reads the report and the row errors of `file` and shows them as a grid to edit. */
export async function openFixGrid(
  file: { id: string; fileName: string; rows: { invalid: number | null } },
  onSent: (correctionsFileId: string) => void,
): Promise<void> {
  const section = $('fix');
  section.hidden = false;
  setStatus('Reading the rows with problems…', 'info');
  Object.assign(grid, { fileId: file.id, fileName: file.fileName, onSent });
  const [{ blob }, errors] = await Promise.all([
    fetchFileCsv(app.session!.token, file.id, 'errors'),
    client().request(FileRowErrorsDocument, { id: file.id, first: 1000 }),
  ]);
  const report = await previewCsv(blob, FIX_ROWS, blob.size + 1);
  grid.header = report.header;
  grid.description = report.header.lastIndexOf('error_description');
  if (report.header[0] !== '_line' || grid.description < 1)
    throw new Error('The error report has no _line or error_description column; download it and fix it in a spreadsheet instead');
  const byLine = new Map<string, Array<{ column: string | null; message: string }>>();
  for (const e of errors.file.rowErrors.nodes) byLine.set(String(e.line), [...(byLine.get(String(e.line)) ?? []), e]);
  const spec = app.specs.find((s) => s.name === (file as { spec?: { name: string } | null }).spec?.name);
  const columns = report.header.slice(1, grid.description);
  /** The report column an error names: its header cell, or the spec column's other names. */
  const indexOf = (column: string | null): number => {
    if (!column) return -1;
    const c = spec?.columns.find((x) => x.column === column || x.sourceName === column);
    const names = [column, c?.sourceName, c?.column, ...(c?.aliases ?? [])].filter(Boolean).map((n) => n!.trim().toLowerCase());
    return columns.findIndex((x) => names.includes(x.trim().toLowerCase()));
  };
  grid.rows = report.rows.map((r) => ({ line: r.cells[0] ?? '', cells: r.cells, inputs: [] }));
  $('fix-head').replaceChildren(
    h('tr', {}, h('th', { scope: 'col' }, 'Line'), ...columns.map((c) => h('th', { scope: 'col' }, c)), h('th', { scope: 'col' }, 'Problem')),
  );
  $('fix-body').replaceChildren(
    ...grid.rows.map((row) => {
      const rowErrors = byLine.get(row.line.trim()) ?? [];
      const bad = new Map<number, string[]>();
      for (const e of rowErrors) bad.set(indexOf(e.column), [...(bad.get(indexOf(e.column)) ?? []), e.message]);
      row.inputs = columns.map((name, i) => {
        const msgs = bad.get(i);
        const input = h('input', {
          type: 'text',
          value: row.cells[i + 1] ?? '',
          'aria-label': `Line ${row.line}, ${name}${msgs ? ` (problem: ${msgs.join('; ')})` : ''}`,
          'aria-invalid': msgs ? 'true' : undefined,
          title: msgs?.join('; '),
          'data-column': name,
          'data-line': row.line,
        });
        input.value = row.cells[i + 1] ?? '';
        if (msgs) input.classList.add('bad');
        input.addEventListener('input', () => {
          input.classList.toggle('changed', input.value !== (row.cells[i + 1] ?? ''));
          setStatus('');
        });
        return input;
      });
      return h(
        'tr',
        { 'data-line': row.line },
        h('th', { scope: 'row' }, row.line),
        ...row.inputs.map((input) => h('td', {}, input)),
        h('td', { class: 'problem' }, row.cells[grid.description] ?? rowErrors.map((e) => e.message).join('; ')),
      );
    }),
  );
  const total = file.rows.invalid ?? report.rows.length;
  $('fix-more').textContent =
    total > report.rows.length
      ? `The first ${formatCount(report.rows.length)} of ${formatCount(total)} rows with problems are shown; fix the others in the downloaded error report.`
      : '';
  setStatus('');
  // Keyboard users land on the first cell with a problem.
  ($('fix-body').querySelector<HTMLInputElement>('input.bad') ?? $('fix-body').querySelector<HTMLInputElement>('input'))?.focus();
}

/** Sends the changed rows (in the report's format, `_line` kept) with uploadCorrections. */
async function send(): Promise<void> {
  const changed = grid.rows.filter((r) => r.inputs.some((input, i) => input.value !== (r.cells[i + 1] ?? '')));
  if (!changed.length) {
    setStatus('Change at least one cell first: rows sent back unchanged would fail again.', 'error');
    return;
  }
  const lines = [grid.header.map(cell).join(',')];
  for (const r of changed) {
    const out = [...r.cells];
    while (out.length < grid.header.length) out.push('');
    for (const [i, input] of r.inputs.entries()) out[i + 1] = input.value;
    lines.push(out.map(cell).join(','));
  }
  const button = $<HTMLButtonElement>('fix-send');
  button.disabled = true;
  setStatus(`Sending ${formatCount(changed.length)} corrected ${changed.length === 1 ? 'row' : 'rows'}…`, 'info');
  try {
    const base = grid.fileName.replace(/\.[^.]*$/, '') || 'file';
    const { uploadCorrections } = await uploadWithProgress(
      app.session!.token,
      UploadCorrectionsDocument,
      { fileId: grid.fileId },
      new Blob([`${lines.join('\n')}\n`], { type: 'text/csv' }),
      `${base}_corrections.csv`,
      () => {},
    );
    closeFixGrid();
    grid.onSent(uploadCorrections.file.id);
  } catch (err) {
    setStatus(`The corrections were not accepted: ${messageOf(err)}`, 'error');
  } finally {
    button.disabled = false;
  }
}

export function initFixGrid(): void {
  $('fix-send').addEventListener('click', () => void send());
  $('fix-close').addEventListener('click', () => {
    closeFixGrid();
    $('errors-fix').focus();
  });
}
