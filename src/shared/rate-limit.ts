/**
 * In-process limits that make guessing secrets cost the guesser: a failure counter per key over a
 * sliding minute, and a semaphore that bounds expensive verifications running at once.
 *
 * Why in process: the CPU these guard is the process's own, and with N instances behind a load
 * balancer an attacker gets at most N times the limit, still hopeless against 256-bit secrets.
 */

/** A refusal: try again in `retryAfterSeconds` (at least 1). */
export interface Refusal {
  retryAfterSeconds: number;
}

/** One attempt counted against its keys until it settles. */
export interface Attempt {
  /** The attempt succeeded: it no longer counts. */
  succeeded(): void;
  /** The attempt failed: it keeps counting for the window. */
  failed(): void;
}

export interface FailureLimiterOptions {
  /** Failures (and attempts still running) allowed per key in any window. */
  maxFailures: number;
  /** Window length, in milliseconds. */
  windowMs: number;
  /** Keys tracked at most; beyond it the oldest are forgotten (memory stays bounded under key floods). */
  maxKeys?: number;
  now?: () => number;
}

interface Entry {
  /** When each counted failure happened, oldest first. */
  failures: number[];
  /** Attempts started and not settled yet. */
  running: number;
}

/**
 * Counts failures per key in a sliding window. An attempt counts from the moment it starts (so
 * 20 parallel guesses are counted before any of them finishes), and stops counting if it succeeds.
 */
export class FailureLimiter {
  private readonly entries = new Map<string, Entry>();
  private readonly maxKeys: number;
  private readonly now: () => number;

  constructor(private readonly options: FailureLimiterOptions) {
    this.maxKeys = options.maxKeys ?? 10_000;
    this.now = options.now ?? Date.now;
  }

  /** The refusal for the first key over its limit, or undefined when every key may try now. */
  check(keys: readonly string[]): Refusal | undefined {
    const now = this.now();
    let worst: number | undefined;
    for (const key of keys) {
      const e = this.entries.get(key);
      if (!e) continue;
      this.prune(e, now);
      if (e.failures.length + e.running < this.options.maxFailures) continue;
      // Running attempts settle within seconds; the oldest failure leaves the window at a known time.
      const freeAt =
        e.failures.length >= this.options.maxFailures ? e.failures[e.failures.length - this.options.maxFailures]! + this.options.windowMs : now + 1000;
      worst = Math.max(worst ?? 0, freeAt);
    }
    return worst === undefined ? undefined : { retryAfterSeconds: Math.max(1, Math.ceil((worst - now) / 1000)) };
  }

  /** Starts an attempt on `keys`, or refuses it when one of them is over its limit. */
  begin(keys: readonly string[]): Attempt | Refusal {
    const refused = this.check(keys);
    if (refused) return refused;
    const entries = keys.map((k) => this.entry(k));
    for (const e of entries) e.running++;
    let settled = false;
    const settle = (failed: boolean) => {
      if (settled) return;
      settled = true;
      const at = this.now();
      for (const e of entries) {
        e.running--;
        if (failed) e.failures.push(at);
      }
    };
    return { succeeded: () => settle(false), failed: () => settle(true) };
  }

  /** Counts one failure on each key (for checks too cheap to need `begin`). */
  fail(keys: readonly string[]): void {
    const at = this.now();
    for (const k of keys) this.entry(k).failures.push(at);
  }

  private entry(key: string): Entry {
    let e = this.entries.get(key);
    if (e) {
      // Re-insert so Map order is "least recently used first" for eviction.
      this.entries.delete(key);
    } else {
      e = { failures: [], running: 0 };
      if (this.entries.size >= this.maxKeys) this.evict();
    }
    this.entries.set(key, e);
    return e;
  }

  private prune(e: Entry, now: number): void {
    const cutoff = now - this.options.windowMs;
    let drop = 0;
    while (drop < e.failures.length && e.failures[drop]! <= cutoff) drop++;
    if (drop) e.failures.splice(0, drop);
    // Never keep more timestamps than the limit needs.
    if (e.failures.length > this.options.maxFailures) e.failures.splice(0, e.failures.length - this.options.maxFailures);
  }

  private evict(): void {
    const now = this.now();
    for (const [key, e] of this.entries) {
      this.prune(e, now);
      if (e.failures.length === 0 && e.running === 0) this.entries.delete(key);
    }
    // Still full: forget the least recently used keys (a flood of distinct keys, each tried once).
    for (const key of this.entries.keys()) {
      if (this.entries.size < this.maxKeys) break;
      if (this.entries.get(key)!.running === 0) this.entries.delete(key);
    }
  }
}

/**
 * At most `max` holders at once; up to `maxWaiting` more wait in line, anyone beyond is refused
 * at once (so queued work, and its latency, stays bounded).
 */
export class Semaphore {
  private active = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(
    private readonly max: number,
    private readonly maxWaiting: number,
  ) {}

  /** Runs `fn` holding a slot; undefined (without running it) when the line is full. */
  async run<T>(fn: () => Promise<T>): Promise<{ value: T } | undefined> {
    if (this.active >= this.max) {
      if (this.waiting.length >= this.maxWaiting) return undefined;
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.active++;
    }
    try {
      return { value: await fn() };
    } finally {
      const next = this.waiting.shift();
      // The slot passes straight to the next in line; `active` only drops when nobody waits.
      if (next) next();
      else this.active--;
    }
  }
}

/**
 * The key a remote address is counted under: IPv4 (also IPv4-mapped IPv6) as is, IPv6 by its /64,
 * because one host usually holds a whole /64 and could otherwise rotate addresses at will.
 */
export function addressKey(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (!address.includes(':')) return address;
  const [head = '', tail] = address.split('%')[0]!.toLowerCase().split('::') as [string, string | undefined];
  const left = head ? head.split(':') : [];
  const right = tail === undefined ? [] : tail ? tail.split(':') : [];
  const groups = tail === undefined ? left : [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right];
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}
