import { GraphQLError } from 'graphql';
import { codeValues } from './codes';

/**
 * Every `extensions.code` a client can receive. Clients branch on these, never on messages.
 * Closed: the error formatter masks anything else as INTERNAL_SERVER_ERROR.
 */
export const ERROR_CODES = {
  UNAUTHENTICATED: 'No valid token: missing, expired, forged, wrong audience or issuer, unsigned, revoked client.',
  FORBIDDEN: 'The token is valid but its roles do not allow the operation.',
  BAD_USER_INPUT: 'An argument is malformed or out of range.',
  BAD_REQUEST: 'The request could not be read (multipart errors, CSRF preflight missing).',
  GRAPHQL_PARSE_FAILED: 'The document does not parse.',
  GRAPHQL_VALIDATION_FAILED: 'The document does not validate against the schema or exceeds depth/alias/cost limits.',
  OPERATION_RESOLUTION_FAILURE: 'The operation name does not match an operation in the document.',
  BAD_HTTP_METHOD: 'Wrong HTTP verb for the operation (mutation over GET).',
  PERSISTED_QUERY_NOT_SUPPORTED: 'Persisted queries are not supported.',
  PERSISTED_QUERY_NOT_FOUND: 'The persisted query hash is unknown (persisted queries are not supported).',
  NOT_FOUND: 'The thing named does not exist or the viewer may not see it.',
  CONFLICT: 'The request conflicts with stored state (duplicate id, illegal state change).',
  PAYLOAD_TOO_LARGE: 'A file or request exceeds a configured limit.',
  RATE_LIMITED: 'Too many failed attempts (wrong client secrets, bad upload URL tokens) or verifications at once; retry after `extensions.retryAfterSeconds`.',
  REQUEST_TIMEOUT:
    'An upload body stopped arriving for longer than SLUICE_UPLOAD_IDLE_TIMEOUT_MS (HTTP 408), or a dry-run diff ran past SLUICE_DRY_RUN_DIFF_TIMEOUT_MS (reason DIFF_TIMEOUT).',
  STORAGE_FULL: 'The file store has no room left (disk full or quota); nothing was stored, retry later (HTTP 507).',
  SERVICE_UNAVAILABLE: 'A dependency (database) is not reachable right now; retrying later may work.',
  INTERNAL_SERVER_ERROR: 'Anything unexpected. Details are logged, never sent.',
} as const;
export type ErrorCode = keyof typeof ERROR_CODES;
export const ErrorCode = codeValues(ERROR_CODES);

const KNOWN_CODES = new Set<string>(Object.values(ErrorCode));

export function isKnownCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && KNOWN_CODES.has(code);
}

/** Base of every error Sluice raises on purpose. `details` must be safe to show to clients. */
export class SluiceError extends GraphQLError {
  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(message, { extensions: { code, ...(details ?? {}) } });
    this.name = 'SluiceError';
  }
  get code(): ErrorCode {
    return this.extensions['code'] as ErrorCode;
  }
}

export class UnauthenticatedError extends SluiceError {
  constructor(message = 'A valid bearer token is required') {
    super(ErrorCode.UNAUTHENTICATED, message);
  }
}

export class ForbiddenError extends SluiceError {
  constructor(message: string) {
    super(ErrorCode.FORBIDDEN, message);
  }
}

export class BadInputError extends SluiceError {
  constructor(message: string, details?: Record<string, unknown>) {
    super(ErrorCode.BAD_USER_INPUT, message, details);
  }
}

export class NotFoundError extends SluiceError {
  constructor(what: string, id: string) {
    super(ErrorCode.NOT_FOUND, `${what} ${JSON.stringify(id)} not found`, { id });
  }
}

export class ConflictError extends SluiceError {
  constructor(message: string, details?: Record<string, unknown>) {
    super(ErrorCode.CONFLICT, message, details);
  }
}

export class PayloadTooLargeError extends SluiceError {
  constructor(message: string, details?: Record<string, unknown>) {
    super(ErrorCode.PAYLOAD_TOO_LARGE, message, details);
  }
}

/**
 * Too many failures or attempts at once. Over HTTP the response also carries `Retry-After`
 * (Apollo turns `extensions.http` into response headers; the formatter strips it from the body).
 */
export class RateLimitedError extends SluiceError {
  constructor(message: string, retryAfterSeconds: number) {
    super(ErrorCode.RATE_LIMITED, message, {
      retryAfterSeconds,
      http: { headers: new Map([['retry-after', String(retryAfterSeconds)]]) },
    });
  }
  get retryAfterSeconds(): number {
    return this.extensions['retryAfterSeconds'] as number;
  }
}
export class StorageFullError extends SluiceError {
  constructor() {
    super(ErrorCode.STORAGE_FULL, 'The file store is full; nothing was stored. Try again later');
  }
}

/**
 * Sets the HTTP status a request-level failure answers with. Apollo reads `extensions.http` from
 * errors thrown in resolvers and removes it from the response; formatError strips it as well.
 */
export function withHttpStatus<T extends SluiceError>(err: T, status: number): T {
  (err.extensions as Record<string, unknown>)['http'] = { status };
  return err;
}

/**
 * The SluiceError that caused `err`, looking through `cause` links: a stream consumer (storage)
 * wraps the error its source stream (the upload body) failed with, and that one names the reason.
 */
export function sluiceErrorIn(err: unknown): SluiceError | undefined {
  for (let e = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof SluiceError) return e;
  }
  return undefined;
}
