import { describe, expect, it } from 'vitest';
import { EnvError, loadEnv } from '../../src/env';
import { GiB, MiB } from '../../src/shared/units';

describe('loadEnv', () => {
  it('has working defaults for a fresh machine', () => {
    const env = loadEnv({});
    expect(env).toMatchObject({
      PORT: 4000,
      SLUICE_ROLE: 'all',
      SLUICE_MAX_FILE_SIZE_BYTES: 1 * GiB,
      SLUICE_TOKEN_TTL_SECONDS: 3600,
      SLUICE_INTROSPECTION: true,
      runsApi: true,
      runsWorkers: true,
    });
    expect(env.DATABASE_URL).toBeUndefined();
    expect(env.dataDir).toMatch(/\.sluice$/);
  });

  it('reads the Credential Engine settings', () => {
    const env = loadEnv({});
    expect(env).toMatchObject({
      SLUICE_CE_REGISTRY_URL: 'https://credentialengineregistry.org',
      SLUICE_CE_ALLOW_PRIVATE_ADDRESSES: false,
      ceLanguages: ['en-US', 'en'],
    });
    const custom = loadEnv({ SLUICE_CE_REGISTRY_URL: 'http://127.0.0.1:8080/', SLUICE_CE_LANGUAGES: 'es, en-GB', SLUICE_CE_ALLOW_PRIVATE_ADDRESSES: 'true' });
    expect(custom).toMatchObject({ SLUICE_CE_ALLOW_PRIVATE_ADDRESSES: true, ceLanguages: ['es', 'en-GB'] });
    for (const bad of ['not a url', 'ftp://registry.example', 'https://registry.example/resources']) {
      expect(() => loadEnv({ SLUICE_CE_REGISTRY_URL: bad }), bad).toThrow(/SLUICE_CE_REGISTRY_URL/);
    }
    expect(() => loadEnv({ SLUICE_CE_LANGUAGES: 'en;drop' })).toThrow(/SLUICE_CE_LANGUAGES/);
  });

  it('bounds WebSocket connections per client and unsent bytes per socket', () => {
    expect(loadEnv({})).toMatchObject({
      SLUICE_WS_MAX_CONNECTIONS_PER_CLIENT: 50,
      SLUICE_WS_MAX_SUBSCRIPTIONS_PER_CONNECTION: 100,
      SLUICE_WS_MAX_BUFFERED_BYTES: 1 * MiB,
    });
    expect(() => loadEnv({ SLUICE_WS_MAX_SUBSCRIPTIONS_PER_CONNECTION: '0' })).toThrow(/SLUICE_WS_MAX_SUBSCRIPTIONS_PER_CONNECTION/);
    expect(loadEnv({ SLUICE_WS_MAX_CONNECTIONS_PER_CLIENT: '2', SLUICE_WS_MAX_BUFFERED_BYTES: '65536' })).toMatchObject({
      SLUICE_WS_MAX_CONNECTIONS_PER_CLIENT: 2,
      SLUICE_WS_MAX_BUFFERED_BYTES: 65536,
    });
    expect(() => loadEnv({ SLUICE_WS_MAX_CONNECTIONS_PER_CLIENT: '0' })).toThrow(/SLUICE_WS_MAX_CONNECTIONS_PER_CLIENT/);
    expect(() => loadEnv({ SLUICE_WS_MAX_BUFFERED_BYTES: '100' })).toThrow(/SLUICE_WS_MAX_BUFFERED_BYTES/);
  });

  it('lists every problem at once', () => {
    let error: unknown;
    try {
      loadEnv({ PORT: 'eighty', SLUICE_ROLE: 'boss', DATABASE_URL: 'not a url', SLUICE_JWT_SECRET: 'short', SLUICE_MAX_FILES: '0' });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(EnvError);
    const problems = (error as EnvError).problems.join('\n');
    for (const name of ['PORT', 'SLUICE_ROLE', 'DATABASE_URL', 'SLUICE_JWT_SECRET', 'SLUICE_MAX_FILES']) expect(problems).toContain(name);
    expect((error as EnvError).problems).toHaveLength(5);
  });

  it('requires a JWT secret in production, turns introspection off there, and wants admin id and secret together', () => {
    expect(() => loadEnv({ NODE_ENV: 'production' })).toThrow(/SLUICE_JWT_SECRET: required/);
    const prod = loadEnv({ NODE_ENV: 'production', SLUICE_JWT_SECRET: 'pQ7vX2mK9sLw4ZtR8yBn3HcJ6dFg1VaE5uNk0Ti' });
    expect(prod.SLUICE_INTROSPECTION).toBe(false);
    expect(prod.SLUICE_PLAYGROUND).toBe(false);
    expect(loadEnv({}).SLUICE_PLAYGROUND).toBe(true);
    expect(() => loadEnv({ SLUICE_ADMIN_CLIENT_ID: 'admin' })).toThrow(/set both or neither/);
  });

  it('splits roles and treats empty strings as unset', () => {
    expect(loadEnv({ SLUICE_ROLE: 'worker' })).toMatchObject({ runsApi: false, runsWorkers: true });
    expect(loadEnv({ SLUICE_ROLE: 'api' })).toMatchObject({ runsApi: true, runsWorkers: false });
    expect(loadEnv({ PORT: '' }).PORT).toBe(4000);
  });
});

describe('loadEnv: secrets in production', () => {
  const weak: Array<[string, RegExp]> = [
    [' '.repeat(32), /only whitespace/],
    ['\t \n'.repeat(12), /only whitespace/],
    ['x'.repeat(40), /1 distinct character/],
    ['abab'.repeat(10), /2 distinct characters/],
    ['abcdefgh'.repeat(4), /repeats a 8-character pattern/],
    ['password-password-password-password', /repeats a 9-character pattern/],
    ['abcdefghijklmnopqrstuvwxyz0123456789', /simple sequence/],
    ['aaaaaaaabbbbbbbbccccccccddddddddeeeefghh', /simple sequence|entropy/],
  ];
  for (const [secret, why] of weak) {
    it(`refuses SLUICE_JWT_SECRET ${JSON.stringify(secret)}`, () => {
      let error: unknown;
      try {
        loadEnv({ NODE_ENV: 'production', SLUICE_JWT_SECRET: secret });
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(EnvError);
      const problems = (error as EnvError).problems;
      expect(problems).toHaveLength(1);
      expect(problems[0]).toMatch(/^SLUICE_JWT_SECRET: /);
      expect(problems[0]).toMatch(why);
    });
  }

  it('refuses a weak SLUICE_UPLOAD_URL_SECRET too, and lists both problems at once', () => {
    let error: unknown;
    try {
      loadEnv({ NODE_ENV: 'production', SLUICE_JWT_SECRET: ' '.repeat(32), SLUICE_UPLOAD_URL_SECRET: '1'.repeat(32) });
    } catch (err) {
      error = err;
    }
    const problems = (error as EnvError).problems.join('\n');
    expect(problems).toMatch(/SLUICE_JWT_SECRET: is only whitespace/);
    expect(problems).toMatch(/SLUICE_UPLOAD_URL_SECRET: uses only 1 distinct character/);
  });

  it('accepts random secrets (hex and base64, as openssl rand makes them)', async () => {
    const { randomBytes } = await import('node:crypto');
    for (let i = 0; i < 2000; i++) {
      const hex = randomBytes(16).toString('hex');
      const b64 = randomBytes(48).toString('base64');
      expect(() => loadEnv({ NODE_ENV: 'production', SLUICE_JWT_SECRET: hex, SLUICE_UPLOAD_URL_SECRET: b64 }), hex).not.toThrow();
    }
  });

  it('leaves development alone (a generated secret is used when none is set)', () => {
    expect(() => loadEnv({ SLUICE_JWT_SECRET: 'x'.repeat(40) })).not.toThrow();
  });
});

describe('loadEnv: storage and signed uploads', () => {
  it('defaults to local storage and 15-minute upload URLs', () => {
    expect(loadEnv({})).toMatchObject({
      SLUICE_STORAGE: 'local',
      SLUICE_UPLOAD_URL_TTL_SECONDS: 900,
      SLUICE_S3_FORCE_PATH_STYLE: false,
      SLUICE_S3_REGION: 'us-east-1',
    });
  });

  it('bounds uploads in time: a 30 s idle timeout, temp files swept after an hour', () => {
    expect(loadEnv({})).toMatchObject({ SLUICE_UPLOAD_IDLE_TIMEOUT_MS: 30_000, SLUICE_STALE_TEMP_SECONDS: 3600 });
    expect(() => loadEnv({ SLUICE_UPLOAD_IDLE_TIMEOUT_MS: '0' })).toThrow(/SLUICE_UPLOAD_IDLE_TIMEOUT_MS/);
    expect(() => loadEnv({ SLUICE_STALE_TEMP_SECONDS: '5' })).toThrow(/SLUICE_STALE_TEMP_SECONDS/);
  });

  it('bounds dry-run diffs in time: 30 s per query by default, at least 100 ms', () => {
    expect(loadEnv({})).toMatchObject({ SLUICE_DRY_RUN_DIFF_TIMEOUT_MS: 30_000 });
    expect(() => loadEnv({ SLUICE_DRY_RUN_DIFF_TIMEOUT_MS: '50' })).toThrow(/SLUICE_DRY_RUN_DIFF_TIMEOUT_MS/);
  });

  it('requires a bucket for S3 and both explicit credentials or neither', () => {
    expect(() => loadEnv({ SLUICE_STORAGE: 's3' })).toThrow(/SLUICE_S3_BUCKET: required when SLUICE_STORAGE=s3/);
    expect(() => loadEnv({ SLUICE_STORAGE: 's3', SLUICE_S3_BUCKET: 'data', SLUICE_S3_ACCESS_KEY_ID: 'k' })).toThrow(/set both or neither/);
    expect(() => loadEnv({ SLUICE_S3_BUCKET: 'Not_A_Bucket' })).toThrow(/SLUICE_S3_BUCKET/);
    const env = loadEnv({ SLUICE_STORAGE: 's3', SLUICE_S3_BUCKET: 'data', SLUICE_S3_ENDPOINT: 'http://minio:9000', SLUICE_S3_FORCE_PATH_STYLE: 'true' });
    expect(env).toMatchObject({ SLUICE_STORAGE: 's3', SLUICE_S3_BUCKET: 'data', SLUICE_S3_FORCE_PATH_STYLE: true });
  });
});
