import { createSecretKey, type KeyObject } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { ErrorCode, SluiceError, UnauthenticatedError } from './errors';
import { isRole, type Role } from './roles';

/** Who is calling: resolved from a verified token, re-checked against the client table. */
export interface Viewer {
  /** `api_clients.client_id`, the token's `sub`. */
  clientId: string;
  roles: Role[];
  /** Token expiry, seconds since epoch. */
  exp: number;
}

/** Clock difference tolerated between the signer and this process, in seconds. */
export const CLOCK_SKEW_SECONDS = 5;

export interface TokenConfig {
  secret: string;
  issuer: string;
  audience: string;
  ttlSeconds: number;
}

/**
 * The secret as a KeyObject, made once per secret. Why: given a string, jsonwebtoken 9 first tries
 * `createPublicKey(secret)` on every sign and verify (to tell a PEM key from an HMAC secret), which
 * throws for a secret; measured, that attempt was ~9 % of the service's CPU at ~200 GraphQL
 * requests/s, the largest single cost of an authenticated read.
 */
const secretKeys = new Map<string, KeyObject>();
function secretKey(secret: string): KeyObject {
  let key = secretKeys.get(secret);
  if (!key) {
    key = createSecretKey(Buffer.from(secret, 'utf8'));
    if (secretKeys.size >= 16) secretKeys.clear();
    secretKeys.set(secret, key);
  }
  return key;
}

export function signToken(cfg: TokenConfig, clientId: string, roles: Role[]): { token: string; expiresAt: Date } {
  const token = jwt.sign({ roles }, secretKey(cfg.secret), {
    algorithm: 'HS256',
    expiresIn: cfg.ttlSeconds,
    issuer: cfg.issuer,
    audience: cfg.audience,
    subject: clientId,
  });
  const { exp } = jwt.decode(token) as { exp: number };
  return { token, expiresAt: new Date(exp * 1000) };
}

/**
 * Verifies signature (HS256 only: `alg: none` and algorithm swaps fail), expiry, issuer and audience.
 * Throws UnauthenticatedError with a reason clients may show; never the library's raw message.
 */
export function verifyToken(cfg: TokenConfig, token: string): Viewer {
  let payload: jwt.JwtPayload;
  try {
    const decoded = jwt.verify(token, secretKey(cfg.secret), {
      algorithms: ['HS256'],
      issuer: cfg.issuer,
      audience: cfg.audience,
      clockTolerance: CLOCK_SKEW_SECONDS,
    });
    if (typeof decoded === 'string') throw new UnauthenticatedError('Token payload must be a JSON object');
    payload = decoded;
  } catch (err) {
    if (err instanceof SluiceError) throw err;
    if (err instanceof jwt.TokenExpiredError) throw new UnauthenticatedError('Token expired');
    throw new UnauthenticatedError('Token is invalid');
  }
  const roles = Array.isArray(payload['roles']) ? payload['roles'].filter((r): r is Role => typeof r === 'string' && isRole(r)) : [];
  if (typeof payload.sub !== 'string' || typeof payload.exp !== 'number') {
    throw new UnauthenticatedError('Token is missing sub or exp');
  }
  // A token signed with the right secret must still be one Sluice could have issued: an `exp` of
  // 1e20 would otherwise outlive any revocation window and key rotation.
  if (typeof payload.iat !== 'number' || !Number.isFinite(payload.iat)) throw new UnauthenticatedError('Token is missing iat');
  const nowSeconds = Date.now() / 1000;
  if (payload.iat > nowSeconds + CLOCK_SKEW_SECONDS) throw new UnauthenticatedError('Token is issued in the future');
  if (payload.exp - payload.iat > cfg.ttlSeconds + CLOCK_SKEW_SECONDS) {
    throw new UnauthenticatedError(`Token lifetime exceeds the ${cfg.ttlSeconds} s allowed`);
  }
  return { clientId: payload.sub, roles, exp: payload.exp };
}

/** Extracts the token from `Authorization: Bearer <token>`; undefined when the header is absent. */
export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!match) throw new SluiceError(ErrorCode.UNAUTHENTICATED, 'Authorization header must be "Bearer <token>"');
  return match[1];
}
