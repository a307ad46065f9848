import { describe, expect, it } from 'vitest';
import { addressKey, FailureLimiter, Semaphore } from '../../src/shared/rate-limit';

describe('FailureLimiter', () => {
  it('refuses once failures and running attempts reach the limit, and frees keys as failures leave the window', () => {
    let now = 1_000_000;
    const l = new FailureLimiter({ maxFailures: 3, windowMs: 60_000, now: () => now });
    const a = l.begin(['k']);
    const b = l.begin(['k']);
    const c = l.begin(['k']);
    // Three running: a fourth is refused before any has finished.
    expect(l.begin(['k'])).toEqual({ retryAfterSeconds: 1 });
    if ('retryAfterSeconds' in a || 'retryAfterSeconds' in b || 'retryAfterSeconds' in c) throw new Error('expected attempts');
    a.failed();
    now += 10_000;
    b.failed();
    c.succeeded();
    expect(l.check(['k'])).toBeUndefined();
    l.fail(['k']);
    // Oldest failure (at 0 s) leaves the window at 60 s: 50 s from now.
    expect(l.check(['k'])).toEqual({ retryAfterSeconds: 50 });
    expect(l.check(['other'])).toBeUndefined();
    expect(l.check(['other', 'k'])).toEqual({ retryAfterSeconds: 50 });
    now += 50_000;
    expect(l.check(['k'])).toBeUndefined();
    now += 10_001;
    l.fail(['k']);
    expect(l.check(['k'])).toBeUndefined();
  });

  it('keeps memory bounded under a flood of keys', () => {
    const l = new FailureLimiter({ maxFailures: 1, windowMs: 60_000, maxKeys: 100 });
    for (let i = 0; i < 10_000; i++) l.fail([`k${i}`]);
    expect((l as unknown as { entries: Map<string, unknown> }).entries.size).toBeLessThanOrEqual(100);
    expect(l.check(['k9999'])).toBeDefined();
  });
});

describe('Semaphore', () => {
  it('runs at most max at once, queues maxWaiting, refuses the rest', async () => {
    const s = new Semaphore(2, 1);
    let active = 0;
    let peak = 0;
    const releases: Array<() => void> = [];
    const job = () =>
      s.run(async () => {
        peak = Math.max(peak, ++active);
        await new Promise<void>((r) => releases.push(r));
        active--;
        return 'done';
      });
    const runs = [job(), job(), job(), job()];
    expect(await runs[3]).toBeUndefined();
    while (releases.length) {
      releases.shift()!();
      await new Promise((r) => setImmediate(r));
    }
    expect(await Promise.all(runs.slice(0, 3))).toEqual([{ value: 'done' }, { value: 'done' }, { value: 'done' }]);
    expect(peak).toBe(2);
    expect(await s.run(async () => 1)).toEqual({ value: 1 });
  });
});

describe('addressKey', () => {
  it('keys IPv4 as is, IPv4-mapped IPv6 as IPv4, and IPv6 by /64', () => {
    expect(addressKey('192.0.2.1')).toBe('192.0.2.1');
    expect(addressKey('::ffff:192.0.2.1')).toBe('192.0.2.1');
    expect(addressKey('2001:db8:1:2::5')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:0db8:0001:0002:ffff:0:0:9')).toBe('2001:db8:1:2::/64');
    expect(addressKey('::1')).toBe('0:0:0:0::/64');
    expect(addressKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
  });
});
