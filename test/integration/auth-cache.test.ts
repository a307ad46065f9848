import jwt from 'jsonwebtoken';
import { beforeAll, describe, expect, it } from 'vitest';
import { CreateClientDocument, IssueTokenDocument, MeDocument, RevokeClientDocument, SluiceClient } from '../../src/sdk/client';
import { ADMIN_ID, JWT_SECRET, codeOf, createTestDatabase, startTestApp, type TestApp } from '../helpers/app';

// Two instances on one database. B trusts a client it saw active for a minute, so a revocation
// can only reach it in time through the NOTIFY; C keeps the default bound (1 s).
let a: TestApp;
let b: TestApp;
let c: TestApp;
beforeAll(async () => {
  const shared = await createTestDatabase();
  a = await startTestApp({}, { databaseUrl: shared.url });
  b = await startTestApp({ SLUICE_AUTH_CLIENT_CACHE_MS: '60000' }, { databaseUrl: shared.url });
  c = await startTestApp({}, { databaseUrl: shared.url });
});

let n = 0;
async function newClient(): Promise<{ clientId: string; token: string }> {
  const clientId = `cache-${++n}-${Date.now()}`;
  const { createClient } = await a.admin.request(CreateClientDocument, { input: { clientId, name: clientId, roles: ['VIEWER'] } });
  const { issueToken } = await a.anon.request(IssueTokenDocument, { clientId, clientSecret: createClient.clientSecret });
  return { clientId, token: issueToken.accessToken };
}

const on = (t: TestApp, token: string) => new SluiceClient({ url: t.url, token });

/** Milliseconds until `token` is refused on `t` (polling every 20 ms), or Infinity after `withinMs`. */
async function refusedAfter(t: TestApp, token: string, withinMs: number): Promise<{ ms: number; message?: string }> {
  const started = Date.now();
  while (Date.now() - started < withinMs) {
    const res = await on(t, token).raw(MeDocument);
    if (codeOf(res.body) === 'UNAUTHENTICATED') return { ms: Date.now() - started, message: res.body.errors?.[0]?.message };
    await new Promise((r) => setTimeout(r, 20));
  }
  return { ms: Number.POSITIVE_INFINITY };
}

describe('remembered callers', () => {
  it('a revoked client is refused on another instance through the NOTIFY, although that one trusts clients for a minute', async () => {
    const { clientId, token } = await newClient();
    // B has seen the client active (and remembers it), several times.
    for (let i = 0; i < 3; i++) expect((await on(b, token).request(MeDocument)).me.clientId).toBe(clientId);
    await a.admin.request(RevokeClientDocument, { clientId });
    const refused = await refusedAfter(b, token, 5000);
    expect(refused.ms).toBeLessThan(2000);
    expect(refused.message).toMatch(/revoked/);
    // Refused on A (where it was revoked) at once, and for good on both.
    expect(codeOf((await on(a, token).raw(MeDocument)).body)).toBe('UNAUTHENTICATED');
    await new Promise((r) => setTimeout(r, 200));
    expect(codeOf((await on(b, token).raw(MeDocument)).body)).toBe('UNAUTHENTICATED');
  });

  it('a client revoked by hand (no NOTIFY) is refused within SLUICE_AUTH_CLIENT_CACHE_MS (1 s)', async () => {
    const { clientId, token } = await newClient();
    expect((await on(c, token).request(MeDocument)).me.clientId).toBe(clientId);
    await c.database.sql`update api_clients set revoked_at = now() where client_id = ${clientId}`;
    const refused = await refusedAfter(c, token, 5000);
    expect(refused.ms).toBeLessThan(1500);
    expect(refused.message).toMatch(/revoked/);
  });

  it('a token verified before is refused once it expires (exp + 5 s of clock skew)', async () => {
    // exp 3 s ago: valid for about 2 s more under the 5 s tolerance.
    const now = Math.floor(Date.now() / 1000);
    const token = jwt.sign({ roles: ['ADMIN'], iss: 'sluice', aud: 'sluice-api', sub: ADMIN_ID, iat: now - 10, exp: now - 3 }, JWT_SECRET, {
      algorithm: 'HS256',
    });
    expect((await on(a, token).request(MeDocument)).me.clientId).toBe(ADMIN_ID);
    const refused = await refusedAfter(a, token, 6000);
    expect(refused.ms).toBeLessThan(3500);
    expect(refused.message).toBe('Token expired');
    expect(Date.now() / 1000).toBeGreaterThanOrEqual(now - 3 + 5);
  });
});
