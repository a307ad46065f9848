import type { JobHandler } from './jobs/handler';
import { csvPipelineRunner } from './ingest/pipeline-thread';
import { diagnosticJob } from './jobs/diagnostic.job';
import { ingestFileJob, ingestZipJob } from './modules/files/ingestion.job';
import { importCredentialEngineJob } from './modules/skills/import.job';
import { RegistryClient } from './modules/skills/registry-client';
import { bulkUploadJob } from './modules/directory/bulk-upload.job';
import type { Services } from './services';

/** Every job type this deployment's workers run. */
export function jobHandlers(services: Services): JobHandler<never>[] {
  const env = services.env;
  const deps = {
    storage: services.storage,
    files: services.filesStore,
    specs: services.specsStore,
    pipeline: csvPipelineRunner(env.SLUICE_PIPELINE_THREADS, env.SLUICE_PIPELINE_THREAD_NICE),
    // A plain append's transaction on the pipeline thread, over its own connection (load-session.ts).
    copySessions: env.SLUICE_PIPELINE_THREADS
      ? { url: services.database.url, settings: services.database.settings, nice: env.SLUICE_PIPELINE_THREAD_NICE }
      : undefined,
  };
  const registry = new RegistryClient({
    baseUrl: env.SLUICE_CE_REGISTRY_URL,
    timeoutMs: env.SLUICE_CE_TIMEOUT_MS,
    maxBytes: env.SLUICE_CE_MAX_BYTES,
    maxRedirects: env.SLUICE_CE_MAX_REDIRECTS,
    allowPrivateAddresses: env.SLUICE_CE_ALLOW_PRIVATE_ADDRESSES,
  });
  const skills = importCredentialEngineJob({ store: services.skillsStore, registry, languages: env.ceLanguages });
  const bulk = bulkUploadJob({ storage: services.storage, directory: services.directoryStore });
  return [diagnosticJob, ingestFileJob(deps), ingestZipJob(deps), skills, bulk] as unknown as JobHandler<never>[];
}
