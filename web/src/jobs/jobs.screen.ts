import {
  BulkBriefDocument,
  FileBriefDocument,
  FilesWithJobsDocument,
  JobsDocument,
  type FileBriefFieldsFragment,
  type JobState,
} from '../../../src/sdk/client';
import { averageRate, formatCount, formatDuration } from '../../../src/sdk/progress';
import { app, client, fail, navigate, onJobChange, type Job } from './app';
import { $, h } from './dom';
import { viewOfJob } from './job.screen';
import { BULK_JOB, CE_JOB, JOB_STATES, objectLabel, stateLabel, TYPE_CHOICES, typeLabel } from './labels';

/**
 * Every job of the viewer (all for ADMIN), newest first, with its file name, counts and duration;
 * filtered by type, state and spec and paged by cursor. The `jobs` subscription keeps rows live
 * and puts new jobs on top of the first page. Jobs carry no spec, so the spec filter lists that
 * spec's files (the `files` query) with their jobs instead.
 */

const PAGE = 20;
interface Row {
  job: Job;
  name?: string;
  detail?: string;
  signed?: boolean;
  spec?: string;
}
const names = new Map<string, { name: string; detail: string; signed: boolean; spec?: string }>();
let rows: Row[] = [];
let cursors: Array<string | null> = [null];
let page = 0;
let total = 0;
let gen = 0;

function filters() {
  const type = $<HTMLSelectElement>('jobs-type').value;
  const state = $<HTMLSelectElement>('jobs-state').value;
  const spec = $<HTMLSelectElement>('jobs-spec').value;
  const choice = TYPE_CHOICES.find((c) => c.value === type);
  return { type, state, spec, types: choice?.types, states: state ? [state as JobState] : undefined, signedOnly: type === 'signed' };
}

function describeFile(f: FileBriefFieldsFragment) {
  return {
    name: f.fileName,
    detail: `${f.spec ? `${f.spec.name} v${f.spec.version}` : f.kind === 'ZIP' ? 'national ZIP' : ''}${f.program ? ` · ${f.program}` : ''}`,
    signed: f.declaredSize != null,
    spec: f.spec?.name,
  };
}

/** File name and detail for a job, read once per job and cached. */
async function describe(job: Job): Promise<void> {
  if (names.has(job.id)) return;
  const input = (job.input ?? {}) as { fileId?: string; processId?: string; frameworks?: unknown[] };
  try {
    if (input.fileId && job.type !== BULK_JOB) {
      const { file } = await client().request(FileBriefDocument, { id: input.fileId });
      names.set(job.id, describeFile(file));
    } else if (input.processId) {
      const { uploadStatus } = await client().request(BulkBriefDocument, { processId: input.processId });
      names.set(job.id, { name: uploadStatus.fileName, detail: objectLabel(uploadStatus.objectType), signed: false });
    } else if (job.type === CE_JOB) {
      const n = input.frameworks?.length ?? 0;
      names.set(job.id, { name: `${n} framework${n === 1 ? '' : 's'}`, detail: 'Credential Engine', signed: false });
    }
  } catch {
    names.set(job.id, { name: '(not readable)', detail: '', signed: false });
  }
}

function duration(job: Job): string {
  if (!job.startedAt) return '–';
  const end = job.finishedAt ? Date.parse(job.finishedAt) : Date.now();
  return formatDuration(end - Date.parse(job.startedAt));
}

function countsText(job: Job): string {
  const p = job.progress;
  const unit = job.type === CE_JOB ? 'items' : 'rows';
  const of = p.total != null && p.total !== p.processed ? ` of ${formatCount(p.total)}` : '';
  const rate = job.finishedAt ? averageRate(p.processed, job.startedAt, job.finishedAt) : undefined;
  return `${formatCount(p.processed)}${of} ${unit}${p.failed ? ` · ${formatCount(p.failed)} with problems` : ''}${rate && p.processed > 1000 ? ` · ${formatCount(rate)}/s` : ''}`;
}

function render(): void {
  const body = $('jobs-body');
  const f = filters();
  const shown = rows.filter((r) => (!f.signedOnly || names.get(r.job.id)?.signed) && (!f.states || f.states.includes(r.job.state)));
  body.replaceChildren(
    ...shown.map((r) => {
      const d = names.get(r.job.id);
      const open = (ev: Event) => {
        ev.preventDefault();
        const fileId = (r.job.input as { fileId?: string }).fileId;
        navigate({ view: viewOfJob(r.job.type), ...(fileId && r.job.type !== BULK_JOB ? { file: fileId } : { job: r.job.id }) });
      };
      return h(
        'tr',
        { 'data-job': r.job.id, 'data-testid': 'job-row' },
        h('td', {}, h('a', { href: `?job=${r.job.id}`, onclick: open }, d?.name ?? '…'), h('br'), h('small', {}, d?.detail ?? '')),
        h('td', {}, typeLabel(r.job.type, d?.signed)),
        h(
          'td',
          {},
          h('span', { class: 'state', 'data-state': r.job.state }, stateLabel(r.job.state)),
          r.job.progress.percent != null && r.job.state === 'RUNNING' ? ` ${r.job.progress.percent.toFixed(0)} %` : '',
        ),
        h('td', { class: 'num' }, countsText(r.job)),
        h('td', { class: 'num' }, duration(r.job)),
        h('td', {}, h('time', { datetime: r.job.createdAt }, new Date(r.job.createdAt).toLocaleString())),
      );
    }),
  );
  $('jobs-empty').hidden = shown.length > 0;
  const pages = Math.max(1, Math.ceil(total / PAGE));
  $('jobs-page').textContent = `page ${page + 1} of ${pages} · ${formatCount(total)} job${total === 1 ? '' : 's'}`;
  $<HTMLButtonElement>('jobs-prev').disabled = page === 0;
  $<HTMLButtonElement>('jobs-next').disabled = cursors.length <= page + 1;
}

async function load(to: number): Promise<void> {
  const g = ++gen;
  const f = filters();
  let next: string | null | undefined;
  if (f.spec) {
    const { files } = await client().request(FilesWithJobsDocument, { spec: f.spec, first: PAGE, after: cursors[to] ?? null });
    if (g !== gen) return;
    for (const file of files.nodes) if (file.job) names.set(file.job.id, describeFile(file));
    rows = files.nodes.filter((x) => x.job).map((x) => ({ job: x.job! }));
    total = files.totalCount;
    next = files.pageInfo.hasNextPage ? files.pageInfo.endCursor : undefined;
  } else {
    const { jobs } = await client().request(JobsDocument, { filter: { types: f.types, states: f.states }, first: PAGE, after: cursors[to] ?? null });
    if (g !== gen) return;
    rows = jobs.nodes.map((job) => ({ job }));
    total = jobs.totalCount;
    next = jobs.pageInfo.hasNextPage ? jobs.pageInfo.endCursor : undefined;
  }
  page = to;
  cursors.length = to + 1;
  if (next) cursors.push(next);
  render();
  await Promise.all(rows.map((r) => describe(r.job)));
  if (g === gen) render();
}

function matches(job: Job): boolean {
  const f = filters();
  if (f.types && !f.types.includes(job.type)) return false;
  if (f.spec) return names.get(job.id)?.spec === f.spec;
  return true;
}

export function initJobsScreen(): void {
  $('jobs-type').replaceChildren(h('option', { value: '' }, 'All types'), ...TYPE_CHOICES.map((c) => h('option', { value: c.value }, c.label)));
  $('jobs-state').replaceChildren(h('option', { value: '' }, 'All states'), ...JOB_STATES.map((s) => h('option', { value: s }, stateLabel(s))));
  for (const id of ['jobs-type', 'jobs-state', 'jobs-spec']) {
    $(id).addEventListener('change', () => {
      cursors = [null];
      void load(0).catch(fail);
    });
  }
  $('jobs-prev').addEventListener('click', () => void load(page - 1).catch(fail));
  $('jobs-next').addEventListener('click', () => void load(page + 1).catch(fail));
  $('jobs-refresh').addEventListener('click', () => void load(page).catch(fail));
  onJobChange((job) => {
    if ($('jobs').hidden) return;
    const i = rows.findIndex((r) => r.job.id === job.id);
    if (i >= 0) {
      rows[i] = { job };
      render();
    } else if (page === 0) {
      void describe(job).then(() => {
        if (!matches(job) || rows.some((r) => r.job.id === job.id)) return;
        rows.unshift({ job });
        total++;
        if (rows.length > PAGE) rows.pop();
        render();
      });
    }
  });
  setInterval(() => !$('jobs').hidden && rows.some((r) => r.job.state === 'RUNNING') && render(), 1000);
}

export async function showJobsScreen(): Promise<void> {
  const spec = $<HTMLSelectElement>('jobs-spec');
  const chosen = spec.value;
  spec.replaceChildren(h('option', { value: '' }, 'All specs'), ...app.specs.map((s) => h('option', { value: s.name }, s.name)));
  spec.value = chosen;
  cursors = [null];
  await load(0);
}

/** The newest jobs of every kind, for the "Recent activity" list under the import form. */
export async function recentJobs(first: number): Promise<Array<{ job: Job; name: string; detail: string; signed: boolean }>> {
  const { jobs } = await client().request(JobsDocument, { first });
  await Promise.all(jobs.nodes.map(describe));
  return jobs.nodes.map((job) => ({ job, ...(names.get(job.id) ?? { name: typeLabel(job.type), detail: '', signed: false }) }));
}
export async function describeJob(job: Job): Promise<{ name: string; detail: string; signed: boolean }> {
  await describe(job);
  return names.get(job.id) ?? { name: typeLabel(job.type), detail: '', signed: false };
}
