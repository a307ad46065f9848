import type { JobHandler } from './modules/jobs/job-runner';
import { diagnosticJob } from './modules/jobs/diagnostic.job';
import { ingestFileJob, ingestZipJob } from './modules/files/ingest.job';
import { bulkUploadJob } from './modules/directory/bulk-upload.job';
import type { Services } from './services';

/** Every job type this deployment's workers run. */
export function jobHandlers(services: Services): JobHandler<never>[] {
  const deps = { storage: services.storage, files: services.filesStore, specs: services.specsStore };
  return [diagnosticJob, ingestFileJob(deps), ingestZipJob(deps), bulkUploadJob({ storage: services.storage, directory: services.directoryStore })] as unknown as JobHandler<never>[];
}
