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
import { BoundedMap } from '../shared/bounded-map';
import { PullStream } from '../shared/stream';

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
  /** Oldest first out: a client cycling through distinct queries cannot grow the map. */
  private readonly entries: BoundedMap<string, Parsed>;

  constructor(
    private readonly schema: GraphQLSchema,
    private readonly rules: readonly ValidationRule[],
    private readonly maxTokens: number,
    size = DOCUMENT_CACHE_SIZE,
  ) {
    this.entries = new BoundedMap(size);
  }

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
      this.entries.set(query, parsed);
    }
    return parsed;
  }
}

/**
 * Where the events of one shared subscription go when they bypass graphql-ws's per-message loop:
 * its messages are written as they are ready, and graphql-ws only sees the subscription end.
 */
export interface DirectSink {
  /** The subscription id (graphql-ws's message id). */
  readonly id: string;
  /**
   * Writes `next` messages (complete JSON texts), in order, at once; with `last`, the
   * subscription's `complete` message too, in the same write (graphql-ws then sends none).
   */
  write(messages: string[], last: boolean): void;
  /** The payload of a result with errors as this client may see it (errors masked and logged). */
  withErrors(result: ExecutionResult): unknown;
}

export interface SharedSubscribeOptions {
  /** The direct sink of an operation, when it has one (graphql-ws over Sluice's socket adapter). */
  sinkOf?: (args: ExecutionArgs) => DirectSink | undefined;
}

/**
 * graphql-js's `subscribe`, except that one event delivered to many subscriptions of the same
 * document, operation and variables is executed once for all of them: the job feed hands the
 * same event object to every `jobUpdated` subscription of a job, and 5,000 of them cost one
 * execution per event instead of 5,000. Only for the root fields in `shareable`, whose result
 * depends on the event and the operation alone (not on the viewer, who was authorized when
 * subscribing). The results are shared read-only; they live as long as the event object.
 *
 * With a direct sink, such a subscription also shares each result's JSON text (the messages
 * differ only in their id, spliced in) and is delivered without a promise per event: when its
 * stream wakes, what the stream holds is executed (from the shared results), serialised and
 * written at once, several events to one socket in one write.
 */
export function sharedSubscribe(
  shareable: ReadonlySet<string>,
  opts: SharedSubscribeOptions = {},
): (args: ExecutionArgs) => Promise<AsyncIterableIterator<ExecutionResult> | ExecutionResult> {
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
        if (!result) {
          const run1 = run(event);
          byKey.set(key, (result = run1));
          // Later subscribers (and the payload text) get the value itself once it is there.
          if (isPromise(run1))
            run1.then(
              (value) => byKey.get(key) === run1 && byKey.set(key, value),
              () => undefined,
            );
        }
        return result;
      };
      const sink = opts.sinkOf?.(args);
      if (sink && source instanceof PullStream) return new DirectDelivery(source, map, sink);
    }
    return mapEvents(source, map);
  };
}

/** The JSON text of each shared result without errors (what every subscriber's payload is). */
const payloadTexts = new WeakMap<ExecutionResult, string>();

function payloadText(result: ExecutionResult): string {
  let text = payloadTexts.get(result);
  if (text === undefined) payloadTexts.set(result, (text = JSON.stringify(result)));
  return text;
}

const isPromise = <T>(v: T | Promise<T>): v is Promise<T> => typeof (v as { then?: unknown } | null)?.then === 'function';

/**
 * A shared subscription delivered straight to its sink. To graphql-ws it is an iterator whose
 * first next() settles when the subscription ends: done after the last event (graphql-ws then
 * sends `complete`), or the stream's error (graphql-ws sends `error`). return() (the client's
 * `complete`, or the socket closing) ends it at once. Events are pulled when the stream wakes
 * (its listener), synchronously while the stream has them at hand; a read of the table or an
 * execution that does not complete at once pauses it until it settles, so order is kept.
 */
class DirectDelivery implements AsyncIterableIterator<ExecutionResult> {
  private started = false;
  private closed = false;
  /** A read or an execution is in flight: the pump resumes when it settles. */
  private busy = false;
  private pumping = false;
  private readonly prefix: string;
  private readonly ended: Promise<IteratorResult<ExecutionResult>>;
  private settle!: (r: IteratorResult<ExecutionResult>) => void;
  private reject!: (err: unknown) => void;

  constructor(
    private readonly source: PullStream<unknown>,
    private readonly map: (event: unknown) => ExecutionResult | Promise<ExecutionResult>,
    private readonly sink: DirectSink,
  ) {
    this.prefix = `{"id":${JSON.stringify(sink.id)},"type":"next","payload":`;
    this.ended = new Promise((resolve, reject) => {
      this.settle = resolve;
      this.reject = reject;
    });
  }

  next(): Promise<IteratorResult<ExecutionResult>> {
    if (!this.started) {
      this.started = true;
      this.source.listen(() => this.pump());
      this.pump();
    }
    return this.ended;
  }

  return(): Promise<IteratorResult<ExecutionResult>> {
    this.end();
    return Promise.resolve({ value: undefined, done: true });
  }

  async throw(err: unknown): Promise<IteratorResult<ExecutionResult>> {
    this.end();
    throw err;
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<ExecutionResult> {
    return this;
  }

  private message(result: ExecutionResult): string {
    const payload = result.errors?.length ? JSON.stringify(this.sink.withErrors(result)) : payloadText(result);
    return `${this.prefix}${payload}}`;
  }

  /**
   * Takes everything at hand, executes it (shared results) and writes it in one go; then waits for
   * the next wake, or reads the table (poll said 'read'), or ends. Executions that do not complete
   * at once (type-graphql resolves fields through promises) are awaited together, in order.
   */
  private pump(): void {
    if (this.closed || this.busy || this.pumping) return;
    this.pumping = true;
    const results: Array<ExecutionResult | Promise<ExecutionResult>> = [];
    let pending = false;
    let stop: 'wait' | 'read' | 'done' | { err: unknown };
    try {
      for (;;) {
        const r = this.source.poll();
        if (r === 'wait' || r === 'read') {
          stop = r;
          break;
        }
        if (r.done) {
          stop = 'done';
          break;
        }
        const result = this.map(r.value);
        if (isPromise(result)) pending = true;
        results.push(result);
      }
    } catch (err) {
      stop = { err };
    } finally {
      this.pumping = false;
    }
    if (!pending) {
      this.write(results as ExecutionResult[], stop === 'done');
      this.afterWrite(stop, false);
      return;
    }
    this.busy = true;
    Promise.all(results).then(
      (values) => {
        this.busy = false;
        this.write(values, stop === 'done');
        this.afterWrite(stop, true);
      },
      (err: unknown) => {
        this.busy = false;
        this.fail(err);
      },
    );
  }

  /** After a pump's writes: what comes next. A wake may have come while it waited: pump again. */
  private afterWrite(stop: 'wait' | 'read' | 'done' | { err: unknown }, waited: boolean): void {
    if (this.closed) return;
    if (stop === 'done' || typeof stop === 'object') {
      if (stop === 'done') this.finish();
      else this.fail(stop.err);
      return;
    }
    if (stop === 'wait') {
      if (waited) this.pump();
      return;
    }
    this.busy = true;
    this.source.load().then(
      () => {
        this.busy = false;
        this.pump();
      },
      (err: unknown) => {
        this.busy = false;
        this.fail(err);
      },
    );
  }

  private write(results: ExecutionResult[], last: boolean): void {
    if ((!results.length && !last) || this.closed) return;
    const messages = new Array<string>(results.length);
    for (let i = 0; i < results.length; i++) messages[i] = this.message(results[i]!);
    this.sink.write(messages, last);
  }

  private finish(): void {
    this.end();
  }

  private fail(err: unknown): void {
    this.end({ err });
  }

  /** Ends the delivery once: returns the stream, then settles graphql-ws's next() (done, or the error). */
  private end(failure?: { err: unknown }): void {
    if (this.closed) return;
    this.closed = true;
    void this.source.return();
    if (failure) this.reject(failure.err);
    else this.settle({ value: undefined, done: true });
  }
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
