import {
  ConnectionLostError,
  followJob,
  JobDocument,
  TokenRefusedError,
  type JobEventFieldsFragment,
  type JobFieldsFragment,
  type JobState,
} from '../sdk/client';
import { averageRate, formatCount, formatDuration, formatRate, RateMeter } from '../sdk/progress';
import { CliError, ExitCode, type CliContext } from './command';
import { ProgressLine } from './progress';
import { paint } from './terminal';

const TERMINAL: ReadonlySet<JobState> = new Set(['SUCCEEDED', 'SUCCEEDED_WITH_ERRORS', 'FAILED', 'CANCELLED']);

/** The exit code a finished job maps to (see ExitCode). */
export function exitCodeFor(state: JobState): ExitCode {
  if (state === 'SUCCEEDED') return ExitCode.OK;
  if (state === 'SUCCEEDED_WITH_ERRORS') return ExitCode.SUCCEEDED_WITH_ERRORS;
  return ExitCode.FAILURE;
}

/** Consecutive lost connections tolerated before giving up (each resumes after the last seq seen). */
const MAX_RECONNECTS = 5;

type Counters = Pick<JobEventFieldsFragment['progress'], 'total' | 'processed' | 'succeeded' | 'failed' | 'bytesProcessed' | 'percent'>;

function detail(p: Counters, rate: number | undefined): string {
  const parts = [`${formatCount(p.processed)}${p.total != null ? `/${formatCount(p.total)}` : ''} rows`];
  if (p.succeeded || p.failed) parts.push(`${formatCount(p.succeeded)} ok, ${formatCount(p.failed)} failed`);
  parts.push(formatRate(rate));
  return parts.join(' · ');
}

/** One line for a finished job: state, time, counts and the average rate. */
export function summariseJob(ctx: CliContext, job: JobFieldsFragment): string {
  const colour = job.state === 'SUCCEEDED' ? 'green' : job.state === 'SUCCEEDED_WITH_ERRORS' ? 'yellow' : 'red';
  const took = job.startedAt && job.finishedAt ? ` in ${formatDuration(Date.parse(job.finishedAt) - Date.parse(job.startedAt))}` : '';
  const p = job.progress;
  const rate = p.processed ? averageRate(p.processed, job.startedAt, job.finishedAt) : undefined;
  const counts = `${formatCount(p.processed)} processed, ${formatCount(p.succeeded)} succeeded, ${formatCount(p.failed)} failed`;
  const error = job.error ? `\n  ${job.error.code}: ${job.error.message}` : '';
  return `${paint(ctx.stdout, colour, `Job ${job.id} ${job.state}`)}${took}: ${counts}${rate !== undefined ? ` (${formatRate(rate)})` : ''}${error}`;
}

/**
 * Follows a job until it ends, with a progress bar (terminal) or plain lines, and returns its
 * final state. The job is read once, then `jobUpdated` continues after its last sequence number;
 * a dropped connection resumes from the last event seen, so nothing is missed or counted twice.
 * Shared by every command that starts a job (upload, and the import and bulk commands).
 */
export async function watchJob(ctx: CliContext, jobId: string, opts: { label?: string } = {}): Promise<{ job: JobFieldsFragment; exitCode: ExitCode }> {
  const client = ctx.client();
  let { job } = await client.request(JobDocument, { id: jobId });
  const line = new ProgressLine(ctx.stderr);
  const meter = new RateMeter();
  let lastSeq = job.lastSeq;
  const label = (state: JobState) => `${opts.label ? `${opts.label} ` : ''}${state}`;
  try {
    if (!TERMINAL.has(job.state)) line.update({ label: label(job.state), ratio: ratioOf(job.progress.percent), detail: detail(job.progress, undefined) });
    while (!TERMINAL.has(job.state)) {
      try {
        for await (const e of followJob(client, jobId, {
          afterSeq: Math.max(job.lastSeq, lastSeq),
          maxReconnects: MAX_RECONNECTS,
          onReconnect: (n, seq) => line.log(paint(ctx.stderr, 'yellow', `Connection lost; resuming after event ${seq} (attempt ${n} of ${MAX_RECONNECTS})`)),
        })) {
          lastSeq = Math.max(lastSeq, e.seq);
          meter.push(e.progress.processed, Date.parse(e.at));
          // On a terminal the bar is redrawn in place, so transitions also get a line of their own.
          if (ctx.stderr.isTTY && e.kind === 'STATE' && !e.terminal)
            line.log(`${paint(ctx.stderr, 'dim', e.at)} ${label(e.state)}${e.attempt > 1 ? ` (attempt ${e.attempt})` : ''}`);
          line.update({ label: label(e.state), ratio: ratioOf(e.progress.percent), detail: detail(e.progress, meter.perSecond()) });
        }
      } catch (err) {
        if (err instanceof TokenRefusedError)
          throw new CliError(`The service refused the token while watching job ${jobId} (close code ${err.closeCode}). Run "sluice login --url ${ctx.url}".`);
        if (err instanceof ConnectionLostError)
          throw new CliError(
            `Lost the connection to ${ctx.url} ${err.attempts} times while watching job ${jobId}: ${(err.cause as Error)?.message ?? String(err.cause)}`,
          );
        throw err;
      }
      ({ job } = await client.request(JobDocument, { id: jobId }));
    }
  } finally {
    line.done();
  }
  return { job, exitCode: exitCodeFor(job.state) };
}

function ratioOf(percent: number | null): number | undefined {
  return percent === null ? undefined : percent / 100;
}
