import type { AddressInfo } from 'node:net';
import { connect, dbTimeouts } from './db/client';
import { closePipelineThreads, keepPipelineThreadsWarm } from './ingest/pipeline-thread';
import { startEmbeddedPostgres } from './db/embedded';
import { startMetricsServer } from './server/metrics';
import { applyMigrations, withMigrationLock } from './db/migrate';
import type { Env } from './env';
import { createSchema } from './schema';
import { createHttpServer } from './server/http';
import { createLimits } from './server/limits';
import { attachWebSocketServer } from './server/ws';
import { createServices, type Services } from './services';
import { resolveJwtSecret } from './shared/jwt-secret';
import type { Logger } from './shared/logger';
import path from 'node:path';
import { jobHandlers } from './job-handlers';
import { every } from './jobs/periodic-task';
import { JobQueue } from './jobs/queue';
import { JobRunner } from './jobs/runner';
import { CLIENT_REVOKED_CHANNEL, type ClientRevoked } from './modules/clients/clients.store';
import { JobState } from './jobs/state';
import { JOB_CANCEL_CHANNEL, JOB_EVENTS_CHANNEL, type CancelNotification, type Notification } from './jobs/channels';
import { NotificationBus } from './shared/pubsub';
import { createStorageFromEnv } from './storage/select';

export interface App {
  services: Services;
  /** Base URL of the HTTP server, e.g. http://127.0.0.1:4000; undefined for SLUICE_ROLE=worker. */
  url?: string;
  /** The embedded PostgreSQL, when DATABASE_URL is unset: its URL (for psql) and, if the wanted port was taken, that port. */
  embeddedDatabase?: { url: string; busyPort?: number };
  /** Where this process serves Prometheus metrics; undefined when it does not (SLUICE_METRICS=off, or a worker without SLUICE_METRICS_PORT). */
  metricsUrl?: string;
  /** Stops everything in reverse start order. Idempotent. */
  dispose(): Promise<void>;
}

/**
 * Starts Sluice: database (embedded when DATABASE_URL is unset) -> migrations -> services ->
 * HTTP + WebSocket (role api/all) -> workers (role worker/all). If a step fails, what already
 * started is stopped before the error is rethrown.
 */
export async function startApp(env: Env, log: Logger, opts: { print?: (msg: string) => void } = {}): Promise<App> {
  const disposers: Array<{ name: string; fn: () => Promise<void> }> = [];
  let disposing: Promise<void> | undefined;
  const dispose = () =>
    (disposing ??= (async () => {
      for (const { name, fn } of disposers.reverse()) {
        try {
          await fn();
          log.debug({ step: name }, 'stopped');
        } catch (err) {
          log.error({ err, step: name }, 'error while stopping');
        }
      }
    })());

  try {
    let databaseUrl = env.DATABASE_URL;
    let embeddedDatabase: App['embeddedDatabase'];
    if (!databaseUrl) {
      const embedded = await startEmbeddedPostgres({
        dir: path.join(env.dataDir, 'pg'),
        port: env.SLUICE_EMBEDDED_PG_PORT,
        fallback: env.embeddedPgPortFallback,
        log,
      });
      disposers.push({ name: 'embedded-postgres', fn: () => embedded.dispose() });
      databaseUrl = embedded.url;
      embeddedDatabase = { url: embedded.url, ...(embedded.busyPort ? { busyPort: embedded.busyPort } : {}) };
    }
    const timeouts = dbTimeouts(env);
    const database = connect(databaseUrl, { max: env.DATABASE_POOL_MAX, appName: `sluice-${env.SLUICE_ROLE}`, timeouts });
    disposers.push({ name: 'database', fn: () => database.dispose() });
    // pg-boss's schema and queue are created under the same lock as Sluice's migrations: several
    // processes starting at once on a fresh database would otherwise deadlock in pg-boss.
    const queue = await withMigrationLock(database, async () => {
      await applyMigrations(database);
      return JobQueue.start({ databaseUrl, supervise: env.runsWorkers, pollIntervalMs: env.SLUICE_JOB_POLL_INTERVAL_MS, log, timeouts });
    });
    disposers.push({ name: 'queue', fn: () => queue.stop(env.SLUICE_SHUTDOWN_TIMEOUT_MS) });
    const jobEvents = await NotificationBus.start<Notification>(database.sql, JOB_EVENTS_CHANNEL, log);
    disposers.push({ name: 'job-events', fn: () => jobEvents.dispose() });

    const storage = createStorageFromEnv(env);
    disposers.push({ name: 'storage', fn: () => storage.dispose() });

    const secret = await resolveJwtSecret(env.SLUICE_JWT_SECRET, env.dataDir);
    const services = createServices(
      env,
      database,
      log,
      { secret, issuer: env.SLUICE_JWT_ISSUER, audience: env.SLUICE_JWT_AUDIENCE, ttlSeconds: env.SLUICE_TOKEN_TTL_SECONDS },
      { queue, jobEvents, storage },
    );
    // A pipeline thread ready before the first upload or job needs one (see keepPipelineThreadsWarm),
    // ended after the loads during upload that use them.
    if (env.SLUICE_PIPELINE_THREADS) {
      keepPipelineThreadsWarm(1, services.loadsDuringUpload.threadModules);
      disposers.push({ name: 'pipeline-threads', fn: () => closePipelineThreads() });
    }
    // Disposed after the HTTP server and the workers (disposers run in reverse): an upload's load ends with it.
    disposers.push({ name: 'loads-during-upload', fn: () => services.loadsDuringUpload.stop() });
    await services.webhooks.start();
    await services.clients.bootstrap(
      { clientId: env.SLUICE_ADMIN_CLIENT_ID, clientSecret: env.SLUICE_ADMIN_CLIENT_SECRET },
      opts.print ?? ((m) => process.stdout.write(`${m}\n`)),
    );

    let url: string | undefined;
    if (env.runsApi) {
      const schema = await createSchema();
      const limits = createLimits(env);
      const http = await createHttpServer(schema, services, limits);
      const revocations = await NotificationBus.start<ClientRevoked>(database.sql, CLIENT_REVOKED_CHANNEL, log);
      disposers.push({ name: 'client-revocations', fn: () => revocations.dispose() });
      // First listener: the auth cache forgets before the WebSocket server re-checks its clients.
      revocations.on((m) => services.clients.forgetClient(m ? m.clientId : null));
      const ws = attachWebSocketServer(http.upgrades, schema, services, limits, {
        maxConnectionsPerClient: env.SLUICE_WS_MAX_CONNECTIONS_PER_CLIENT,
        maxPendingConnections: env.SLUICE_WS_MAX_PENDING_CONNECTIONS,
        maxSubscriptionsPerConnection: env.SLUICE_WS_MAX_SUBSCRIPTIONS_PER_CONNECTION,
        maxBufferedBytes: env.SLUICE_WS_MAX_BUFFERED_BYTES,
        revocations,
      });
      http.onDrain.push(() => ws.dispose());
      await new Promise<void>((resolve, reject) => {
        http.server.once('error', reject);
        http.server.listen(env.PORT, env.HOST, () => resolve());
      });
      // Apollo's stop() drains HTTP (drain plugin) and then the WebSocket server (onDrain).
      disposers.push({ name: 'http', fn: () => http.apollo.stop() });
      const { port } = http.server.address() as AddressInfo;
      const host = env.HOST === '0.0.0.0' || env.HOST === '::' ? '127.0.0.1' : env.HOST;
      url = `http://${host}:${port}`;
      services.signedUploads.useListenUrl(url);
      log.info({ url: `${url}/graphql`, role: env.SLUICE_ROLE }, 'Sluice is listening');
    }

    if (env.runsWorkers) {
      const runner = new JobRunner(services.jobsStore, queue, log, {
        concurrency: env.SLUICE_WORKER_CONCURRENCY,
        heartbeatMs: env.SLUICE_JOB_HEARTBEAT_MS,
        staleMs: env.SLUICE_JOB_STALE_MS,
        progressIntervalMs: env.SLUICE_JOB_PROGRESS_INTERVAL_MS,
        onJobEnd: (job) => services.metrics.observeJobEnd(job),
        retryDelayMs: env.SLUICE_JOB_RETRY_DELAY_MS,
      });
      for (const handler of jobHandlers(services)) runner.register(handler);
      const cancels = await NotificationBus.start<CancelNotification>(database.sql, JOB_CANCEL_CHANNEL, log);
      cancels.on((m) => m && runner.cancelLocal(m.id));
      disposers.push({ name: 'job-cancel-listener', fn: () => cancels.dispose() });
      await runner.start();
      await services.webhooks.work(env.SLUICE_WEBHOOK_CONCURRENCY);
      // Every QUEUED event (from any instance, via NOTIFY) wakes this process's idle pollers.
      const offWake = jobEvents.on((n) => {
        if (n?.state === JobState.QUEUED) queue.wake();
      });
      disposers.push({ name: 'queue-wake', fn: async () => void offWake() });
      // Stops before the queue (registered earlier, so disposed later): running jobs re-queue first.
      disposers.push({ name: 'workers', fn: () => runner.stop(env.SLUICE_SHUTDOWN_TIMEOUT_MS) });
      const uploads = services.signedUploads;
      disposers.push({ name: 'upload-expiry-sweep', fn: every(env.SLUICE_UPLOAD_SWEEP_INTERVAL_MS, () => uploads.sweepExpired(), log, 'upload-expiry-sweep') });
      disposers.push({ name: 'orphan-sweep', fn: every(env.SLUICE_ORPHAN_SWEEP_INTERVAL_MS, () => uploads.sweepOrphans(), log, 'orphan-sweep') });
      const hooks = services.webhooks;
      disposers.push({
        name: 'webhook-history-sweep',
        fn: every(env.SLUICE_ORPHAN_SWEEP_INTERVAL_MS, () => hooks.sweepHistory(), log, 'webhook-history-sweep'),
      });
      const loads = services.loadsDuringUpload;
      disposers.push({
        name: 'preload-sweep',
        fn: every(env.SLUICE_ORPHAN_SWEEP_INTERVAL_MS, () => loads.sweep(env.SLUICE_UPLOAD_EXPIRY_GRACE_SECONDS), log, 'preload-sweep'),
      });
    }

    let metricsUrl: string | undefined;
    if (services.metrics.enabled && env.SLUICE_METRICS_PORT !== undefined) {
      const metricsServer = await startMetricsServer(services.metrics, env.HOST, env.SLUICE_METRICS_PORT, log);
      disposers.push({ name: 'metrics', fn: () => metricsServer.dispose() });
      metricsUrl = metricsServer.url;
    } else if (services.metrics.enabled && env.runsApi && url) {
      metricsUrl = `${url}/metrics`;
    } else if (services.metrics.enabled) {
      log.info('metrics: this process has no HTTP server (SLUICE_ROLE=worker); set SLUICE_METRICS_PORT to expose them');
    }

    return { services, url, metricsUrl, ...(embeddedDatabase ? { embeddedDatabase } : {}), dispose };
  } catch (err) {
    await dispose();
    throw err;
  }
}
