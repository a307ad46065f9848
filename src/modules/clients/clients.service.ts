import { BadInputError, ConflictError, NotFoundError, RateLimitedError, UnauthenticatedError } from '../../shared/errors';
import { addressKey, FailureLimiter, Semaphore } from '../../shared/rate-limit';
import { signToken, verifyToken, type TokenConfig, type Viewer } from '../../shared/auth';
import { AuthCache } from '../../shared/auth-cache';
import { generateSecret, hashSecret, verifySecret } from '../../shared/secrets';
import { isRole, type Role } from '../../shared/roles';
import type { Logger } from '../../shared/logger';
import type { ApiClientRow } from '../../db/schema';
import type { ClientsStore } from './clients.store';

export const CLIENT_ID_PATTERN = /^[A-Za-z0-9_.-]{3,64}$/;

export interface IssuedToken {
  accessToken: string;
  expiresAt: Date;
  roles: Role[];
}

export interface AuthLimits {
  /** Failed issueToken calls per client id and per remote address in any 60 s. */
  maxFailuresPerMinute: number;
  /** scrypt verifications running at once in this process. */
  maxConcurrentVerifications: number;
  /** issueToken calls waiting for a verification slot; more are refused at once. */
  maxQueuedVerifications: number;
  /** How long a client seen active is trusted without reading its row again (see AuthCache); 0: read it on every request. */
  clientCacheMs: number;
}

const DEFAULT_AUTH_LIMITS: AuthLimits = { maxFailuresPerMinute: 10, maxConcurrentVerifications: 2, maxQueuedVerifications: 32, clientCacheMs: 1000 };

/** Client registry and token exchange: the rules; SQL lives in ClientsStore. */
export class ClientsService {
  private readonly failures: FailureLimiter;
  private readonly verifications: Semaphore;
  private readonly cache: AuthCache;

  constructor(
    private readonly store: ClientsStore,
    private readonly tokens: TokenConfig,
    private readonly log: Logger,
    limits: AuthLimits = DEFAULT_AUTH_LIMITS,
  ) {
    this.failures = new FailureLimiter({ maxFailures: limits.maxFailuresPerMinute, windowMs: 60_000 });
    this.verifications = new Semaphore(limits.maxConcurrentVerifications, limits.maxQueuedVerifications);
    this.cache = new AuthCache(limits.clientCacheMs);
  }

  /**
   * Why the limits: each try costs about 0.1 s of scrypt CPU, so unbounded parallel guesses are a
   * denial of service long before they are a guessing threat. A try counts against its client id
   * and its address from the moment it starts (parallel guesses are counted before any finishes)
   * and stops counting if it succeeds; over the limit, tries are refused before any scrypt runs.
   */
  async issueToken(clientId: string, clientSecret: string, remoteAddress?: string): Promise<IssuedToken> {
    // Ids no client can have share one key, so junk ids cannot grow the limiter's memory.
    const keys = [`client:${CLIENT_ID_PATTERN.test(clientId) ? clientId : '(invalid)'}`];
    if (remoteAddress) keys.push(`address:${addressKey(remoteAddress)}`);
    const attempt = this.failures.begin(keys);
    if ('retryAfterSeconds' in attempt) {
      this.log.warn({ clientId: keys[0], address: remoteAddress, retryAfterSeconds: attempt.retryAfterSeconds }, 'issueToken rate limited');
      throw new RateLimitedError(
        `Too many failed token requests for this client id or from this address; retry in ${attempt.retryAfterSeconds} s`,
        attempt.retryAfterSeconds,
      );
    }
    let failed = false;
    try {
      const client = CLIENT_ID_PATTERN.test(clientId) ? await this.store.findByClientId(clientId) : undefined;
      // Always run scrypt, even for unknown ids, so response time does not reveal which ids exist.
      const verified = await this.verifications.run(() => verifySecret(clientSecret, client?.secretHash));
      if (!verified) {
        throw new RateLimitedError('Too many token requests are being verified right now; retry in 1 s', 1);
      }
      if (!client || !verified.value || client.revokedAt) {
        failed = true;
        throw new UnauthenticatedError('Invalid client credentials');
      }
      const roles = client.roles.filter(isRole);
      const { token, expiresAt } = signToken(this.tokens, client.clientId, roles);
      return { accessToken: token, expiresAt, roles };
    } finally {
      // Only wrong credentials count; a full queue or a database fault is not the caller's guess.
      if (failed) attempt.failed();
      else attempt.succeeded();
    }
  }

  /** Verifies a bearer token and that its client still exists and is not revoked. */
  async authenticate(token: string): Promise<Viewer> {
    const viewer = this.verify(token);
    await this.assertActive(viewer.clientId);
    return viewer;
  }

  /**
   * The token's signature, issuer, audience and expiry only (no database read). A token that
   * verified before is not verified again until it expires (AuthCache).
   */
  verify(token: string): Viewer {
    const cached = this.cache.viewer(token);
    if (cached) return cached;
    const viewer = verifyToken(this.tokens, token);
    this.cache.rememberToken(token, viewer);
    return viewer;
  }

  /**
   * Throws UNAUTHENTICATED unless the client exists and is not revoked. A client seen active is
   * trusted for `clientCacheMs` unless a revocation is heard meanwhile (forgetClient).
   */
  async assertActive(clientId: string): Promise<void> {
    if (this.cache.isActive(clientId)) return;
    const check = this.cache.startCheck();
    const client = await this.store.findByClientId(clientId);
    if (!client || client.revokedAt) throw new UnauthenticatedError('Client is revoked or unknown');
    this.cache.rememberActive(clientId, check);
  }

  /**
   * A revocation was committed (here or, through its NOTIFY, on another instance): the client's
   * row is read again on its next request. `null`: revocations may have been missed (the LISTEN
   * connection came back), so every client's is.
   */
  forgetClient(clientId: string | null): void {
    if (clientId === null) this.cache.clear();
    else this.cache.forget(clientId);
  }

  async createClient(
    creator: Viewer | null,
    input: { clientId?: string | null; name: string; roles: Role[] },
  ): Promise<{ client: ApiClientRow; clientSecret: string }> {
    const clientId = input.clientId ?? `client-${generateSecret(9)}`;
    if (!CLIENT_ID_PATTERN.test(clientId)) {
      throw new BadInputError(`clientId ${JSON.stringify(clientId)} must be 3-64 characters of A-Z a-z 0-9 _ . -`, { field: 'clientId' });
    }
    const name = input.name.trim();
    if (name.length < 1 || name.length > 200) throw new BadInputError('name must be 1-200 characters', { field: 'name' });
    if (input.roles.length === 0) throw new BadInputError('roles must name at least one role', { field: 'roles' });
    const clientSecret = generateSecret();
    const client = await this.store.insert({
      clientId,
      name,
      secretHash: await hashSecret(clientSecret),
      roles: [...new Set(input.roles)],
      createdBy: creator?.clientId ?? null,
    });
    if (!client) throw new ConflictError(`clientId ${JSON.stringify(clientId)} already exists`, { field: 'clientId' });
    this.log.info({ clientId, roles: client.roles, by: creator?.clientId }, 'client created');
    return { client, clientSecret };
  }

  async revokeClient(by: Viewer, clientId: string): Promise<ApiClientRow> {
    const existing = await this.store.findByClientId(clientId);
    if (!existing) throw new NotFoundError('Client', clientId);
    if (!existing.revokedAt && existing.roles.includes('ADMIN') && (await this.store.countActiveAdmins()) <= 1) {
      throw new ConflictError('Cannot revoke the last active ADMIN client');
    }
    // The store notifies CLIENT_REVOKED_CHANNEL in the same transaction: every instance closes
    // the client's WebSockets once the revocation is committed, never before.
    const row = await this.store.revoke(clientId);
    this.forgetClient(clientId);
    if (!row) throw new NotFoundError('Client', clientId);
    this.log.info({ clientId, by: by.clientId }, 'client revoked');
    return row;
  }

  list(includeRevoked: boolean): Promise<ApiClientRow[]> {
    return this.store.list(includeRevoked);
  }

  /**
   * First start: when no client exists, create the admin from configuration, or generate one and
   * print its credentials once. Safe to race: the unique client id decides.
   */
  async bootstrap(admin: { clientId?: string; clientSecret?: string }, print: (msg: string) => void): Promise<void> {
    if ((await this.store.countAll()) > 0) return;
    const clientId = admin.clientId ?? 'admin';
    const clientSecret = admin.clientSecret ?? generateSecret();
    const created = await this.store.insert({
      clientId,
      name: 'Bootstrap admin',
      secretHash: await hashSecret(clientSecret),
      roles: ['ADMIN'],
      createdBy: null,
    });
    if (!created) return;
    if (admin.clientSecret) {
      this.log.info({ clientId }, 'bootstrap admin client created from configuration');
    } else {
      print(`\nSluice created an admin client. Its secret is shown this once:\n  clientId:     ${clientId}\n  clientSecret: ${clientSecret}\n`);
    }
  }
}
