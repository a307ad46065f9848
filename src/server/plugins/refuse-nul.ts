import type { ApolloServerPlugin } from '@apollo/server';
import { visit, type DocumentNode, type OperationDefinitionNode, type TypeNode } from 'graphql';
import { ErrorCode, SluiceError } from '../../shared/errors';

/** Deeper values than this are not walked (the query limits refuse such documents anyway). */
const MAX_DEPTH = 64;

/**
 * Where the first NUL character is in a variables value (a string or an object key), as a path
 * such as `variables.input.name`; null when there is none. PostgreSQL text and jsonb cannot hold
 * U+0000, so no user-supplied string may carry one to a query.
 */
export function nulPath(value: unknown, path = 'variables', depth = 0): string | null {
  if (typeof value === 'string') return value.includes('\u0000') ? path : null;
  if (typeof value !== 'object' || value === null || depth > MAX_DEPTH) return null;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = nulPath(value[i], `${path}[${i}]`, depth + 1);
      if (found) return found;
    }
    return null;
  }
  for (const [key, v] of Object.entries(value)) {
    if (key.includes('\u0000')) return `${path} (a key)`;
    const found = nulPath(v, `${path}.${key}`, depth + 1);
    if (found) return found;
  }
  return null;
}

/**
 * Documents already walked. Apollo hands every request of one query text the same parsed
 * document (its document cache), so the walk (~4 % of a small read's CPU) runs once per text.
 */
const walked = new WeakMap<DocumentNode, boolean>();

/** The same for string literals written in the document itself. */
export function documentHasNul(document: DocumentNode): boolean {
  let found = walked.get(document);
  if (found === undefined) {
    found = walkForNul(document);
    walked.set(document, found);
  }
  return found;
}

function walkForNul(document: DocumentNode): boolean {
  let found = false;
  visit(document, {
    StringValue(node) {
      if (node.value.includes('\u0000')) found = true;
    },
    ObjectField(node) {
      if (node.name.value.includes('\u0000')) found = true;
    },
  });
  return found;
}

const namedType = (t: TypeNode): string => (t.kind === 'NamedType' ? t.name.value : namedType(t.type));

/**
 * The variables to check. `JSON` variables are left to the service that reads them, which names
 * the exact place (a spec's NUL is an `INVALID_CHARACTER` problem with its JSON path).
 */
export function checkedVariables(operation: OperationDefinitionNode | null | undefined, variables: Record<string, unknown>): Record<string, unknown> {
  const json = jsonVariables(operation);
  if (json.size === 0) return variables;
  return Object.fromEntries(Object.entries(variables).filter(([k]) => !json.has(k)));
}

const jsonVariablesOf = new WeakMap<OperationDefinitionNode, Set<string>>();
const NONE = new Set<string>();

function jsonVariables(operation: OperationDefinitionNode | null | undefined): Set<string> {
  if (!operation) return NONE;
  let json = jsonVariablesOf.get(operation);
  if (!json) {
    json = new Set((operation.variableDefinitions ?? []).filter((d) => namedType(d.type) === 'JSON').map((d) => d.variable.name.value));
    jsonVariablesOf.set(operation, json);
  }
  return json;
}

/** The error for a NUL in an operation: BAD_USER_INPUT naming where it is. */
export function nulError(where: string): SluiceError {
  return new SluiceError(ErrorCode.BAD_USER_INPUT, `${where} contains a NUL character (U+0000), which no text Sluice stores may hold`, { field: where });
}

/** Refuses, before anything executes, an HTTP operation whose variables or literals hold a NUL. */
export function refuseNul(): ApolloServerPlugin {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ request, document, operation, response }) {
          const where = nulPath(checkedVariables(operation, request.variables ?? {})) ?? (documentHasNul(document) ? 'a string in the query' : null);
          if (!where) return;
          response.http.status = 400;
          throw nulError(where);
        },
      };
    },
  };
}
