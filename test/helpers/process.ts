import { SERVICE_ARGS, spawnNode, type ServiceProcess } from '../../scripts/service-process';
import { ADMIN_ID, ADMIN_SECRET, JWT_SECRET } from './app';
import { FAST_JOBS } from './jobs';

export { repoRoot, SERVICE_ARGS, type ServiceProcess } from '../../scripts/service-process';

/** Runs the service as a real child process (by default `src/main.ts` through tsx) with exactly `env` (plus PATH/HOME). */
export function spawnService(env: Record<string, string>, entry: keyof typeof SERVICE_ARGS = 'source'): ServiceProcess {
  return spawnNode(SERVICE_ARGS[entry], env);
}

/**
 * A real worker process (SLUICE_ROLE=worker) on `databaseUrl`, sharing the in-process API's local
 * storage (`dataDir`, where uploads are stored), with the test secrets and fast job timings.
 */
export function spawnWorker(databaseUrl: string, dataDir: string): ServiceProcess {
  return spawnService({
    NODE_ENV: 'test',
    DATABASE_URL: databaseUrl,
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: 'info',
    SLUICE_ROLE: 'worker',
    SLUICE_JWT_SECRET: JWT_SECRET,
    SLUICE_ADMIN_CLIENT_ID: ADMIN_ID,
    SLUICE_ADMIN_CLIENT_SECRET: ADMIN_SECRET,
    SLUICE_DATA_DIR: dataDir,
    SLUICE_SHUTDOWN_TIMEOUT_MS: '2000',
    ...FAST_JOBS,
  });
}
