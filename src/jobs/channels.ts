import type { JobState } from './state';

/** Channel carrying `{ id, seq, state, by }` for every job event. The tables are the truth. */
export const JOB_EVENTS_CHANNEL = 'sluice_job_events';

/** Channel carrying `{ id }` when a RUNNING job's cancellation is requested: its worker stops it at once. */
export const JOB_CANCEL_CHANNEL = 'sluice_job_cancel';

/** Payload of a JOB_EVENTS_CHANNEL notification. */
export interface Notification {
  id: string;
  seq: number;
  state: JobState;
  by: string;
}

/** Payload of a JOB_CANCEL_CHANNEL notification. */
export interface CancelNotification {
  id: string;
}
