import { fail, navigate, onJobChange, type Job } from './app';
import { $, h } from './dom';
import { viewOfJob } from './job.screen';
import { describeJob, recentJobs } from './jobs.screen';
import { BULK_JOB, stateLabel, typeLabel } from './labels';

/** "Recent activity": the newest jobs of every type, kept live by the `jobs` subscription. */

const SHOWN = 8;
let items: Array<{ job: Job; name: string; detail: string; signed: boolean }> = [];

function render(): void {
  $('recent-list').replaceChildren(
    ...items.map((r) => {
      const fileId = (r.job.input as { fileId?: string }).fileId;
      const params = { view: viewOfJob(r.job.type), ...(fileId && r.job.type !== BULK_JOB ? { file: fileId } : { job: r.job.id }) };
      return h(
        'li',
        {},
        h('a', { href: `?${new URLSearchParams(params)}`, onclick: (ev: Event) => (ev.preventDefault(), navigate(params)) }, r.name),
        ` · ${typeLabel(r.job.type, r.signed)} · `,
        h('span', { class: 'state', 'data-state': r.job.state }, stateLabel(r.job.state)),
        ` · ${new Date(r.job.createdAt).toLocaleString()}`,
      );
    }),
  );
  $('recent-empty').hidden = items.length > 0;
}

export async function loadRecent(): Promise<void> {
  items = await recentJobs(SHOWN);
  render();
}

export function initRecent(): void {
  onJobChange((job) => {
    const i = items.findIndex((r) => r.job.id === job.id);
    if (i >= 0) {
      items[i] = { ...items[i]!, job };
      render();
      return;
    }
    void describeJob(job)
      .then((d) => {
        if (items.some((r) => r.job.id === job.id)) return;
        items = [{ job, ...d }, ...items].slice(0, SHOWN);
        render();
      })
      .catch(fail);
  });
}
