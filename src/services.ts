import type { Database } from './db/client';
import type { Env } from './env';
import type { TokenConfig } from './shared/auth';
import type { Logger } from './shared/logger';
import type { NotificationBus } from './shared/pubsub';
import { ClientsService } from './modules/clients/clients.service';
import { ClientsStore } from './modules/clients/clients.store';
import type { JobQueue } from './modules/jobs/job-queue';
import { JobsService } from './modules/jobs/jobs.service';
import { JobsStore, type Notification } from './modules/jobs/jobs.store';

/** Everything resolvers and workers reach. Built once per process. */
export interface Services {
  env: Env;
  database: Database;
  log: Logger;
  clients: ClientsService;
  jobs: JobsService;
  jobsStore: JobsStore;
  queue: JobQueue;
}

export function createServices(
  env: Env,
  database: Database,
  log: Logger,
  tokens: TokenConfig,
  infra: { queue: JobQueue; jobEvents: NotificationBus<Notification> },
): Services {
  const jobsStore = new JobsStore(database.sql);
  return {
    env,
    database,
    log,
    clients: new ClientsService(new ClientsStore(database.db), tokens, log),
    jobs: new JobsService(jobsStore, infra.queue, infra.jobEvents, log, env.SLUICE_JOB_MAX_ATTEMPTS),
    jobsStore,
    queue: infra.queue,
  };
}
