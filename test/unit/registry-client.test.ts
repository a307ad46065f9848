import { gzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { isPrivateAddress, RegistryClient, RegistryError, type RegistryClientOptions } from '../../src/modules/skills/registry-client';
import { startFakeRegistry, type FakeRegistry } from '../helpers/registry';

let reg: FakeRegistry;
let other: FakeRegistry;

beforeAll(async () => {
  reg = await startFakeRegistry();
  other = await startFakeRegistry();
});

const client = (o: Partial<RegistryClientOptions> = {}) =>
  new RegistryClient({ baseUrl: reg.url, timeoutMs: 1000, maxBytes: 64 * 1024, maxRedirects: 3, allowPrivateAddresses: true, ...o });

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (err instanceof RegistryError) return err.code;
    throw err;
  }
  throw new Error('expected a RegistryError');
}

describe('RegistryClient against a real HTTP server', () => {
  it('fetches and parses JSON', async () => {
    reg.routes.set('/graph/ok', { body: { '@graph': [] } });
    expect(await client().getJson('/graph/ok')).toEqual({ '@graph': [] });
  });

  it('reports 404, other statuses and bad JSON', async () => {
    reg.routes.set('/e500', { status: 500, body: 'boom' });
    reg.routes.set('/bad', { body: '{"@graph": [' });
    expect(await codeOf(client().getJson('/missing'))).toBe('REGISTRY_NOT_FOUND');
    expect(await codeOf(client().getJson('/e500'))).toBe('REGISTRY_HTTP_ERROR');
    expect(await codeOf(client().getJson('/bad'))).toBe('REGISTRY_BAD_JSON');
  });

  it('refuses compressed, binary and invalid UTF-8 bodies with a coded, printable message', async () => {
    const json = JSON.stringify({ '@graph': [] });
    reg.routes.set('/gz-declared', { body: gzipSync(json), headers: { 'content-encoding': 'gzip' } });
    reg.routes.set('/gz-undeclared', { body: gzipSync(json) });
    reg.routes.set('/zstd', { body: Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0]) });
    reg.routes.set('/nul', { body: Buffer.concat([Buffer.from('{"a": "'), Buffer.from([0]), Buffer.from('"}')]) });
    reg.routes.set('/latin1', { body: Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0x93, 0x22, 0x7d]) });
    reg.routes.set('/overlong', { body: Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xc0, 0xaf, 0x22, 0x7d]) });
    reg.routes.set('/identity', { body: json, headers: { 'content-encoding': 'identity' } });
    const failure = async (path: string) => {
      try {
        await client().getJson(path);
      } catch (err) {
        if (err instanceof RegistryError) return { code: err.code, message: err.message };
        throw err;
      }
      throw new Error(`expected ${path} to fail`);
    };
    expect(await failure('/gz-declared')).toEqual({ code: 'REGISTRY_BAD_ENCODING', message: expect.stringContaining('"gzip"') });
    expect(await failure('/gz-undeclared')).toEqual({ code: 'REGISTRY_BAD_JSON', message: expect.stringContaining('gzip-compressed') });
    expect(await failure('/zstd')).toEqual({ code: 'REGISTRY_BAD_JSON', message: expect.stringContaining('zstd') });
    expect(await failure('/nul')).toEqual({ code: 'REGISTRY_BAD_JSON', message: expect.stringContaining('control byte 0x00') });
    expect(await failure('/latin1')).toEqual({ code: 'REGISTRY_BAD_JSON', message: expect.stringContaining('UTF-8') });
    expect(await failure('/overlong')).toEqual({ code: 'REGISTRY_BAD_JSON', message: expect.stringContaining('UTF-8') });
    expect(await client().getJson('/identity')).toEqual({ '@graph': [] });
    // Sluice says it wants no compression.
    expect(reg.headers.at(-1)?.['accept-encoding']).toBe('identity');
  });

  it('times out slow headers and slow bodies', async () => {
    reg.routes.set('/slow-headers', { body: {}, delayMs: 2000 });
    reg.routes.set('/slow-body', { body: {}, bodyDelayMs: 2000 });
    const started = Date.now();
    expect(await codeOf(client({ timeoutMs: 300 }).getJson('/slow-headers'))).toBe('REGISTRY_TIMEOUT');
    expect(await codeOf(client({ timeoutMs: 300 }).getJson('/slow-body'))).toBe('REGISTRY_TIMEOUT');
    expect(Date.now() - started).toBeLessThan(1500);
  });

  it('caps the body, declared or streamed', async () => {
    const big = JSON.stringify({ pad: 'x'.repeat(2000) });
    reg.routes.set('/big', { body: big });
    reg.routes.set('/big-chunked', { body: big, headers: { 'transfer-encoding': 'chunked' } });
    expect(await codeOf(client({ maxBytes: 1024 }).getJson('/big'))).toBe('REGISTRY_TOO_LARGE');
    expect(await codeOf(client({ maxBytes: 1024 }).getJson('/big-chunked'))).toBe('REGISTRY_TOO_LARGE');
    expect(await client({ maxBytes: 4096 }).getJson('/big')).toEqual({ pad: 'x'.repeat(2000) });
  });

  it('follows a few redirects on the same host only', async () => {
    reg.routes.set('/r1', { status: 302, headers: { location: '/r2' } });
    reg.routes.set('/r2', { status: 301, headers: { location: `${reg.url}/graph/ok` } });
    reg.routes.set('/graph/ok', { body: { ok: true } });
    expect(await client().getJson('/r1')).toEqual({ ok: true });
    expect(await codeOf(client({ maxRedirects: 1 }).getJson('/r1'))).toBe('REGISTRY_REDIRECT_REFUSED');

    other.routes.set('/graph/ok', { body: { stolen: true } });
    reg.routes.set('/away', { status: 302, headers: { location: `${other.url}/graph/ok` } });
    // Same address, other name: still another host.
    reg.routes.set('/away-by-name', { status: 307, headers: { location: `http://localhost:${reg.port}/graph/ok` } });
    const before = other.requests.length;
    expect(await codeOf(client().getJson('/away'))).toBe('REGISTRY_REDIRECT_REFUSED');
    expect(await codeOf(client().getJson('/away-by-name'))).toBe('REGISTRY_REDIRECT_REFUSED');
    expect(other.requests.length).toBe(before);

    reg.routes.set('/loop', { status: 302, headers: { location: '/loop' } });
    expect(await codeOf(client().getJson('/loop'))).toBe('REGISTRY_REDIRECT_REFUSED');
  });

  it('refuses private and loopback addresses unless allowed', async () => {
    expect(await codeOf(client({ allowPrivateAddresses: false }).getJson('/graph/ok'))).toBe('REGISTRY_ADDRESS_REFUSED');
    // A name that resolves to loopback is refused at lookup time, before any connection.
    const byName = new RegistryClient({
      baseUrl: `http://localhost:${reg.port}`,
      timeoutMs: 1000,
      maxBytes: 1024,
      maxRedirects: 0,
      allowPrivateAddresses: false,
    });
    const before = reg.requests.length;
    expect(await codeOf(byName.getJson('/graph/ok'))).toBe('REGISTRY_ADDRESS_REFUSED');
    expect(reg.requests.length).toBe(before);
  });

  it('reports an unreachable host', async () => {
    const closed = await startFakeRegistry();
    await closed.close();
    expect(
      await codeOf(new RegistryClient({ baseUrl: closed.url, timeoutMs: 1000, maxBytes: 1024, maxRedirects: 0, allowPrivateAddresses: true }).getJson('/x')),
    ).toBe('REGISTRY_UNREACHABLE');
  });

  it('stops when the caller aborts, with the caller’s reason', async () => {
    reg.routes.set('/slow', { body: {}, delayMs: 2000 });
    const ac = new AbortController();
    const reason = new Error('cancelled by job');
    setTimeout(() => ac.abort(reason), 100);
    await expect(client({ timeoutMs: 5000 }).getJson('/slow', ac.signal)).rejects.toBe(reason);
  });
});

describe('isPrivateAddress', () => {
  it('classifies addresses', () => {
    for (const a of [
      '127.0.0.1',
      '10.1.2.3',
      '172.16.0.1',
      '192.168.1.1',
      '169.254.169.254',
      '0.0.0.0',
      '::1',
      'fe80::1',
      'fd00::1',
      '::ffff:127.0.0.1',
      '::ffff:a9fe:a9fe',
      '100.64.0.1',
    ]) {
      expect(isPrivateAddress(a), a).toBe(true);
    }
    for (const a of ['8.8.8.8', '52.1.2.3', '2606:4700::1111', '::ffff:8.8.8.8']) {
      expect(isPrivateAddress(a), a).toBe(false);
    }
  });
});
