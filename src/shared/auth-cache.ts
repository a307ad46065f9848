import { CLOCK_SKEW_SECONDS, type Viewer } from './auth';
import { BoundedMap } from './bounded-map';

/** Verified tokens remembered at most; the oldest is dropped first. */
export const MAX_CACHED_TOKENS = 4096;
/** Clients whose active state is remembered at most; the oldest is dropped first. */
export const MAX_CACHED_CLIENTS = 4096;

/**
 * What one process remembers of the callers it authenticated, so that a read does not verify the
 * same token's HMAC and read the same client row on every request (measured: the client row's
 * query was about a fifth of an authenticated `files(first: 10)` read's CPU, and the HMAC check
 * another ~5 %).
 *
 * - A verified token maps to its viewer until the token expires, by the same rule jsonwebtoken
 *   applies (refused once `now >= exp + CLOCK_SKEW_SECONDS`, whole seconds). Only tokens that
 *   verified are kept: a forged or expired token is checked in full every time.
 * - A client seen active is trusted for `clientTtlMs` at most. `forget(clientId)` (a revocation
 *   on this instance, or its NOTIFY from another one) and `clear()` (the LISTEN connection came
 *   back: a NOTIFY may have been missed) end that at once. A check that started before a forget
 *   never stores its (possibly stale) answer. So a revoked client is refused at once on every
 *   instance that heard the NOTIFY, and within `clientTtlMs` when it was revoked without one.
 *   0 turns the client cache off (the row is read on every request).
 */
export class AuthCache {
  private readonly tokens = new BoundedMap<string, Viewer>(MAX_CACHED_TOKENS);
  /** clientId -> when it was seen active (performance.now()). */
  private readonly active = new BoundedMap<string, number>(MAX_CACHED_CLIENTS);
  /** Bumped by every forget and clear: a check that saw another revision stores nothing. */
  private revision = 0;

  constructor(
    private readonly clientTtlMs: number,
    private readonly now: () => number = () => performance.now(),
    private readonly wallSeconds: () => number = () => Math.floor(Date.now() / 1000),
  ) {}

  /** The viewer of a token verified before and not expired since, else undefined. */
  viewer(token: string): Viewer | undefined {
    const v = this.tokens.get(token);
    if (!v) return undefined;
    if (this.wallSeconds() >= v.exp + CLOCK_SKEW_SECONDS) {
      this.tokens.delete(token);
      return undefined;
    }
    return { ...v, roles: [...v.roles] };
  }

  rememberToken(token: string, viewer: Viewer): void {
    this.tokens.set(token, { ...viewer, roles: [...viewer.roles] });
  }

  /** True when `clientId` was seen active less than clientTtlMs ago and not forgotten since. */
  isActive(clientId: string): boolean {
    const at = this.active.get(clientId);
    if (at === undefined) return false;
    if (this.now() - at < this.clientTtlMs) return true;
    this.active.delete(clientId);
    return false;
  }

  /** A token for rememberActive: the revision when a check of the client row started. */
  startCheck(): number {
    return this.revision;
  }

  /** Records that the row read since `startCheck()` returned `check` showed the client active. */
  rememberActive(clientId: string, check: number): void {
    if (this.clientTtlMs <= 0 || check !== this.revision) return;
    this.active.delete(clientId);
    this.active.set(clientId, this.now());
  }

  /** The client was revoked: check its row again from now on. */
  forget(clientId: string): void {
    this.revision++;
    this.active.delete(clientId);
  }

  /** A revocation may have been missed: check every client's row again. */
  clear(): void {
    this.revision++;
    this.active.clear();
  }
}
