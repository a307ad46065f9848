import { beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});

const post = (body: unknown, token?: string) =>
  fetch(`${t.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });

describe('GraphQL answers over HTTP', () => {
  it('carry cache-control: no-store, whether they succeed, fail or do not parse', async () => {
    const token = t.admin.options.token!;
    const ok = await post({ query: '{ files(first: 10) { totalCount nodes { id } } }' }, token);
    expect(ok.status).toBe(200);
    expect(ok.headers.get('cache-control')).toBe('no-store');
    const refused = await post({ query: '{ files(first: 10) { totalCount } }' });
    expect(((await refused.json()) as { errors: Array<{ extensions: { code: string } }> }).errors[0]!.extensions.code).toBe('UNAUTHENTICATED');
    expect(refused.headers.get('cache-control')).toBe('no-store');
    const unparsable = await post({ query: '{ files(' }, token);
    expect(unparsable.status).toBe(400);
    expect(unparsable.headers.get('cache-control')).toBe('no-store');
  });
});
