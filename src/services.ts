import { csvPipelineRunner } from './ingest/pipeline-thread';
import type { Database } from './db/client';
import type { Env } from './env';
import type { TokenConfig } from './shared/auth';
import type { Logger } from './shared/logger';
import { Metrics } from './shared/metrics';
import type { NotificationBus } from './shared/pubsub';
import { ClientsService } from './modules/clients/clients.service';
import { ClientsStore } from './modules/clients/clients.store';
import type { JobQueue } from './jobs/queue';
import { JobsService } from './modules/jobs/jobs.service';
import type { Notification } from './jobs/channels';
import { JobsStore } from './jobs/store';
import { FilesService } from './modules/files/files.service';
import { LoadsDuringUpload } from './modules/files/load-during-upload';
import { FilesStore } from './modules/files/files.store';
import { INGEST_FILE_JOB, INGEST_ZIP_JOB } from './modules/files/ingestion.job';
import { SignedUploadsService } from './modules/signed-uploads/signed-uploads.service';
import { SignedUploadsStore } from './modules/signed-uploads/signed-uploads.store';
import { SpecsService } from './modules/specs/specs.service';
import { SpecsStore } from './modules/specs/specs.store';
import { SkillsService } from './modules/skills/skills.service';
import { SkillsStore } from './modules/skills/skills.store';
import type { ObjectStorage } from './storage/storage';
import { DirectoryService } from './modules/directory/directory.service';
import { DirectoryStore } from './modules/directory/directory.store';
import { WebhooksService } from './modules/webhooks/webhooks.service';
import { WebhooksStore } from './modules/webhooks/webhooks.store';
import { SystemService } from './modules/system/system.service';

/**
 * What resolvers (and the skills loader) reach through the GraphQL context: services only, so
 * resolver -> service -> store holds by type. No stores, no database, no raw settings.
 */
export interface ResolverServices {
  clients: ClientsService;
  jobs: JobsService;
  specs: SpecsService;
  files: FilesService;
  skills: SkillsService;
  directory: DirectoryService;
  signedUploads: SignedUploadsService;
  webhooks: WebhooksService;
  system: SystemService;
}

/** Everything the server, workers and job handlers reach. Built once per process. */
export interface Services extends ResolverServices {
  env: Env;
  database: Database;
  log: Logger;
  clients: ClientsService;
  jobs: JobsService;
  jobsStore: JobsStore;
  queue: JobQueue;
  storage: ObjectStorage;
  specs: SpecsService;
  specsStore: SpecsStore;
  files: FilesService;
  filesStore: FilesStore;
  loadsDuringUpload: LoadsDuringUpload;
  skills: SkillsService;
  skillsStore: SkillsStore;
  directory: DirectoryService;
  directoryStore: DirectoryStore;
  metrics: Metrics;
}

export function createServices(
  env: Env,
  database: Database,
  log: Logger,
  tokens: TokenConfig,
  infra: { queue: JobQueue; jobEvents: NotificationBus<Notification>; storage: ObjectStorage },
): Services {
  const metrics = new Metrics({ sql: database.sql, poolMax: env.DATABASE_POOL_MAX, log, enabled: env.SLUICE_METRICS === 'on' });
  const jobsStore = new JobsStore(database.sql);
  const jobs = new JobsService(jobsStore, infra.queue, infra.jobEvents, log, env.SLUICE_JOB_MAX_ATTEMPTS, (seconds, n) =>
    metrics.observeFanoutRound(seconds, n),
  );
  const specsStore = new SpecsStore(database.sql);
  const specs = new SpecsService(specsStore, log);
  const filesStore = new FilesStore(database.sql);
  const skillsStore = new SkillsStore(database.sql);
  const directoryStore = new DirectoryStore(database.sql);
  const pipeline = csvPipelineRunner(env.SLUICE_PIPELINE_THREADS, env.SLUICE_PIPELINE_THREAD_NICE);
  const loadsDuringUpload = new LoadsDuringUpload(database, infra.storage, log, {
    max: env.SLUICE_LOAD_DURING_UPLOAD,
    minBytes: env.SLUICE_LOAD_DURING_UPLOAD_MIN_BYTES,
    threads: env.SLUICE_PIPELINE_THREADS,
    threadNice: env.SLUICE_PIPELINE_THREAD_NICE,
    progressIntervalMs: Math.max(env.SLUICE_JOB_PROGRESS_INTERVAL_MS, 100),
    maxUploadMs: env.SLUICE_LOAD_DURING_UPLOAD_MAX_UPLOAD_MS,
    streams: env.SLUICE_LOAD_STREAMS,
  });
  const files = new FilesService(filesStore, specs, jobs, infra.storage, log, env.SLUICE_MAX_FILE_SIZE_BYTES, metrics, {
    dryRunDiffTimeoutMs: env.SLUICE_DRY_RUN_DIFF_TIMEOUT_MS,
    pipeline,
    loadsDuringUpload,
  });
  // A file's corrected rows (a ZIP's CSVs') would not survive a retry of its ingestion (a reload from the upload).
  jobs.guardRetry(INGEST_FILE_JOB, (tx, job) => files.checkRetry(tx, job, 'CSV'));
  jobs.guardRetry(INGEST_ZIP_JOB, (tx, job) => files.checkRetry(tx, job, 'ZIP'));
  const signedUploads = new SignedUploadsService(
    new SignedUploadsStore(database.sql),
    files,
    filesStore,
    specs,
    jobs,
    infra.storage,
    log,
    {
      urlTtlSeconds: env.SLUICE_UPLOAD_URL_TTL_SECONDS,
      graceSeconds: env.SLUICE_UPLOAD_EXPIRY_GRACE_SECONDS,
      staleTempSeconds: env.SLUICE_STALE_TEMP_SECONDS,
      maxFileBytes: env.SLUICE_MAX_FILE_SIZE_BYTES,
      syncMaxWaitMs: env.SLUICE_IMPORT_SYNC_MAX_WAIT_MS,
      publicUrl: env.SLUICE_PUBLIC_URL,
      maxTokenFailuresPerMinute: env.SLUICE_AUTH_MAX_FAILURES_PER_MINUTE,
      incompleteUploadMaxAgeSeconds: env.SLUICE_S3_INCOMPLETE_UPLOAD_MAX_AGE_SECONDS,
    },
    env.SLUICE_UPLOAD_URL_SECRET ?? tokens.secret,
    metrics,
  );
  const webhooks = new WebhooksService(new WebhooksStore(database.sql), infra.queue, log, {
    allowPrivateAddresses: env.SLUICE_WEBHOOK_ALLOW_PRIVATE_ADDRESSES,
    timeoutMs: env.SLUICE_WEBHOOK_TIMEOUT_MS,
    maxAttempts: env.SLUICE_WEBHOOK_MAX_ATTEMPTS,
    retryDelaySeconds: env.SLUICE_WEBHOOK_RETRY_DELAY_SECONDS,
    maxResponseBytes: env.SLUICE_WEBHOOK_RESPONSE_MAX_BYTES,
    maxPerClient: env.SLUICE_WEBHOOK_MAX_PER_CLIENT,
    secretKey: env.SLUICE_WEBHOOK_SECRET_KEY ?? tokens.secret,
    historyDays: env.SLUICE_WEBHOOK_HISTORY_DAYS,
  });
  jobsStore.onStateEvent = (tx, job) => webhooks.enqueueForTransition(tx, job);
  return {
    env,
    database,
    log,
    clients: new ClientsService(new ClientsStore(database.sql), tokens, log, {
      maxFailuresPerMinute: env.SLUICE_AUTH_MAX_FAILURES_PER_MINUTE,
      maxConcurrentVerifications: env.SLUICE_AUTH_MAX_CONCURRENT_VERIFICATIONS,
      maxQueuedVerifications: env.SLUICE_AUTH_MAX_QUEUED_VERIFICATIONS,
      clientCacheMs: env.SLUICE_AUTH_CLIENT_CACHE_MS,
    }),
    jobs,
    jobsStore,
    queue: infra.queue,
    storage: infra.storage,
    specs,
    specsStore,
    files,
    filesStore,
    loadsDuringUpload,
    skills: new SkillsService(skillsStore, jobs, log, {
      registryOrigin: new URL(env.SLUICE_CE_REGISTRY_URL).origin,
      maxFrameworks: env.SLUICE_CE_MAX_FRAMEWORKS,
      languages: env.ceLanguages,
    }),
    skillsStore,
    directory: new DirectoryService(
      directoryStore,
      jobs,
      infra.storage,
      log,
      {
        maxFileBytes: env.SLUICE_BULK_MAX_FILE_SIZE_BYTES,
        maxRows: env.SLUICE_BULK_MAX_ROWS,
      },
      metrics,
    ),
    directoryStore,
    signedUploads,
    webhooks,
    system: new SystemService(env.SLUICE_ROLE),
    metrics,
  };
}
