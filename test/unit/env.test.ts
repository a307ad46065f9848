import { describe, expect, it } from 'vitest';
import { EnvError, GiB, loadEnv } from '../../src/env';

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
    expect(env).toMatchObject({ SLUICE_CE_REGISTRY_URL: 'https://credentialengineregistry.org', SLUICE_CE_ALLOW_PRIVATE_ADDRESSES: false, ceLanguages: ['en-US', 'en'] });
    const custom = loadEnv({ SLUICE_CE_REGISTRY_URL: 'http://127.0.0.1:8080/', SLUICE_CE_LANGUAGES: 'es, en-GB', SLUICE_CE_ALLOW_PRIVATE_ADDRESSES: 'true' });
    expect(custom).toMatchObject({ SLUICE_CE_ALLOW_PRIVATE_ADDRESSES: true, ceLanguages: ['es', 'en-GB'] });
    for (const bad of ['not a url', 'ftp://registry.example', 'https://registry.example/resources']) {
      expect(() => loadEnv({ SLUICE_CE_REGISTRY_URL: bad }), bad).toThrow(/SLUICE_CE_REGISTRY_URL/);
    }
    expect(() => loadEnv({ SLUICE_CE_LANGUAGES: 'en;drop' })).toThrow(/SLUICE_CE_LANGUAGES/);
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
    const prod = loadEnv({ NODE_ENV: 'production', SLUICE_JWT_SECRET: 'x'.repeat(40) });
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

describe('loadEnv: storage and signed uploads', () => {
  it('defaults to local storage and 15-minute upload URLs', () => {
    expect(loadEnv({})).toMatchObject({ SLUICE_STORAGE: 'local', SLUICE_UPLOAD_URL_TTL_SECONDS: 900, SLUICE_S3_FORCE_PATH_STYLE: false, SLUICE_S3_REGION: 'us-east-1' });
  });

  it('bounds uploads in time: a 30 s idle timeout, temp files swept after an hour', () => {
    expect(loadEnv({})).toMatchObject({ SLUICE_UPLOAD_IDLE_TIMEOUT_MS: 30_000, SLUICE_STALE_TEMP_SECONDS: 3600 });
    expect(() => loadEnv({ SLUICE_UPLOAD_IDLE_TIMEOUT_MS: '0' })).toThrow(/SLUICE_UPLOAD_IDLE_TIMEOUT_MS/);
    expect(() => loadEnv({ SLUICE_STALE_TEMP_SECONDS: '5' })).toThrow(/SLUICE_STALE_TEMP_SECONDS/);
  });

  it('requires a bucket for S3 and both explicit credentials or neither', () => {
    expect(() => loadEnv({ SLUICE_STORAGE: 's3' })).toThrow(/SLUICE_S3_BUCKET: required when SLUICE_STORAGE=s3/);
    expect(() => loadEnv({ SLUICE_STORAGE: 's3', SLUICE_S3_BUCKET: 'data', SLUICE_S3_ACCESS_KEY_ID: 'k' })).toThrow(/set both or neither/);
    expect(() => loadEnv({ SLUICE_S3_BUCKET: 'Not_A_Bucket' })).toThrow(/SLUICE_S3_BUCKET/);
    const env = loadEnv({ SLUICE_STORAGE: 's3', SLUICE_S3_BUCKET: 'data', SLUICE_S3_ENDPOINT: 'http://minio:9000', SLUICE_S3_FORCE_PATH_STYLE: 'true' });
    expect(env).toMatchObject({ SLUICE_STORAGE: 's3', SLUICE_S3_BUCKET: 'data', SLUICE_S3_FORCE_PATH_STYLE: true });
  });
});
