import { FileDocument, FileRowErrorsDocument, type JobFieldsFragment } from '../sdk/client';
import { formatCount } from '../sdk/progress';
import type { CliContext, ExitCode } from './command';
import { formatErrorSummary } from './error-summary';
import { summariseJob } from './watch-job';

/** Row errors printed after a file with invalid rows; the full list is the error report. */
export const SHOWN_ROW_ERRORS = 10;

/**
 * What `upload` and `import-url` print once a file's job has ended: the job line, the file's row
 * counts and output keys (and its children's, for a ZIP), and the first row errors with the error
 * report's URL. With --json, one document { file, job, rowErrors }. Returns the job's exit code.
 */
export async function reportFileOutcome(ctx: CliContext, fileId: string, watched: { job: JobFieldsFragment; exitCode: ExitCode }): Promise<ExitCode> {
  const client = ctx.client();
  const { file: done } = await client.request(FileDocument, { id: fileId });
  const errors =
    (done.rows.invalid ?? 0) > 0 ? (await client.request(FileRowErrorsDocument, { id: fileId, first: SHOWN_ROW_ERRORS })).file.rowErrors : undefined;
  if (ctx.json) {
    ctx.stdout.write(`${JSON.stringify({ file: done, job: watched.job, rowErrors: errors?.nodes ?? [] })}\n`);
    return watched.exitCode;
  }
  ctx.stdout.write(`${summariseJob(ctx, watched.job)}\n`);
  const r = done.rows;
  if (r.total !== null) ctx.stdout.write(`File ${done.id}: ${formatCount(r.total)} rows, ${formatCount(r.valid)} valid, ${formatCount(r.invalid)} invalid\n`);
  if (done.outputs.valid) ctx.stdout.write(`  valid rows:   ${done.outputs.valid}\n`);
  if (done.outputs.errors) ctx.stdout.write(`  error report: ${done.outputs.errors} (GET ${ctx.url}/files/${done.id}/errors.csv)\n`);
  if (errors) {
    for (const e of errors.nodes) ctx.stdout.write(`  line ${e.line}${e.column ? ` ${e.column}` : ''}: ${e.code}: ${e.message}\n`);
    if (errors.totalCount > errors.nodes.length) ctx.stdout.write(`  … and ${formatCount(errors.totalCount - errors.nodes.length)} more\n`);
  }
  if (done.errorSummary && done.errorSummary.total > 0) for (const line of formatErrorSummary(done.errorSummary)) ctx.stdout.write(`${line}\n`);
  for (const c of done.children) {
    const rows = c.rows.total === null ? '' : `: ${formatCount(c.rows.total)} rows, ${formatCount(c.rows.valid)} valid, ${formatCount(c.rows.invalid)} invalid`;
    ctx.stdout.write(`  ${c.fileName} (${c.spec?.name ?? 'no spec'}) ${c.state}${rows}${c.error ? ` — ${c.error.code}: ${c.error.message}` : ''}\n`);
  }
  return watched.exitCode;
}
