import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { secretWeakness } from './shared/secret-strength';
import { GiB, KiB, MiB } from './shared/units';

const bool = z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((v) => v === 'true' || v === '1' || v === 'yes');

/** An http(s) URL with nothing after the host (a trailing slash is allowed). */
function isHttpOrigin(v: string): boolean {
  try {
    const u = new URL(v);
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.pathname === '/' && !u.search && !u.hash && !u.username && !u.password;
  } catch {
    return false;
  }
}

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
  /** Longest wait for a new database connection (TCP connect and login), in milliseconds. */
  SLUICE_DB_CONNECT_TIMEOUT_MS: int(500, 600_000).default(10_000),
  /**
   * Server-side statement_timeout of every statement except fenced data transactions (COPY and key
   * builds of a load), in milliseconds. The client also gives up on a connection that has not
   * answered a request for this long plus 2 s (a half-open link), so it must exceed the longest
   * silent step of a load.
   */
  SLUICE_DB_STATEMENT_TIMEOUT_MS: int(1000, 3_600_000).default(30_000),
  /** Server-side idle_in_transaction_session_timeout: a session idle inside a transaction this long is ended, releasing its locks, in milliseconds. */
  SLUICE_DB_IDLE_IN_TRANSACTION_TIMEOUT_MS: int(1000, 3_600_000).default(60_000),
  /** TCP keepalive idle time on both ends of every database connection (client and server side), in milliseconds. */
  SLUICE_DB_KEEPALIVE_MS: int(1000, 3_600_000).default(10_000),
  /** Idle pool connections are closed after this long, in milliseconds. */
  SLUICE_DB_IDLE_TIMEOUT_MS: int(1000, 3_600_000).default(60_000),
  /** Pool connections are replaced after this age, in milliseconds. */
  SLUICE_DB_MAX_LIFETIME_MS: int(10_000, 24 * 3600_000).default(30 * 60_000),
  /** Folder for the embedded database, local file storage and generated secrets. */
  SLUICE_DATA_DIR: z.string().min(1).default('./.sluice'),
  /** Root folder of local file storage (raw uploads and outputs). Default: <SLUICE_DATA_DIR>/storage. */
  SLUICE_STORAGE_DIR: z.string().min(1).optional(),
  /**
   * Port of the embedded PostgreSQL (on 127.0.0.1), stable so `psql` can reach it. Unset: 54329, or
   * a free port (with a warning) when 54329 is taken. Set: exactly that port, refused at start when
   * taken. 0: a free port at every start.
   */
  SLUICE_EMBEDDED_PG_PORT: int(0, 65535).optional(),
  /** HS256 signing secret (at least 32 characters). Unset outside production: generated once and kept in the data folder. */
  SLUICE_JWT_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  SLUICE_JWT_ISSUER: z.string().min(1).default('sluice'),
  SLUICE_JWT_AUDIENCE: z.string().min(1).default('sluice-api'),
  /** Lifetime of issued tokens, in seconds. */
  SLUICE_TOKEN_TTL_SECONDS: int(60, 7 * 24 * 3600).default(3600),
  /** Failed issueToken calls (and failed upload URL tokens) allowed per client id and per remote address in any 60 s; more answer RATE_LIMITED. */
  SLUICE_AUTH_MAX_FAILURES_PER_MINUTE: int(1, 100_000).default(10),
  /** Client secret verifications (scrypt, about 0.1 s of CPU and 32 MiB each) running at once in this process. */
  SLUICE_AUTH_MAX_CONCURRENT_VERIFICATIONS: int(1, 64).default(2),
  /** issueToken calls waiting for a verification slot; more answer RATE_LIMITED at once. */
  SLUICE_AUTH_MAX_QUEUED_VERIFICATIONS: int(0, 10_000).default(32),
  /**
   * How long a client seen active is trusted without reading its row again, in milliseconds. A
   * revokeClient ends it at once on every instance that hears its NOTIFY; this bounds a revocation
   * whose NOTIFY was missed (or an UPDATE made by hand). 0: read the row on every request.
   */
  SLUICE_AUTH_CLIENT_CACHE_MS: int(0, 60_000).default(1000),
  /** Proxies in front of Sluice whose X-Forwarded-For is trusted for the client address (0: use the socket's address). */
  SLUICE_TRUST_PROXY_HOPS: int(0, 10).default(0),
  /**
   * Plain JSON POSTs to /graphql go from node:http straight to Apollo, past express's router and
   * body parser (src/server/graphql-json.ts); false sends them through express as everything else.
   */
  SLUICE_GRAPHQL_JSON_LANE: bool.default(true),
  /** Bootstrap admin client, created at the first start when no client exists. */
  SLUICE_ADMIN_CLIENT_ID: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{3,64}$/, 'must be 3-64 of A-Z a-z 0-9 _ . -')
    .optional(),
  SLUICE_ADMIN_CLIENT_SECRET: z.string().min(16, 'must be at least 16 characters').optional(),
  /** Largest accepted upload, in bytes. */
  SLUICE_MAX_FILE_SIZE_BYTES: int(1).default(1 * GiB),
  /** Most files in one multipart request. */
  SLUICE_MAX_FILES: int(1, 1000).default(10),
  /**
   * Longest silence allowed while an upload body arrives (multipart and PUT /uploads), in
   * milliseconds; past it the request ends with REQUEST_TIMEOUT (HTTP 408) and nothing is kept.
   */
  SLUICE_UPLOAD_IDLE_TIMEOUT_MS: int(100, 3_600_000).default(30_000),
  /**
   * How long an idle keep-alive HTTP connection stays open, in milliseconds: longer than the
   * clients' and load balancers' own (60 s is common), so they, not the server, close it first.
   */
  SLUICE_HTTP_KEEP_ALIVE_TIMEOUT_MS: int(1000, 600_000).default(65_000),
  /**
   * Longest each query of a validateFile(mode: MERGE) diff against a dimension's current table
   * may run (after the file was read), in milliseconds; past it the call ends with REQUEST_TIMEOUT
   * (reason DIFF_TIMEOUT) and nothing is kept.
   */
  SLUICE_DRY_RUN_DIFF_TIMEOUT_MS: int(100, 3_600_000).default(30_000),
  /** Introspection; default on except in production. */
  SLUICE_INTROSPECTION: bool.optional(),
  /** GraphiQL (bundled, served locally) at `GET /graphql` for browsers; default on except in production. */
  SLUICE_PLAYGROUND: bool.optional(),
  /** Query limits, applied to HTTP and WebSocket operations alike. */
  SLUICE_MAX_DEPTH: int(1, 100).default(12),
  SLUICE_MAX_ALIASES: int(0, 1000).default(15),
  // Why 20,000: the cost multiplies by literal `first` page sizes. Every README example and every SDK
  // operation with literal pages of 100 rows fits (largest: UploadStatus, 13,780; 5,000 refused five of
  // them and the README's uploadStatus example); lists nested in lists (100 jobs x their events) do not.
  SLUICE_MAX_COST: int(1).default(20_000),
  SLUICE_MAX_TOKENS: int(1).default(2000),
  /** Open graphql-ws connections one client may hold on one instance; the next one is closed with 4429. */
  SLUICE_WS_MAX_CONNECTIONS_PER_CLIENT: int(1, 100_000).default(50),
  /**
   * graphql-ws connections open on this instance that have not finished connection_init (no token
   * accepted yet); a handshake beyond them is refused with HTTP 503 SERVICE_UNAVAILABLE.
   */
  SLUICE_WS_MAX_PENDING_CONNECTIONS: int(1, 1_000_000).default(1000),
  /** Subscriptions active at once on one graphql-ws connection; the next one gets a BAD_REQUEST error. */
  SLUICE_WS_MAX_SUBSCRIPTIONS_PER_CONNECTION: int(1, 100_000).default(100),
  /** Bytes written to one graphql-ws socket and not yet taken by the network; past it the socket is closed with 1013 (slow consumer). */
  SLUICE_WS_MAX_BUFFERED_BYTES: int(1 * KiB, 1 * GiB).default(1 * MiB),
  /** How long SIGTERM waits for requests, sockets and jobs to finish, in milliseconds. */
  SLUICE_SHUTDOWN_TIMEOUT_MS: int(0).default(10_000),
  /** Jobs one worker process runs at the same time. */
  /**
   * Run each file's parse, validation and COPY encoding on a worker thread (default), so an
   * import never holds up the API's event loop; `false` runs it on the main thread.
   */
  SLUICE_PIPELINE_THREADS: bool.default(true),
  /**
   * Nice value of the pipeline thread (Linux; 0-19, 0: as the process): during an import the
   * thread yields a core to the API's event loop whenever the machine has none free.
   */
  SLUICE_PIPELINE_THREAD_NICE: int(0, 19).default(10),
  /**
   * Uploads (multipart CSV, local storage) whose rows may be loaded while they stream, at once per
   * process (see src/modules/files/load-during-upload.ts); 0 turns it off. Needs SLUICE_PIPELINE_THREADS.
   */
  SLUICE_LOAD_DURING_UPLOAD: int(0, 64).default(2),
  /**
   * An upload's load during the upload starts once this many bytes are stored (smaller files are
   * loaded by their job). 1 MiB, not 8: the load's COPY starts that much sooner, and a 1M-row
   * upload finished 2.21-2.50 s after it started against 2.30-2.84 s (bench/ingest.bench.ts, 4 runs each, alternated).
   */
  SLUICE_LOAD_DURING_UPLOAD_MIN_BYTES: int(0).default(MiB),
  /**
   * The longest an upload may keep its load's transaction open (client-paced) before it is
   * stored, in milliseconds; a slower upload ends its load and its job loads the file.
   */
  SLUICE_LOAD_DURING_UPLOAD_MAX_UPLOAD_MS: int(100, 24 * 3600_000).default(300_000),
  /**
   * COPYs at once of a load during upload, each on a connection (and a core of PostgreSQL's) of
   * its own, into a file partition split by blocks of lines (src/modules/files/load-session.ts);
   * 1: one COPY into a plain partition. 1 by default: on two cores the load is CPU-bound and two
   * COPYs only share the same cores (bench/ingest.bench.ts, README "Several COPY streams").
   */
  SLUICE_LOAD_STREAMS: int(1, 8).default(1),
  SLUICE_WORKER_CONCURRENCY: int(1, 64).default(2),
  /** How often idle workers poll pg-boss for jobs, in milliseconds (pg-boss minimum 500). */
  SLUICE_JOB_POLL_INTERVAL_MS: int(500, 60_000).default(1000),
  /** How often a running job proves its worker is alive, in milliseconds. */
  SLUICE_JOB_HEARTBEAT_MS: int(100, 60_000).default(5000),
  /** A RUNNING job without a heartbeat for this long is re-queued for another worker, in milliseconds. */
  SLUICE_JOB_STALE_MS: int(500, 3_600_000).default(30_000),
  /** Attempts per job: a lost worker or a transient database fault costs one; past it the job fails WORKER_LOST or TRANSIENT_FAILURE. */
  SLUICE_JOB_MAX_ATTEMPTS: int(1, 100).default(3),
  /** First delay before an attempt that hit a transient database fault (connection lost, deadlock, serialization failure) runs again; doubles per attempt, in milliseconds. */
  SLUICE_JOB_RETRY_DELAY_MS: int(0, 3_600_000).default(2000),
  /** Minimum time between stored progress events of one job, in milliseconds (10 per second by default). */
  SLUICE_JOB_PROGRESS_INTERVAL_MS: int(0, 60_000).default(100),
  /** Credential Engine registry: the only host the skills import contacts (scheme, host and port; no path). */
  SLUICE_CE_REGISTRY_URL: z
    .string()
    .refine(isHttpOrigin, 'must be an http(s) origin without a path, e.g. https://credentialengineregistry.org')
    .default('https://credentialengineregistry.org'),
  /** Language preference for CTDL language maps, comma-separated, matched case-insensitively; any language after these. */
  SLUICE_CE_LANGUAGES: z
    .string()
    .regex(/^\s*[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*(\s*,\s*[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*)*\s*$/, 'must be a comma-separated list of language tags')
    .default('en-US,en'),
  /** Time allowed for one registry response (headers and body), in milliseconds. */
  SLUICE_CE_TIMEOUT_MS: int(100, 300_000).default(20_000),
  /** Largest registry response read, in bytes. */
  SLUICE_CE_MAX_BYTES: int(1024).default(20 * MiB),
  /** Redirects followed per request (same registry host only). */
  SLUICE_CE_MAX_REDIRECTS: int(0, 10).default(3),
  /** Allow registry hosts that resolve to private, loopback or link-local addresses (tests, private mirrors). */
  SLUICE_CE_ALLOW_PRIVATE_ADDRESSES: bool.default(false),
  /** Allow webhook URLs that resolve to private, loopback or link-local addresses (tests, in-cluster receivers). */
  SLUICE_WEBHOOK_ALLOW_PRIVATE_ADDRESSES: bool.default(false),
  /** Time allowed for one webhook delivery (connect, send, response headers and the capped body), in milliseconds. */
  SLUICE_WEBHOOK_TIMEOUT_MS: int(100, 120_000).default(10_000),
  /** Delivery attempts per event before it is given up (FAILED). */
  SLUICE_WEBHOOK_MAX_ATTEMPTS: int(1, 50).default(8),
  /** Base of the exponential retry delay (pg-boss backoff: attempt n+1 waits base * 2^(n-1) to twice that), in seconds. */
  SLUICE_WEBHOOK_RETRY_DELAY_SECONDS: int(1, 3600).default(10),
  /** Bytes of a receiver's response body read and kept for webhookDeliveries; the rest is not read. */
  SLUICE_WEBHOOK_RESPONSE_MAX_BYTES: int(0, 64 * KiB).default(2 * KiB),
  /** Webhook deliveries one worker process runs at once. */
  SLUICE_WEBHOOK_CONCURRENCY: int(1, 100).default(4),
  /** Days a settled webhook event (delivered or given up) and its attempts are kept for webhookDeliveries; workers delete older ones every SLUICE_ORPHAN_SWEEP_INTERVAL_MS. */
  SLUICE_WEBHOOK_HISTORY_DAYS: int(1, 3650).default(30),
  /** Most webhooks one client may have. */
  SLUICE_WEBHOOK_MAX_PER_CLIENT: int(1, 1000).default(20),
  /** Key that encrypts stored webhook signing secrets (at least 32 characters). Unset: derived from the JWT secret, so changing that secret makes existing webhooks unsignable. */
  SLUICE_WEBHOOK_SECRET_KEY: z.string().min(32, 'must be at least 32 characters').optional(),
  /** Most frameworks in one importCredentialEngine call. */
  SLUICE_CE_MAX_FRAMEWORKS: int(1, 1000).default(50),
  /** Largest accepted directory bulk upload CSV (locations, organisations, users), in bytes. */
  SLUICE_BULK_MAX_FILE_SIZE_BYTES: int(1).default(50 * MiB),
  /** Most data rows in one directory bulk upload CSV. */
  SLUICE_BULK_MAX_ROWS: int(1).default(100_000),
  /** Where files live: `local` (under SLUICE_STORAGE_DIR) or `s3` (SLUICE_S3_*). */
  SLUICE_STORAGE: z.enum(['local', 's3']).default('local'),
  /**
   * Local storage: bytes every write must leave free on the store's file system and, with the
   * embedded PostgreSQL, on its data folder's (storage/free-space.ts); a write that would leave
   * less is refused with STORAGE_FULL. 0 turns the reserve off.
   */
  SLUICE_STORAGE_MIN_FREE_BYTES: int(0).default(1 * GiB),
  /** S3-compatible endpoint (MinIO, Ceph, R2...); unset for AWS S3. */
  SLUICE_S3_ENDPOINT: z.string().url().optional(),
  SLUICE_S3_REGION: z.string().min(1).default('us-east-1'),
  /** Bucket for every object (it must exist). Required when SLUICE_STORAGE=s3. */
  SLUICE_S3_BUCKET: z
    .string()
    .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be a valid S3 bucket name')
    .optional(),
  /** Path-style URLs (`endpoint/bucket/key`); most S3-compatible servers need it. */
  SLUICE_S3_FORCE_PATH_STYLE: bool.default(false),
  /** Explicit S3 credentials; unset: the AWS SDK's standard chain (AWS_ACCESS_KEY_ID..., profiles, roles). */
  SLUICE_S3_ACCESS_KEY_ID: z.string().min(1).optional(),
  SLUICE_S3_SECRET_ACCESS_KEY: z.string().min(1).optional(),
  /** Multipart part size for S3 writes, in bytes (S3 minimum 5 MiB); memory per write is about 3 parts. */
  SLUICE_S3_PART_SIZE_BYTES: int(5 * MiB, 512 * MiB).default(8 * MiB),
  /** Time to open a connection to S3, in milliseconds. */
  SLUICE_S3_CONNECT_TIMEOUT_MS: int(100, 600_000).default(5000),
  /** Longest silence (no byte sent or received) on an S3 request, body reads and part uploads included, in milliseconds. */
  SLUICE_S3_IDLE_TIMEOUT_MS: int(100, 3_600_000).default(30_000),
  /** Longest wait for an S3 response's headers, the request body (a part) included, in milliseconds. */
  SLUICE_S3_REQUEST_TIMEOUT_MS: int(100, 3_600_000).default(120_000),
  /** Requests one object read may make when its connection fails mid-body (each resumes at the byte reached with a Range request). */
  SLUICE_S3_READ_ATTEMPTS: int(1, 20).default(4),
  /** Incomplete multipart uploads older than this are aborted by the orphan sweep, in seconds. */
  SLUICE_S3_INCOMPLETE_UPLOAD_MAX_AGE_SECONDS: int(60, 30 * 24 * 3600).default(24 * 3600),
  /** Lifetime of a signed upload URL, in seconds (S3 allows at most 7 days). */
  SLUICE_UPLOAD_URL_TTL_SECONDS: int(1, 7 * 24 * 3600).default(15 * 60),
  /** HMAC key of Sluice's own upload URLs (at least 32 characters). Unset: derived from the JWT secret. */
  SLUICE_UPLOAD_URL_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  /** Base URL clients reach Sluice at, for its own upload URLs. Unset: the address it listens on. */
  SLUICE_PUBLIC_URL: z.string().url().optional(),
  /** How long after its URL expires a requested file may still be imported before it expires and its object is deleted, in seconds. Also the age below which an unreferenced upload object is never swept. */
  SLUICE_UPLOAD_EXPIRY_GRACE_SECONDS: int(0, 30 * 24 * 3600).default(3600),
  /** How often workers expire requested files that were never imported, in milliseconds; 0 turns it off. */
  SLUICE_UPLOAD_SWEEP_INTERVAL_MS: int(0, 24 * 3600_000).default(60_000),
  /** How often workers delete upload objects no file refers to, in milliseconds; 0 turns it off. */
  SLUICE_ORPHAN_SWEEP_INTERVAL_MS: int(0, 7 * 24 * 3600_000).default(3600_000),
  /**
   * Age (time since the last write) after which the orphan sweep deletes a local storage temp file
   * (`.tmp-*`, a write a crash interrupted) or an empty folder, in seconds. Must exceed the longest
   * pause between two writes of a live write (an output file of a long job).
   */
  SLUICE_STALE_TEMP_SECONDS: int(60, 30 * 24 * 3600).default(3600),
  /** Longest an importFile(mode: SYNC) call waits for the job to finish, in milliseconds. */
  SLUICE_IMPORT_SYNC_MAX_WAIT_MS: int(0, 600_000).default(30_000),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Prometheus metrics at `GET /metrics`: `on` or `off`. */
  SLUICE_METRICS: z.enum(['on', 'off']).default('on'),
  /** Serve /metrics on this port (on HOST) instead of the main one (0: a free port, logged); the only way a worker-only process exposes them. */
  SLUICE_METRICS_PORT: int(0, 65535).optional(),
  /** `json` (one object per line), `pretty` (human lines, pino-pretty) or `auto`: pretty when stdout is a terminal. */
  SLUICE_LOG_FORMAT: z.enum(['auto', 'pretty', 'json']).default('auto'),
});

export type RawEnv = z.infer<typeof schema>;

/** The embedded PostgreSQL's port when SLUICE_EMBEDDED_PG_PORT is unset. */
export const DEFAULT_EMBEDDED_PG_PORT = 54329;

export interface Env extends Omit<RawEnv, 'SLUICE_INTROSPECTION' | 'SLUICE_PLAYGROUND' | 'SLUICE_EMBEDDED_PG_PORT'> {
  SLUICE_INTROSPECTION: boolean;
  SLUICE_PLAYGROUND: boolean;
  /** SLUICE_EMBEDDED_PG_PORT, or DEFAULT_EMBEDDED_PG_PORT when unset. */
  SLUICE_EMBEDDED_PG_PORT: number;
  /** True when SLUICE_EMBEDDED_PG_PORT is unset: a taken default port falls back to a free one. */
  embeddedPgPortFallback: boolean;
  /** Absolute path of SLUICE_DATA_DIR. */
  dataDir: string;
  /** Absolute path of local storage. */
  storageDir: string;
  runsApi: boolean;
  runsWorkers: boolean;
  /** SLUICE_CE_LANGUAGES as a list. */
  ceLanguages: string[];
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
  if (raw.NODE_ENV === 'production') {
    // Length alone accepts 32 spaces; a guessable signing key lets anyone mint an ADMIN token.
    for (const name of ['SLUICE_JWT_SECRET', 'SLUICE_UPLOAD_URL_SECRET', 'SLUICE_WEBHOOK_SECRET_KEY'] as const) {
      const weakness = raw[name] === undefined ? undefined : secretWeakness(raw[name]);
      if (weakness) problems.push(`${name}: ${weakness}; use a random value, e.g. \`openssl rand -base64 48\``);
    }
  }
  if (Boolean(raw.SLUICE_ADMIN_CLIENT_ID) !== Boolean(raw.SLUICE_ADMIN_CLIENT_SECRET)) {
    problems.push('SLUICE_ADMIN_CLIENT_ID and SLUICE_ADMIN_CLIENT_SECRET: set both or neither');
  }
  if (raw.SLUICE_JOB_STALE_MS <= raw.SLUICE_JOB_HEARTBEAT_MS * 2) {
    problems.push('SLUICE_JOB_STALE_MS: must be more than twice SLUICE_JOB_HEARTBEAT_MS, or live jobs would be reaped');
  }
  if (raw.SLUICE_STORAGE === 's3' && !raw.SLUICE_S3_BUCKET) {
    problems.push('SLUICE_S3_BUCKET: required when SLUICE_STORAGE=s3');
  }
  if (Boolean(raw.SLUICE_S3_ACCESS_KEY_ID) !== Boolean(raw.SLUICE_S3_SECRET_ACCESS_KEY)) {
    problems.push('SLUICE_S3_ACCESS_KEY_ID and SLUICE_S3_SECRET_ACCESS_KEY: set both or neither');
  }
  if (raw.SLUICE_METRICS_PORT && raw.SLUICE_METRICS_PORT === raw.PORT) {
    problems.push('SLUICE_METRICS_PORT: must differ from PORT (unset it to serve /metrics on the main port)');
  }
  if (problems.length) throw new EnvError(problems);
  const dev = raw.NODE_ENV !== 'production';
  return {
    ...raw,
    SLUICE_INTROSPECTION: raw.SLUICE_INTROSPECTION ?? dev,
    SLUICE_PLAYGROUND: raw.SLUICE_PLAYGROUND ?? dev,
    SLUICE_EMBEDDED_PG_PORT: raw.SLUICE_EMBEDDED_PG_PORT ?? DEFAULT_EMBEDDED_PG_PORT,
    embeddedPgPortFallback: raw.SLUICE_EMBEDDED_PG_PORT === undefined,
    dataDir: path.resolve(raw.SLUICE_DATA_DIR),
    storageDir: path.resolve(raw.SLUICE_STORAGE_DIR ?? path.join(raw.SLUICE_DATA_DIR, 'storage')),
    runsApi: raw.SLUICE_ROLE !== 'worker',
    runsWorkers: raw.SLUICE_ROLE !== 'api',
    ceLanguages: raw.SLUICE_CE_LANGUAGES.split(',').map((l) => l.trim()),
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
