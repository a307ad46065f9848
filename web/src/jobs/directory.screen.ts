import { BulkUploadDocument, type BulkUploadKind, type LocationType } from '../../../src/sdk/client';
import { formatBytes, formatDuration, RateMeter } from '../../../src/sdk/progress';
import { app, fail, messageOf } from './app';
import { $, flash } from './dom';
import { openJob } from './job.screen';
import { uploadWithProgress } from './upload';

/**
 * Directory uploads: a Sunbird-style CSV of locations, organisations or users (`bulkUpload`),
 * then the job card with per-row results from `uploadStatus`.
 */

export function initDirectoryScreen(): void {
  const form = $<HTMLFormElement>('directory-form');
  const kind = form.querySelector<HTMLSelectElement>('[name=kind]')!;
  const locType = form.querySelector<HTMLElement>('.location-type')!;
  const sync = () => (locType.hidden = kind.value !== 'LOCATION');
  kind.addEventListener('change', sync);
  sync();
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const data = new FormData(form);
    const file = data.get('file');
    if (!(file instanceof File) || !file.name) return;
    const button = form.querySelector<HTMLButtonElement>('button[type=submit]')!;
    const line = $('directory-progress');
    const meter = new RateMeter();
    button.disabled = true;
    line.hidden = false;
    flash(undefined);
    try {
      const k = String(data.get('kind')) as BulkUploadKind;
      const lt = String(data.get('locationType') ?? '');
      const res = await uploadWithProgress(
        app.session!.token,
        BulkUploadDocument,
        { kind: k, locationType: k === 'LOCATION' && lt ? (lt as LocationType) : null },
        file,
        file.name,
        (sent, total) => {
          meter.push(sent);
          const rate = meter.perSecond();
          line.textContent = `Uploading ${file.name}: ${formatBytes(sent)} of ${formatBytes(total)}${rate ? ` · about ${formatDuration(((total - sent) / rate) * 1000)} left` : ''}`;
        },
      );
      line.textContent = `${file.name} is stored; its rows are applied below.`;
      form.reset();
      sync();
      // The form is free again once the file is stored; the line goes when the job card has the outcome.
      void openJob(res.bulkUpload.status.job!.id)
        .then(() => {
          if (line.textContent?.startsWith(file.name)) line.hidden = true;
        })
        .catch(fail);
    } catch (err) {
      line.textContent = `${file.name} was not uploaded: ${messageOf(err)}`;
      fail(err);
    } finally {
      button.disabled = false;
    }
  });
}
