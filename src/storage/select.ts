import path from 'node:path';
import type { Env } from '../env';
import { createLocalStorage } from './local';
import { createS3Storage } from './s3';
import type { ObjectStorage } from './storage';

/** The backend the configuration names (SLUICE_STORAGE), with the means to stop it. */
export function createStorageFromEnv(env: Env): ObjectStorage & { dispose(): Promise<void> } {
  if (env.SLUICE_STORAGE === 's3') {
    return createS3Storage({
      bucket: env.SLUICE_S3_BUCKET!,
      region: env.SLUICE_S3_REGION,
      endpoint: env.SLUICE_S3_ENDPOINT,
      forcePathStyle: env.SLUICE_S3_FORCE_PATH_STYLE,
      partSizeBytes: env.SLUICE_S3_PART_SIZE_BYTES,
      connectTimeoutMs: env.SLUICE_S3_CONNECT_TIMEOUT_MS,
      idleTimeoutMs: env.SLUICE_S3_IDLE_TIMEOUT_MS,
      requestTimeoutMs: env.SLUICE_S3_REQUEST_TIMEOUT_MS,
      readAttempts: env.SLUICE_S3_READ_ATTEMPTS,
      ...(env.SLUICE_S3_ACCESS_KEY_ID && env.SLUICE_S3_SECRET_ACCESS_KEY
        ? { credentials: { accessKeyId: env.SLUICE_S3_ACCESS_KEY_ID, secretAccessKey: env.SLUICE_S3_SECRET_ACCESS_KEY } }
        : {}),
    });
  }
  return createLocalStorage({
    root: env.storageDir,
    minFreeBytes: env.SLUICE_STORAGE_MIN_FREE_BYTES,
    // The embedded server's data shares the reserve (its folder may not exist yet: its parent's file system then).
    alsoWatch: env.DATABASE_URL ? [] : [path.join(env.dataDir, 'pg')],
  });
}
