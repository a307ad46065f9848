import { unwrapResolverError } from '@apollo/server/errors';
import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import { ErrorCode, SluiceError, isKnownCode } from '../shared/errors';
import type { Logger } from '../shared/logger';

const MASKED_MESSAGE = 'Internal server error';

/**
 * The one place errors leave the service (HTTP and WebSocket). Errors Sluice raised on purpose and
 * GraphQL's own request errors pass with their code; anything else is logged and masked, so no
 * stack trace, SQL or file path ever reaches a client.
 */
export function formatError(log: Logger, formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError {
  const original = unwrapResolverError(error);
  const base = { message: formatted.message, locations: formatted.locations, path: formatted.path };
  if (original instanceof SluiceError) {
    return { ...base, extensions: stripStack(original.extensions) };
  }
  const code = formatted.extensions?.['code'];
  // A GraphQLError that did not wrap a foreign exception is a request error from graphql-js/Apollo.
  const isRequestError = original instanceof GraphQLError && !(original.originalError && !(original.originalError instanceof GraphQLError));
  if (isKnownCode(code) && code !== ErrorCode.INTERNAL_SERVER_ERROR && (isRequestError || !(original instanceof Error))) {
    return { ...base, extensions: { code } };
  }
  if (!code && isRequestError && !formatted.path) {
    // graphql-js validation/coercion errors raised outside Apollo (WebSocket path) carry no code.
    return { ...base, extensions: { code: ErrorCode.GRAPHQL_VALIDATION_FAILED } };
  }
  log.error({ err: original, path: formatted.path }, 'unexpected error');
  return { message: MASKED_MESSAGE, locations: formatted.locations, path: formatted.path, extensions: { code: ErrorCode.INTERNAL_SERVER_ERROR } };
}

function stripStack(extensions: Record<string, unknown>): Record<string, unknown> {
  // `http` (status and headers for Apollo, e.g. Retry-After, or the status withHttpStatus asked for) is transport, not for clients.
  const { stacktrace: _stack, exception: _exception, http: _http, ...rest } = extensions;
  return rest;
}
