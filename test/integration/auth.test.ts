import jwt from 'jsonwebtoken';
import { beforeAll, describe, expect, it } from 'vitest';
import { ClientsDocument, CreateClientDocument, IssueTokenDocument, MeDocument, RevokeClientDocument, SluiceClient } from '../../src/sdk/client';
import { ADMIN_ID, ADMIN_SECRET, JWT_SECRET, codeOf, startTestApp, type TestApp } from '../helpers/app';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});

const tokenClient = (token: string) => new SluiceClient({ url: t.url, token });

function sign(payload: object, opts: jwt.SignOptions, secret = JWT_SECRET): string {
  return jwt.sign(payload, secret, { algorithm: 'HS256', issuer: 'sluice', audience: 'sluice-api', subject: ADMIN_ID, expiresIn: 600, ...opts });
}

/** Signed with the right secret, with `payload`'s own exp (and iat unless given). */
function signRaw(payload: object): string {
  return jwt.sign({ iss: 'sluice', aud: 'sluice-api', sub: ADMIN_ID, ...payload }, JWT_SECRET, { algorithm: 'HS256', noTimestamp: 'iat' in payload });
}

describe('issueToken', () => {
  it('exchanges the bootstrap admin credentials for a JWT with sub, iss, aud, exp and roles', async () => {
    const { issueToken } = await t.anon.request(IssueTokenDocument, { clientId: ADMIN_ID, clientSecret: ADMIN_SECRET });
    expect(issueToken.tokenType).toBe('Bearer');
    expect(issueToken.roles).toEqual(['ADMIN']);
    const claims = jwt.decode(issueToken.accessToken, { complete: true }) as jwt.Jwt & { payload: jwt.JwtPayload };
    expect(claims.header.alg).toBe('HS256');
    expect(claims.payload).toMatchObject({ sub: ADMIN_ID, iss: 'sluice', aud: 'sluice-api', roles: ['ADMIN'] });
    // Default lifetime is one hour.
    expect(claims.payload.exp! - claims.payload.iat!).toBe(3600);
    expect(new Date(issueToken.expiresAt).getTime()).toBe(claims.payload.exp! * 1000);
    const { me } = await tokenClient(issueToken.accessToken).request(MeDocument);
    expect(me.clientId).toBe(ADMIN_ID);
  });

  it('refuses a wrong secret and an unknown client alike', async () => {
    const wrong = await t.anon.raw(IssueTokenDocument, { clientId: ADMIN_ID, clientSecret: 'nope-nope-nope' });
    const unknown = await t.anon.raw(IssueTokenDocument, { clientId: 'nobody', clientSecret: ADMIN_SECRET });
    expect(codeOf(wrong.body), JSON.stringify(wrong.body)).toBe('UNAUTHENTICATED');
    expect(codeOf(unknown.body), JSON.stringify(unknown.body)).toBe('UNAUTHENTICATED');
    expect(wrong.body.errors?.[0]?.message).toBe(unknown.body.errors?.[0]?.message);
  });
});

describe('token verification', () => {
  const cases: Array<[string, () => string]> = [
    ['missing', () => ''],
    ['expired', () => sign({ roles: ['ADMIN'] }, { expiresIn: -60 })],
    ['forged (other secret)', () => sign({ roles: ['ADMIN'] }, {}, 'another-secret-that-is-long-enough-1234567')],
    [
      'alg none',
      () =>
        jwt.sign({ roles: ['ADMIN'], sub: ADMIN_ID, iss: 'sluice', aud: 'sluice-api', exp: Math.floor(Date.now() / 1000) + 600 }, '', { algorithm: 'none' }),
    ],
    ['wrong audience', () => sign({ roles: ['ADMIN'] }, { audience: 'someone-else' })],
    ['wrong issuer', () => sign({ roles: ['ADMIN'] }, { issuer: 'evil' })],
    [
      'HS512 instead of pinned HS256',
      () => jwt.sign({ roles: ['ADMIN'] }, JWT_SECRET, { algorithm: 'HS512', issuer: 'sluice', audience: 'sluice-api', subject: ADMIN_ID, expiresIn: 600 }),
    ],
    ['garbage', () => 'not.a.jwt'],
    ['unknown subject', () => sign({ roles: ['ADMIN'] }, { subject: 'ghost' })],
    ['correctly signed but exp 1e20', () => signRaw({ roles: ['ADMIN'], exp: 1e20 })],
    ['correctly signed but lifetime over the TTL', () => sign({ roles: ['ADMIN'] }, { expiresIn: 3600 + 60 })],
    ['correctly signed but issued in the future', () => sign({ roles: ['ADMIN'], iat: Math.floor(Date.now() / 1000) + 600 }, {})],
    [
      'correctly signed but without iat',
      () =>
        jwt.sign({ iss: 'sluice', aud: 'sluice-api', sub: ADMIN_ID, roles: ['ADMIN'], exp: Math.floor(Date.now() / 1000) + 600 }, JWT_SECRET, {
          algorithm: 'HS256',
          noTimestamp: true,
        }),
    ],
  ];
  for (const [name, make] of cases) {
    it(`rejects a ${name} token with UNAUTHENTICATED`, async () => {
      const token = make();
      const client = token ? tokenClient(token) : t.anon;
      const res = await client.raw(MeDocument);
      expect(codeOf(res.body), JSON.stringify(res.body)).toBe('UNAUTHENTICATED');
      expect(res.body.data ?? null).toBeNull();
    });
  }

  it('rejects a malformed Authorization header', async () => {
    const res = await fetch(`${t.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Basic abc' },
      body: JSON.stringify({ query: '{ me { clientId } }' }),
    });
    const body = (await res.json()) as { errors: Array<{ extensions: { code: string } }> };
    expect(body.errors[0]!.extensions.code).toBe('UNAUTHENTICATED');
  });

  it('accepts a correctly signed token minted elsewhere with the shared secret', async () => {
    const { me } = await tokenClient(sign({ roles: ['ADMIN'] }, {})).request(MeDocument);
    expect(me.roles).toEqual(['ADMIN']);
  });
});

describe('roles and client management', () => {
  it('lets ADMIN create clients whose secrets work, and forbids VIEWER and INGESTOR from admin mutations', async () => {
    const viewer = await t.clientWith(['VIEWER']);
    const ingestor = await t.clientWith(['INGESTOR']);
    for (const c of [viewer, ingestor]) {
      const res = await c.raw(CreateClientDocument, { input: { name: 'x', roles: ['ADMIN'] } });
      expect(codeOf(res.body), JSON.stringify(res.body)).toBe('FORBIDDEN');
      const list = await c.raw(ClientsDocument, {});
      expect(codeOf(list.body)).toBe('FORBIDDEN');
    }
    const { me } = await viewer.request(MeDocument);
    expect(me.roles).toEqual(['VIEWER']);
  });

  it('generates a client id when none is given and never returns the secret again', async () => {
    const { createClient } = await t.admin.request(CreateClientDocument, { input: { name: 'Data team', roles: ['INGESTOR', 'VIEWER'] } });
    expect(createClient.client.clientId).toMatch(/^client-/);
    expect(createClient.client.createdBy).toBe(ADMIN_ID);
    expect(createClient.clientSecret.length).toBeGreaterThanOrEqual(32);
    const { clients } = await t.admin.request(ClientsDocument, {});
    expect(clients.map((c) => c.clientId)).toContain(createClient.client.clientId);
    const stored = await t.database.sql`select secret_hash from api_clients where client_id = ${createClient.client.clientId}`;
    expect(stored[0]!['secret_hash']).toMatch(/^scrypt\$/);
    expect(stored[0]!['secret_hash']).not.toContain(createClient.clientSecret);
  });

  it('rejects a duplicate client id with CONFLICT and a bad one with BAD_USER_INPUT', async () => {
    await t.admin.request(CreateClientDocument, { input: { clientId: 'dup-client', name: 'a', roles: ['VIEWER'] } });
    const dup = await t.admin.raw(CreateClientDocument, { input: { clientId: 'dup-client', name: 'b', roles: ['VIEWER'] } });
    expect(codeOf(dup.body)).toBe('CONFLICT');
    const bad = await t.admin.raw(CreateClientDocument, { input: { clientId: "x'; drop table api_clients;--", name: 'b', roles: ['VIEWER'] } });
    expect(codeOf(bad.body)).toBe('BAD_USER_INPUT');
    const none = await t.admin.raw(CreateClientDocument, { input: { name: 'b', roles: [] } });
    expect(codeOf(none.body)).toBe('BAD_USER_INPUT');
  });

  it('revoking a client stops its existing tokens and its token exchange at once', async () => {
    const { createClient } = await t.admin.request(CreateClientDocument, { input: { clientId: 'to-revoke', name: 'r', roles: ['VIEWER'] } });
    const { issueToken } = await t.anon.request(IssueTokenDocument, { clientId: 'to-revoke', clientSecret: createClient.clientSecret });
    const c = tokenClient(issueToken.accessToken);
    await c.request(MeDocument);
    const { revokeClient } = await t.admin.request(RevokeClientDocument, { clientId: 'to-revoke' });
    expect(revokeClient.revokedAt).not.toBeNull();
    expect(codeOf((await c.raw(MeDocument)).body)).toBe('UNAUTHENTICATED');
    const again = await t.anon.raw(IssueTokenDocument, { clientId: 'to-revoke', clientSecret: createClient.clientSecret });
    expect(codeOf(again.body)).toBe('UNAUTHENTICATED');
    const { clients } = await t.admin.request(ClientsDocument, { includeRevoked: false });
    expect(clients.map((x) => x.clientId)).not.toContain('to-revoke');
  });

  it('refuses to revoke the last active admin, and NOT_FOUND for unknown clients', async () => {
    const last = await t.admin.raw(RevokeClientDocument, { clientId: ADMIN_ID });
    expect(codeOf(last.body)).toBe('CONFLICT');
    const missing = await t.admin.raw(RevokeClientDocument, { clientId: 'never-was' });
    expect(codeOf(missing.body)).toBe('NOT_FOUND');
  });
});

describe('brute force on issueToken', () => {
  let r: TestApp;
  beforeAll(async () => {
    // Addresses come from X-Forwarded-For (one trusted proxy), so one test machine can be many callers.
    r = await startTestApp({ SLUICE_AUTH_MAX_FAILURES_PER_MINUTE: '5', SLUICE_TRUST_PROXY_HOPS: '1' });
  });

  async function issue(clientId: string, clientSecret: string, address: string) {
    const res = await fetch(`${r.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-forwarded-for': address },
      body: JSON.stringify({
        query: 'mutation($id: String!, $secret: String!) { issueToken(clientId: $id, clientSecret: $secret) { accessToken } }',
        variables: { id: clientId, secret: clientSecret },
      }),
    });
    const body = (await res.json()) as { data?: unknown; errors?: Array<{ message: string; extensions: Record<string, unknown> }> };
    return { status: res.status, retryAfter: res.headers.get('retry-after'), body, code: codeOf(body) };
  }

  it('counts 20 parallel wrong secrets for one client id before any finishes: only the limit is verified, the rest get RATE_LIMITED with a retry hint', async () => {
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => issue(ADMIN_ID, `wrong-secret-${i}`, `198.51.100.${i + 1}`)));
    const codes = results.map((x) => x.code);
    expect(
      codes.filter((c) => c === 'UNAUTHENTICATED'),
      JSON.stringify(codes),
    ).toHaveLength(5);
    expect(
      codes.filter((c) => c === 'RATE_LIMITED'),
      JSON.stringify(codes),
    ).toHaveLength(15);
    const limited = results.find((x) => x.code === 'RATE_LIMITED')!;
    const ext = limited.body.errors![0]!.extensions;
    expect(ext).toEqual({ code: 'RATE_LIMITED', retryAfterSeconds: expect.any(Number) });
    expect(ext['retryAfterSeconds']).toBeGreaterThanOrEqual(1);
    expect(ext['retryAfterSeconds']).toBeLessThanOrEqual(60);
    expect(limited.retryAfter).toBe(String(ext['retryAfterSeconds']));
    expect(limited.body.errors![0]!.message).toMatch(/retry in \d+ s/);
    // The client id stays limited from a fresh address, even with the right secret, for the window.
    const again = await issue(ADMIN_ID, ADMIN_SECRET, '203.0.113.77');
    expect(again.code, JSON.stringify(again.body)).toBe('RATE_LIMITED');
    // Other client ids are not affected.
    const created = await r.admin.request(CreateClientDocument, { input: { name: 'Other', roles: ['VIEWER'] } });
    const other = await issue(created.createClient.client.clientId, created.createClient.clientSecret, '203.0.113.78');
    expect(other.code, JSON.stringify(other.body)).toBeUndefined();
  });

  it('limits one address across client ids, and IPv6 callers by their /64', async () => {
    for (let i = 0; i < 5; i++) expect((await issue(`guess-${i}`, 'nope-nope-nope', '192.0.2.10')).code).toBe('UNAUTHENTICATED');
    const sixth = await issue('guess-6', 'nope-nope-nope', '192.0.2.10');
    expect(sixth.code, JSON.stringify(sixth.body)).toBe('RATE_LIMITED');
    expect(Number(sixth.retryAfter)).toBeGreaterThanOrEqual(1);
    expect((await issue('guess-7', 'nope-nope-nope', '192.0.2.11')).code).toBe('UNAUTHENTICATED');

    for (let i = 0; i < 5; i++) expect((await issue(`v6-${i}`, 'nope-nope-nope', `2001:db8:1:2::${i + 1}`)).code).toBe('UNAUTHENTICATED');
    expect((await issue('v6-x', 'nope-nope-nope', '2001:db8:1:2:ffff::9')).code).toBe('RATE_LIMITED');
    expect((await issue('v6-y', 'nope-nope-nope', '2001:db8:1:3::1')).code).toBe('UNAUTHENTICATED');
  });

  it('does not count successful exchanges', async () => {
    const created = await r.admin.request(CreateClientDocument, { input: { name: 'Busy', roles: ['VIEWER'] } });
    const { clientId, clientSecret } = { clientId: created.createClient.client.clientId, clientSecret: created.createClient.clientSecret };
    for (let i = 0; i < 8; i++) expect((await issue(clientId, clientSecret, '192.0.2.50')).code).toBeUndefined();
  });
});

describe('bounded concurrent secret verification', () => {
  it('refuses calls beyond the verification queue at once with RATE_LIMITED, and serves the others', async () => {
    const r = await startTestApp({
      SLUICE_AUTH_MAX_CONCURRENT_VERIFICATIONS: '1',
      SLUICE_AUTH_MAX_QUEUED_VERIFICATIONS: '1',
      SLUICE_AUTH_MAX_FAILURES_PER_MINUTE: '1000',
    });
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) => r.anon.raw(IssueTokenDocument, { clientId: `parallel-${i}`, clientSecret: 'nope-nope-nope' })),
    );
    const codes = results.map((x) => codeOf(x.body));
    // Each verification takes tens of milliseconds; twelve sent at once cannot all fit one slot and one place in line.
    expect(codes.filter((c) => c === 'RATE_LIMITED').length, JSON.stringify(codes)).toBeGreaterThan(0);
    expect(codes.filter((c) => c === 'UNAUTHENTICATED').length, JSON.stringify(codes)).toBeGreaterThanOrEqual(2);
    expect(
      codes.every((c) => c === 'RATE_LIMITED' || c === 'UNAUTHENTICATED'),
      JSON.stringify(codes),
    ).toBe(true);
    const limited = results.find((x) => codeOf(x.body) === 'RATE_LIMITED')!;
    expect(limited.body.errors![0]!.extensions).toEqual({ code: 'RATE_LIMITED', retryAfterSeconds: 1 });
  });
});
