import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Sql } from '../db/client';
import type { Logger } from './logger';

/** What the access log knows of a finished HTTP request (src/server/access-log.ts). */
export interface HttpObservation {
  method: string;
  route: string;
  operation?: string;
  status: number;
  durationMs: number;
}

/** A job's terminal row, as the worker wrote it. */
export interface JobObservation {
  type: string;
  state: string;
  startedAt: Date | null;
  finishedAt: Date | null;
  succeeded: number;
  failed: number;
}

/** How the bytes of a file reached Sluice. */
export type UploadVia = 'multipart' | 'signed_url' | 'bulk';

/**
 * Operation names come from clients. Why a cap: each distinct label value is a time series held in
 * memory forever, so a client inventing names must not grow it without bound.
 */
const MAX_OPERATION_LABELS = 200;
const OTHER = '(other)';
const NONE = '(none)';

/**
 * Prometheus metrics of one Sluice process (prom-client, a registry of its own so several apps in
 * one process, as in tests, do not mix). Counters and histograms are observed as things happen;
 * the job and connection gauges are read from PostgreSQL when scraped (refresh()).
 */
export class Metrics {
  readonly registry = new Registry();
  private readonly operations = new Set<string>();
  private openSubscriptions: () => number = () => 0;

  private readonly httpDuration = new Histogram({
    name: 'sluice_http_request_duration_seconds',
    help: 'HTTP requests by method, route, GraphQL operation and status, with their durations (_count is the number of requests).',
    labelNames: ['method', 'route', 'operation', 'status'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });
  private readonly jobDuration = new Histogram({
    name: 'sluice_job_duration_seconds',
    help: 'Jobs that ended in this process, by type and terminal state: time from start (last attempt) to end. _count is jobs ended.',
    labelNames: ['type', 'state'] as const,
    buckets: [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600],
    registers: [this.registry],
  });
  private readonly rowsIngested = new Counter({
    name: 'sluice_rows_ingested_total',
    help: 'Valid rows (items, for skills imports) written by jobs that succeeded in this process, by job type.',
    labelNames: ['type'] as const,
    registers: [this.registry],
  });
  private readonly rowsInvalid = new Counter({
    name: 'sluice_rows_invalid_total',
    help: 'Rows (items) refused with row errors by jobs that succeeded in this process, by job type.',
    labelNames: ['type'] as const,
    registers: [this.registry],
  });
  private readonly uploadBytes = new Counter({
    name: 'sluice_upload_bytes_total',
    help: 'Bytes of files accepted by this process: multipart uploads, signed-URL uploads (counted at import) and directory bulk uploads.',
    labelNames: ['via'] as const,
    registers: [this.registry],
  });
  private readonly jobs = new Gauge({
    name: 'sluice_jobs',
    help: 'Jobs not yet ended (QUEUED, RUNNING) by type and state, in the whole database (every instance reports the same value).',
    labelNames: ['type', 'state'] as const,
    registers: [this.registry],
  });
  private readonly queueDepth = new Gauge({
    name: 'sluice_job_queue_depth',
    help: 'QUEUED jobs waiting for a worker, in the whole database.',
    registers: [this.registry],
  });
  private readonly dbConnections = new Gauge({
    name: 'sluice_db_pool_connections',
    help: "This process's open PostgreSQL connections (pg_stat_activity) by state: active, idle, idle in transaction...",
    labelNames: ['state'] as const,
    registers: [this.registry],
  });
  private readonly dbPoolMax = new Gauge({
    name: 'sluice_db_pool_max_connections',
    help: 'Most connections this process opens for its queries (DATABASE_POOL_MAX).',
    registers: [this.registry],
  });
  private readonly fanoutRounds = new Histogram({
    name: 'sluice_ws_fanout_round_seconds',
    help: "Rounds of job-event delivery in this process: from a job feed's wake of its subscriptions with new events until the event loop next reaches its check phase, when every subscription that took them has written them to its socket. _count is rounds.",
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  private readonly fanoutReaders = new Counter({
    name: 'sluice_ws_fanout_subscriptions_woken_total',
    help: 'Subscriptions woken by the rounds of sluice_ws_fanout_round_seconds (a subscription per round).',
    registers: [this.registry],
  });
  private readonly subscriptions: Gauge = new Gauge({
    name: 'sluice_ws_subscriptions_open',
    help: 'GraphQL subscriptions streaming over graphql-ws in this process.',
    registers: [this.registry],
    collect: (): void => this.subscriptions.set(this.openSubscriptions()),
  });

  constructor(private readonly opts: { sql: Sql; poolMax: number; log: Logger; enabled: boolean }) {
    this.dbPoolMax.set(opts.poolMax);
    // Process metrics (CPU, memory, GC, handles) and nodejs_eventloop_lag_* come from prom-client.
    if (opts.enabled) collectDefaultMetrics({ register: this.registry });
  }

  get enabled(): boolean {
    return this.opts.enabled;
  }

  /** Where graphql-ws's open subscriptions are counted (src/server/ws.ts). */
  countSubscriptionsWith(count: () => number): void {
    this.openSubscriptions = count;
  }

  private operationLabel(name: string | undefined): string {
    if (!name) return NONE;
    if (this.operations.has(name)) return name;
    if (this.operations.size >= MAX_OPERATION_LABELS) return OTHER;
    this.operations.add(name);
    return name;
  }

  observeRequest(r: HttpObservation): void {
    this.httpDuration.observe({ method: r.method, route: r.route, operation: this.operationLabel(r.operation), status: String(r.status) }, r.durationMs / 1000);
  }

  /** One round of job-event delivery to `subscriptions` subscriptions (see JobEventFeed). */
  observeFanoutRound(seconds: number, subscriptions: number): void {
    this.fanoutRounds.observe(seconds);
    this.fanoutReaders.inc(subscriptions);
  }

  observeJobEnd(job: JobObservation): void {
    if (job.startedAt && job.finishedAt) {
      this.jobDuration.observe({ type: job.type, state: job.state }, Math.max(0, job.finishedAt.getTime() - job.startedAt.getTime()) / 1000);
    }
    if (job.state === 'SUCCEEDED' || job.state === 'SUCCEEDED_WITH_ERRORS') {
      this.rowsIngested.inc({ type: job.type }, job.succeeded);
      this.rowsInvalid.inc({ type: job.type }, job.failed);
    }
  }

  observeUpload(via: UploadVia, bytes: number): void {
    this.uploadBytes.inc({ via }, bytes);
  }

  /** Reads the gauges kept in PostgreSQL; a failure leaves them unset and is logged, the scrape goes on. */
  async refresh(): Promise<void> {
    const { sql } = this.opts;
    try {
      // Why literal states: they must match the partial index jobs_active_state_type_idx, which a
      // parameter (in a generic prepared plan) cannot be proven to.
      const [jobs, connections] = await Promise.all([
        sql<{ type: string; state: string; n: number }[]>`
          select type, state::text as state, count(*)::int as n from jobs
          where state in ('QUEUED', 'RUNNING') group by type, state`,
        sql<{ state: string | null; n: number }[]>`
          select state, count(*)::int as n from pg_stat_activity
          where application_name = current_setting('application_name') group by state`,
      ]);
      this.jobs.reset();
      let queued = 0;
      for (const j of jobs) {
        this.jobs.set({ type: j.type, state: j.state }, j.n);
        if (j.state === 'QUEUED') queued += j.n;
      }
      this.queueDepth.set(queued);
      this.dbConnections.reset();
      for (const c of connections) this.dbConnections.set({ state: c.state ?? 'unknown' }, c.n);
    } catch (err) {
      this.jobs.reset();
      this.dbConnections.reset();
      this.opts.log.warn({ err }, 'metrics: reading job and connection counts failed');
    }
  }

  /** The Prometheus text exposition. */
  async text(): Promise<{ contentType: string; body: string }> {
    await this.refresh();
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
