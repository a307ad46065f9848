import type { JobHandler } from './modules/jobs/job-runner';
import { diagnosticJob } from './modules/jobs/diagnostic.job';
import type { Services } from './services';

/** Every job type this deployment's workers run. */
export function jobHandlers(_services: Services): JobHandler<never>[] {
  return [diagnosticJob as JobHandler<never>];
}
