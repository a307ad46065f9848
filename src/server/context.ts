import type { Viewer } from '../shared/auth';
import type { SluiceError } from '../shared/errors';
import type { Logger } from '../shared/logger';
import type { ResolverServices } from '../services';
import type { AccessNotes } from './access-log';

/** Per-operation context for HTTP and WebSocket alike. */
export interface Context {
  viewer: Viewer | null;
  /** Why the presented token was refused, reported by operations that need a viewer. */
  authError?: SluiceError;
  /** The caller's address (HTTP: the socket's, or X-Forwarded-For with SLUICE_TRUST_PROXY_HOPS), for rate limits. */
  remoteAddress?: string;
  /** Services only (no stores, database or settings): resolvers go through them. */
  services: ResolverServices;
  log: Logger;
  /** HTTP only: what the request's access line records (the operation, the client). */
  accessNotes?: AccessNotes;
}
