import { isTerminal } from '../../jobs/state';
import type { EventPayload, Job } from '../../jobs/store';
import type { JobUpdate } from './jobs.service';
import { JobEventKind, type JobEventType, type JobErrorInfo, type JobProgress, type JobType } from './jobs.type';

function progressOf(c: Omit<EventPayload, 'error'>): JobProgress {
  const percent =
    c.total != null && c.total > 0
      ? Math.min(100, (c.processed / c.total) * 100)
      : c.bytesTotal != null && c.bytesTotal > 0
        ? Math.min(100, (c.bytesProcessed / c.bytesTotal) * 100)
        : null;
  return { ...c, percent: percent === null ? null : Math.round(percent * 100) / 100 };
}

export function toJobType(job: Job): JobType {
  return {
    ...job,
    progress: progressOf(job),
    error: job.error as JobErrorInfo | null,
    cancelRequested: Boolean(job.cancelRequestedAt) && !isTerminal(job.state),
  };
}

export function toJobEventType(u: JobUpdate): JobEventType {
  const { error, ...counters } = u.counters;
  return {
    jobId: u.jobId,
    seq: u.seq,
    kind: u.kind as JobEventKind,
    state: u.state,
    attempt: u.attempt,
    at: u.at,
    progress: progressOf(counters),
    error: error as JobErrorInfo | null,
    terminal: u.kind !== JobEventKind.PROGRESS && isTerminal(u.state),
  };
}
