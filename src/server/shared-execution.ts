import {
  createSourceEventStream,
  execute,
  getOperationAST,
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
  type GraphQLError,
  type GraphQLSchema,
  parse,
  validate,
  type ValidationRule,
} from 'graphql';

/** Distinct query texts whose parsed and validated document is kept per process. */
export const DOCUMENT_CACHE_SIZE = 500;
/** Longest query text that is cached (longer ones are parsed for each operation). */
const CACHED_QUERY_MAX_CHARS = 16 * 1024;

export type Parsed = { document: DocumentNode } | { syntaxError: string } | { validationErrors: readonly GraphQLError[] };

/**
 * Parses and validates a query text once for every operation that sends the same text: thousands
 * of clients subscribing with one query share one document (memory, and CPU at connect), and
 * subscriptions that share a document can share each event's execution (sharedSubscribe).
 * Validation depends only on the schema, the document and the rules, so its answer is cached too.
 */
export class DocumentCache {
  private readonly entries = new Map<string, Parsed>();

  constructor(
    private readonly schema: GraphQLSchema,
    private readonly rules: readonly ValidationRule[],
    private readonly maxTokens: number,
    private readonly size = DOCUMENT_CACHE_SIZE,
  ) {}

  get(query: string): Parsed {
    const hit = this.entries.get(query);
    if (hit) return hit;
    let parsed: Parsed;
    try {
      const document = parse(query, { maxTokens: this.maxTokens });
      const errors = validate(this.schema, document, this.rules);
      parsed = errors.length ? { validationErrors: errors } : { document };
    } catch (err) {
      parsed = { syntaxError: err instanceof Error ? err.message : 'Syntax error' };
    }
    if (query.length <= CACHED_QUERY_MAX_CHARS) {
      // Oldest first out: a client cycling through distinct queries cannot grow the map.
      if (this.entries.size >= this.size) this.entries.delete(this.entries.keys().next().value!);
      this.entries.set(query, parsed);
    }
    return parsed;
  }
}

/**
 * graphql-js's `subscribe`, except that one event delivered to many subscriptions of the same
 * document, operation and variables is executed once for all of them: the job feed hands the
 * same event object to every `jobUpdated` subscription of a job, and 5,000 of them cost one
 * execution per event instead of 5,000. Only for the root fields in `shareable`, whose result
 * depends on the event and the operation alone (not on the viewer, who was authorized when
 * subscribing). The results are shared read-only; they live as long as the event object.
 */
export function sharedSubscribe(shareable: ReadonlySet<string>): (args: ExecutionArgs) => Promise<AsyncIterableIterator<ExecutionResult> | ExecutionResult> {
  const documentIds = new WeakMap<DocumentNode, number>();
  let nextDocumentId = 0;
  const results = new WeakMap<object, Map<string, ExecutionResult | Promise<ExecutionResult>>>();

  return async (args) => {
    const source = await createSourceEventStream(args);
    if (!(Symbol.asyncIterator in source)) return source;
    const run = (event: unknown) => execute({ ...args, rootValue: event }) as ExecutionResult | Promise<ExecutionResult>;
    let map = run;
    const operation = getOperationAST(args.document, args.operationName);
    const fields = operation?.selectionSet.selections ?? [];
    if (fields.length > 0 && fields.every((s) => s.kind === 'Field' && shareable.has(s.name.value))) {
      let id = documentIds.get(args.document);
      if (id === undefined) documentIds.set(args.document, (id = nextDocumentId++));
      const key = `${id}\u0000${args.operationName ?? ''}\u0000${JSON.stringify(args.variableValues ?? {})}`;
      map = (event) => {
        if (typeof event !== 'object' || event === null) return run(event);
        let byKey = results.get(event);
        if (!byKey) results.set(event, (byKey = new Map()));
        let result = byKey.get(key);
        if (!result) byKey.set(key, (result = run(event)));
        return result;
      };
    }
    return mapEvents(source, map);
  };
}

/** Maps each event of `source` through `fn`; return() reaches the source at once (as graphql-js's own mapper). */
function mapEvents<T, R>(source: AsyncIterable<T>, fn: (event: T) => R | Promise<R>): AsyncIterableIterator<R> {
  const it = source[Symbol.asyncIterator]();
  const close = async () => {
    try {
      await it.return?.();
    } catch {
      // Keep the original error.
    }
  };
  return {
    async next() {
      const r = await it.next();
      if (r.done) return { value: undefined, done: true };
      try {
        return { value: await fn(r.value), done: false };
      } catch (err) {
        await close();
        throw err;
      }
    },
    async return() {
      await it.return?.();
      return { value: undefined, done: true };
    },
    async throw(err: unknown) {
      await close();
      throw err;
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}
