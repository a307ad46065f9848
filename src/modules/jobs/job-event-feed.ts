import type { Notification } from '../../jobs/channels';
import type { JobEvent, JobsStore } from '../../jobs/store';
import { retryTransientRead } from '../../jobs/transient-errors';
import type { Logger } from '../../shared/logger';
import type { NotificationBus } from '../../shared/pubsub';

/** Events one read of job_events returns (a feed's read, or a subscriber's own replay). */
export const EVENT_PAGE_SIZE = 100;
/**
 * Most events a feed holds for its subscribers. Events every subscriber of the job has taken are
 * dropped at once; a subscriber that falls further behind reads the table itself until it is
 * back within the window, so a slow client costs no more memory than before the feed.
 */
export const FEED_MAX_EVENTS = 256;

/** What `jobUpdated` emits: a stored event, or a SNAPSHOT of the current state when there is nothing to replay. */
export interface JobUpdate {
  jobId: string;
  seq: number;
  kind: 'STATE' | 'PROGRESS' | 'SNAPSHOT';
  state: JobEvent['state'];
  attempt: number;
  at: Date;
  counters: JobEvent['payload'];
}

export function toUpdate(e: JobEvent): JobUpdate {
  return { jobId: e.jobId, seq: e.seq, kind: e.kind, state: e.state, attempt: e.attempt, at: e.createdAt, counters: e.payload };
}

/** Told of each delivery round: its seconds (wake to the event loop's next check phase) and the subscriptions woken. */
export type FanoutObserver = (seconds: number, subscriptions: number) => void;

/** One subscription's place in a job's events. */
export interface FeedReader {
  /** Last seq the subscription has taken. */
  readonly sent: number;
  /** New events may be available. */
  wake(): void;
}

/**
 * The stored events of one job, read once per notification for every `jobUpdated` subscription
 * of that job in this process. Before it, each subscription read job_events itself on every
 * notification: one job watched by N clients cost N queries per event, and 5,000 watchers of a
 * busy job kept the pool and the event loop saturated. Notifications stay hints, the table stays
 * the truth: the feed holds the events with seq in (floor, readSeq], all of them, in order.
 */
class JobEventFeed {
  readonly readers = new Set<FeedReader>();
  private events: JobUpdate[] = [];
  /** Every event with floor < seq <= readSeq is in `events`. */
  private floor: number;
  private readSeq: number;
  private reading = false;
  private again = false;
  /** The last read failed: subscribers read the table themselves (and see its error) until one succeeds. */
  private broken = false;
  private readonly off: () => void;

  constructor(
    private readonly jobId: string,
    lastSeq: number,
    private readonly store: JobsStore,
    bus: NotificationBus<Notification>,
    private readonly log: Logger,
    private readonly onRound?: FanoutObserver,
  ) {
    this.floor = lastSeq;
    this.readSeq = lastSeq;
    // Listening before the first read: anything committed after that read is notified.
    this.off = bus.on((n) => {
      if (n === null || (n.id === jobId && n.seq > this.readSeq)) void this.pull();
    });
    void this.pull();
  }

  /**
   * Held events after `sent`, at most `limit`; [] when there is none yet (a wake follows when
   * there is); null when `sent` is behind the window or the feed cannot read: the caller reads
   * the table itself.
   */
  after(sent: number, limit: number): JobUpdate[] | null {
    if (this.broken || sent < this.floor) return null;
    // Binary search: the first held event with seq > sent.
    let lo = 0;
    let hi = this.events.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.events[mid]!.seq <= sent) lo = mid + 1;
      else hi = mid;
    }
    return this.events.slice(lo, lo + limit);
  }

  dispose(): void {
    this.off();
    this.events = [];
  }

  private async pull(): Promise<void> {
    if (this.reading) {
      this.again = true;
      return;
    }
    this.reading = true;
    try {
      do {
        this.again = false;
        let rows: JobEvent[];
        try {
          rows = await retryTransientRead(() => this.store.events(this.jobId, this.readSeq, EVENT_PAGE_SIZE));
          this.broken = false;
        } catch (err) {
          this.log.warn({ err, jobId: this.jobId }, 'could not read job events for subscribers; they read them one by one');
          this.broken = true;
          break;
        }
        for (const row of rows) {
          this.events.push(toUpdate(row));
          this.readSeq = row.seq;
        }
        if (rows.length === EVENT_PAGE_SIZE) this.again = true;
        this.trim();
        if (rows.length || this.broken) this.wakeReaders();
      } while (this.again && this.readers.size > 0);
    } finally {
      this.reading = false;
    }
    if (this.broken) this.wakeReaders();
  }

  /**
   * Wakes every reader. Readers write what they take to their sockets at once, so this is the
   * whole fan-out of the new events; in one go (not sliced between turns of the event loop): with
   * slices, the sockets that close after the terminal event (clients that had only this
   * subscription) are handled between the slices and hold back the last subscribers' events.
   */
  private wakeReaders(): void {
    const started = performance.now();
    const woken = this.readers.size;
    for (const r of this.readers) r.wake();
    // The round ends at the event loop's next check phase: readers whose execution was a promise
    // write in the microtasks that follow this loop, all of them before setImmediate runs.
    const observe = this.onRound;
    if (observe && woken > 0) setImmediate(() => observe((performance.now() - started) / 1000, woken));
  }

  /** Drops what every reader has taken, then the oldest beyond FEED_MAX_EVENTS. */
  private trim(): void {
    let least = Number.POSITIVE_INFINITY;
    for (const r of this.readers) least = Math.min(least, r.sent);
    let drop = 0;
    while (drop < this.events.length && (this.events[drop]!.seq <= least || this.events.length - drop > FEED_MAX_EVENTS)) drop++;
    if (drop === 0) return;
    this.floor = this.events[drop - 1]!.seq;
    this.events = this.events.slice(drop);
  }
}

/** The feeds of the jobs watched in this process: one per job, gone with its last subscriber. */
export class JobEventFeeds {
  private readonly feeds = new Map<string, JobEventFeed>();

  constructor(
    private readonly store: JobsStore,
    private readonly bus: NotificationBus<Notification>,
    private readonly log: Logger,
    private readonly onRound?: FanoutObserver,
  ) {}

  /** Joins `reader` to the feed of `jobId` (started at `lastSeq` when it is the first); returns the feed and a leave(). */
  join(jobId: string, lastSeq: number, reader: FeedReader): { after: (sent: number, limit: number) => JobUpdate[] | null; leave: () => void } {
    let feed = this.feeds.get(jobId);
    if (!feed) {
      feed = new JobEventFeed(jobId, lastSeq, this.store, this.bus, this.log, this.onRound);
      this.feeds.set(jobId, feed);
    }
    const f = feed;
    f.readers.add(reader);
    return {
      after: (sent, limit) => f.after(sent, limit),
      leave: () => {
        if (!f.readers.delete(reader) || f.readers.size > 0) return;
        f.dispose();
        if (this.feeds.get(jobId) === f) this.feeds.delete(jobId);
      },
    };
  }

  /** Jobs with a feed in this process. */
  get size(): number {
    return this.feeds.size;
  }
}
