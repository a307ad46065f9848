import { describe, expect, it } from 'vitest';
import { AuthCache, MAX_CACHED_CLIENTS, MAX_CACHED_TOKENS } from '../../src/shared/auth-cache';
import type { Viewer } from '../../src/shared/auth';
import { Role } from '../../src/shared/roles';

function clocks() {
  const c = { ms: 0, s: 1_000_000 };
  return { c, now: () => c.ms, wall: () => c.s };
}

const viewer = (exp: number, clientId = 'c1'): Viewer => ({ clientId, roles: [Role.VIEWER], exp });

describe('AuthCache tokens', () => {
  it('returns a verified token until exp + 5 s, by the same whole-second rule as jsonwebtoken, then forgets it', () => {
    const { c, now, wall } = clocks();
    const cache = new AuthCache(1000, now, wall);
    cache.rememberToken('t', viewer(c.s + 10));
    expect(cache.viewer('t')).toEqual(viewer(c.s + 10));
    c.s += 14; // exp + 4: still inside the clock tolerance
    expect(cache.viewer('t')?.clientId).toBe('c1');
    c.s += 1; // exp + 5: jsonwebtoken refuses it
    expect(cache.viewer('t')).toBeUndefined();
    c.s -= 10; // and it is gone, not merely hidden
    expect(cache.viewer('t')).toBeUndefined();
  });

  it('knows only the exact token string, and callers cannot change what it holds', () => {
    const { c, now, wall } = clocks();
    const cache = new AuthCache(1000, now, wall);
    cache.rememberToken('abc', viewer(c.s + 60));
    expect(cache.viewer('abd')).toBeUndefined();
    expect(cache.viewer('abc ')).toBeUndefined();
    const got = cache.viewer('abc')!;
    got.roles.push(Role.ADMIN);
    got.clientId = 'other';
    expect(cache.viewer('abc')).toEqual(viewer(c.s + 60));
  });

  it(`keeps at most ${MAX_CACHED_TOKENS} tokens, dropping the oldest`, () => {
    const { c, now, wall } = clocks();
    const cache = new AuthCache(1000, now, wall);
    for (let i = 0; i <= MAX_CACHED_TOKENS; i++) cache.rememberToken(`t${i}`, viewer(c.s + 60));
    expect(cache.viewer('t0')).toBeUndefined();
    expect(cache.viewer('t1')).toBeDefined();
    expect(cache.viewer(`t${MAX_CACHED_TOKENS}`)).toBeDefined();
  });
});

describe('AuthCache clients', () => {
  it('trusts a client seen active for the TTL only', () => {
    const { c, now, wall } = clocks();
    const cache = new AuthCache(1000, now, wall);
    expect(cache.isActive('c1')).toBe(false);
    cache.rememberActive('c1', cache.startCheck());
    c.ms += 999;
    expect(cache.isActive('c1')).toBe(true);
    c.ms += 1;
    expect(cache.isActive('c1')).toBe(false);
  });

  it('forget and clear end the trust at once', () => {
    const { now, wall } = clocks();
    const cache = new AuthCache(60_000, now, wall);
    cache.rememberActive('c1', cache.startCheck());
    cache.rememberActive('c2', cache.startCheck());
    cache.forget('c1');
    expect(cache.isActive('c1')).toBe(false);
    expect(cache.isActive('c2')).toBe(true);
    cache.clear();
    expect(cache.isActive('c2')).toBe(false);
  });

  it('never stores the answer of a check that started before a revocation was heard', () => {
    const { now, wall } = clocks();
    const cache = new AuthCache(60_000, now, wall);
    const before = cache.startCheck(); // the row is read: still active...
    cache.forget('c1'); // ...the revocation commits and is heard meanwhile
    cache.rememberActive('c1', before);
    expect(cache.isActive('c1')).toBe(false);
    const beforeClear = cache.startCheck();
    cache.clear();
    cache.rememberActive('c2', beforeClear);
    expect(cache.isActive('c2')).toBe(false);
    cache.rememberActive('c1', cache.startCheck());
    expect(cache.isActive('c1')).toBe(true);
  });

  it('with a TTL of 0 remembers nothing', () => {
    const { now, wall } = clocks();
    const cache = new AuthCache(0, now, wall);
    cache.rememberActive('c1', cache.startCheck());
    expect(cache.isActive('c1')).toBe(false);
  });

  it(`keeps at most ${MAX_CACHED_CLIENTS} clients, dropping the oldest`, () => {
    const { now, wall } = clocks();
    const cache = new AuthCache(60_000, now, wall);
    for (let i = 0; i <= MAX_CACHED_CLIENTS; i++) cache.rememberActive(`c${i}`, cache.startCheck());
    expect(cache.isActive('c0')).toBe(false);
    expect(cache.isActive('c1')).toBe(true);
    expect(cache.isActive(`c${MAX_CACHED_CLIENTS}`)).toBe(true);
  });
});
