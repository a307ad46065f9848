import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';

/** Byte units so limits read as `1 * GiB`, not as a bare number. */
export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max);

/**
 * Every setting Sluice reads, with its default. This file is the only reader of `process.env`;
 * the README's configuration table mirrors it.
 */
const schema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  /** TCP port for HTTP and graphql-ws (same port, same path). 0 picks a free port. */
  PORT: int(0, 65535).default(4000),
  HOST: z.string().min(1).default('0.0.0.0'),
  /** `all` runs API and workers; `api` and `worker` split them over processes sharing one database. */
  SLUICE_ROLE: z.enum(['all', 'api', 'worker']).default('all'),
  /** PostgreSQL server. Unset: an embedded PostgreSQL is started under the data folder. */
  DATABASE_URL: z.string().url().optional(),
  /** Maximum connections in this process's pool. */
  DATABASE_POOL_MAX: int(1, 1000).default(10),
  /** Folder for the embedded database, local file storage and generated secrets. */
  SLUICE_DATA_DIR: z.string().min(1).default('./.sluice'),
  /** Root folder of local file storage (raw uploads and outputs). Default: <SLUICE_DATA_DIR>/storage. */
  SLUICE_STORAGE_DIR: z.string().min(1).optional(),
  /** Port of the embedded PostgreSQL; 0 picks a free one at every start. */
  SLUICE_EMBEDDED_PG_PORT: int(0, 65535).default(0),
  /** HS256 signing secret (at least 32 characters). Unset outside production: generated once and kept in the data folder. */
  SLUICE_JWT_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  SLUICE_JWT_ISSUER: z.string().min(1).default('sluice'),
  SLUICE_JWT_AUDIENCE: z.string().min(1).default('sluice-api'),
  /** Lifetime of issued tokens, in seconds. */
  SLUICE_TOKEN_TTL_SECONDS: int(60, 7 * 24 * 3600).default(3600),
  /** Bootstrap admin client, created at the first start when no client exists. */
  SLUICE_ADMIN_CLIENT_ID: z.string().regex(/^[A-Za-z0-9_.-]{3,64}$/, 'must be 3-64 of A-Z a-z 0-9 _ . -').optional(),
  SLUICE_ADMIN_CLIENT_SECRET: z.string().min(16, 'must be at least 16 characters').optional(),
  /** Largest accepted upload, in bytes. */
  SLUICE_MAX_FILE_SIZE_BYTES: int(1).default(1 * GiB),
  /** Most files in one multipart request. */
  SLUICE_MAX_FILES: int(1, 1000).default(10),
  /** Introspection; default on except in production. */
  SLUICE_INTROSPECTION: bool.optional(),
  /** GraphiQL (bundled, served locally) at `GET /graphql` for browsers; default on except in production. */
  SLUICE_PLAYGROUND: bool.optional(),
  /** Query limits, applied to HTTP and WebSocket operations alike. */
  SLUICE_MAX_DEPTH: int(1, 100).default(12),
  SLUICE_MAX_ALIASES: int(0, 1000).default(15),
  SLUICE_MAX_COST: int(1).default(5000),
  SLUICE_MAX_TOKENS: int(1).default(2000),
  /** How long SIGTERM waits for requests, sockets and jobs to finish, in milliseconds. */
  SLUICE_SHUTDOWN_TIMEOUT_MS: int(0).default(10_000),
  /** Jobs one worker process runs at the same time. */
  SLUICE_WORKER_CONCURRENCY: int(1, 64).default(2),
  /** How often idle workers poll pg-boss for jobs, in milliseconds (pg-boss minimum 500). */
  SLUICE_JOB_POLL_INTERVAL_MS: int(500, 60_000).default(1000),
  /** How often a running job proves its worker is alive, in milliseconds. */
  SLUICE_JOB_HEARTBEAT_MS: int(100, 60_000).default(5000),
  /** A RUNNING job without a heartbeat for this long is re-queued for another worker, in milliseconds. */
  SLUICE_JOB_STALE_MS: int(500, 3_600_000).default(30_000),
  /** Attempts (lost workers) before a job fails with WORKER_LOST. */
  SLUICE_JOB_MAX_ATTEMPTS: int(1, 100).default(3),
  /** Minimum time between stored progress events of one job, in milliseconds (10 per second by default). */
  SLUICE_JOB_PROGRESS_INTERVAL_MS: int(0, 60_000).default(100),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export type RawEnv = z.infer<typeof schema>;

export interface Env extends Omit<RawEnv, 'SLUICE_INTROSPECTION' | 'SLUICE_PLAYGROUND'> {
  SLUICE_INTROSPECTION: boolean;
  SLUICE_PLAYGROUND: boolean;
  /** Absolute path of SLUICE_DATA_DIR. */
  dataDir: string;
  /** Absolute path of local storage. */
  storageDir: string;
  runsApi: boolean;
  runsWorkers: boolean;
}

export class EnvError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'EnvError';
  }
}

/** Validates `source` against `s`; throws EnvError listing every problem at once. */
function parseEnv<T extends z.ZodType>(s: T, source: Record<string, string | undefined>): z.infer<T> {
  // Empty strings mean "unset": `FOO= npm start` must not fail as an invalid value.
  const cleaned = Object.fromEntries(Object.entries(source).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = s.safeParse(cleaned);
  if (!parsed.success) {
    throw new EnvError(parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`));
  }
  return parsed.data;
}

/** Parses the environment; throws EnvError listing every problem at once. */
export function loadEnv(source: Record<string, string | undefined> = process.env): Env {
  const raw = parseEnv(schema, source);
  const problems: string[] = [];
  if (raw.NODE_ENV === 'production' && !raw.SLUICE_JWT_SECRET) {
    problems.push('SLUICE_JWT_SECRET: required when NODE_ENV=production');
  }
  if (Boolean(raw.SLUICE_ADMIN_CLIENT_ID) !== Boolean(raw.SLUICE_ADMIN_CLIENT_SECRET)) {
    problems.push('SLUICE_ADMIN_CLIENT_ID and SLUICE_ADMIN_CLIENT_SECRET: set both or neither');
  }
  if (raw.SLUICE_JOB_STALE_MS <= raw.SLUICE_JOB_HEARTBEAT_MS * 2) {
    problems.push('SLUICE_JOB_STALE_MS: must be more than twice SLUICE_JOB_HEARTBEAT_MS, or live jobs would be reaped');
  }
  if (problems.length) throw new EnvError(problems);
  const dev = raw.NODE_ENV !== 'production';
  return {
    ...raw,
    SLUICE_INTROSPECTION: raw.SLUICE_INTROSPECTION ?? dev,
    SLUICE_PLAYGROUND: raw.SLUICE_PLAYGROUND ?? dev,
    dataDir: path.resolve(raw.SLUICE_DATA_DIR),
    storageDir: path.resolve(raw.SLUICE_STORAGE_DIR ?? path.join(raw.SLUICE_DATA_DIR, 'storage')),
    runsApi: raw.SLUICE_ROLE !== 'worker',
    runsWorkers: raw.SLUICE_ROLE !== 'api',
  };
}

const cliSchema = z.object({
  /** Base URL of the service the CLI talks to (no /graphql). `--url` wins over it. */
  SLUICE_URL: z.string().url().optional(),
  /** A token to use instead of the one `sluice login` cached. */
  SLUICE_TOKEN: z.string().min(1).optional(),
  /** Client id and secret for `sluice login` (instead of flags or the prompt). */
  SLUICE_CLIENT_ID: z.string().min(1).optional(),
  SLUICE_CLIENT_SECRET: z.string().min(1).optional(),
  /** File where `sluice login` caches the token. Default: <config dir>/sluice/config.json. */
  SLUICE_CLI_CONFIG: z.string().min(1).optional(),
  XDG_CONFIG_HOME: z.string().min(1).optional(),
  HOME: z.string().min(1).optional(),
  /** Set (any value) to turn colours off, as https://no-color.org asks. */
  NO_COLOR: z.string().optional(),
});

/** Settings of the `sluice` command-line client (a separate program from the service). */
export interface CliEnv extends z.infer<typeof cliSchema> {
  /** Absolute path of the token cache file. */
  configFile: string;
}

/** Parses the CLI's environment; throws EnvError listing every problem at once. */
export function loadCliEnv(source: Record<string, string | undefined> = process.env): CliEnv {
  const raw = parseEnv(cliSchema, source);
  const configHome = raw.XDG_CONFIG_HOME ?? path.join(raw.HOME ?? os.homedir(), '.config');
  return { ...raw, configFile: path.resolve(raw.SLUICE_CLI_CONFIG ?? path.join(configHome, 'sluice', 'config.json')) };
}
