import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print, type DocumentNode, type FormattedExecutionResult } from 'graphql';
import { createClient, type Client as WsClient } from 'graphql-ws';
import WebSocket from 'ws';

import { JobUpdatedDocument, type JobEventFieldsFragment } from './generated';

export * from './generated';

/** A GraphQL response whose `errors` made the SDK throw. Keeps the operation and full response. */
export class SluiceRequestError extends Error {
  constructor(
    readonly operation: string,
    readonly response: FormattedExecutionResult<unknown>,
    readonly status: number,
  ) {
    super(`${operation} failed (HTTP ${status}): ${JSON.stringify(response.errors ?? response, null, 2)}`);
    this.name = 'SluiceRequestError';
  }
  /** extensions.code of the first error. */
  get code(): string | undefined {
    return this.response.errors?.[0]?.extensions?.['code'] as string | undefined;
  }
}

export interface SluiceClientOptions {
  /** Base URL of the service, e.g. http://127.0.0.1:4000 (no /graphql). */
  url: string;
  /** Bearer token from issueToken; omit for public operations. */
  token?: string;
  fetch?: typeof fetch;
  /** WebSocket implementation for subscriptions. Default: the browser's own in a browser, `ws` in Node. */
  webSocketImpl?: unknown;
}

/**
 * In a browser, the page's WebSocket. Bundlers resolve `ws` to its browser stub, which is never
 * called there, so this module stays usable from the jobs page (web/).
 */
function defaultWebSocket(): unknown {
  return (globalThis as { window?: { WebSocket?: unknown } }).window?.WebSocket ?? WebSocket;
}

export interface UploadFile {
  /** Bytes of the file (Blob, Buffer or string). */
  body: Blob | Uint8Array | string;
  filename: string;
  contentType?: string;
}

function operationName(doc: DocumentNode): string | undefined {
  const def = doc.definitions.find((d) => d.kind === 'OperationDefinition');
  return (def && 'name' in def && def.name?.value) || undefined;
}

/**
 * Typed client for Sluice: queries and mutations over HTTP, uploads as GraphQL multipart requests,
 * subscriptions over graphql-ws. Every method takes a generated TypedDocumentNode.
 */
export class SluiceClient {
  private ws?: WsClient;

  constructor(readonly options: SluiceClientOptions) {}

  withToken(token: string): SluiceClient {
    return new SluiceClient({ ...this.options, token });
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return { ...(this.options.token ? { authorization: `Bearer ${this.options.token}` } : {}), ...extra };
  }

  /** Runs the operation and returns the raw response (data and errors), never throwing on GraphQL errors. */
  async raw<TData, TVars>(doc: TypedDocumentNode<TData, TVars>, variables?: TVars): Promise<{ status: number; body: FormattedExecutionResult<TData> }> {
    const res = await (this.options.fetch ?? fetch)(`${this.options.url}/graphql`, {
      method: 'POST',
      headers: this.headers({ 'content-type': 'application/json' }),
      body: JSON.stringify({ query: print(doc), variables: variables ?? {}, operationName: operationName(doc) }),
    });
    return { status: res.status, body: (await res.json()) as FormattedExecutionResult<TData> };
  }

  /** Runs the operation; throws SluiceRequestError when the response has errors. */
  async request<TData, TVars>(doc: TypedDocumentNode<TData, TVars>, variables?: TVars): Promise<TData> {
    const { status, body } = await this.raw(doc, variables);
    if (body.errors?.length || !body.data) throw new SluiceRequestError(operationName(doc) ?? 'anonymous operation', body, status);
    return body.data;
  }

  /**
   * GraphQL multipart request (https://github.com/jaydenseric/graphql-multipart-request-spec).
   * `files` maps variable paths ("file", "input.file") to files.
   */
  async uploadRaw<TData, TVars>(
    doc: TypedDocumentNode<TData, TVars>,
    variables: TVars,
    files: Record<string, UploadFile>,
    opts: { preflight?: boolean } = {},
  ): Promise<{ status: number; body: FormattedExecutionResult<TData> }> {
    const form = new FormData();
    const paths = Object.keys(files);
    form.append('operations', JSON.stringify({ query: print(doc), variables, operationName: operationName(doc) }));
    form.append('map', JSON.stringify(Object.fromEntries(paths.map((p, i) => [String(i), [`variables.${p}`]]))));
    paths.forEach((p, i) => {
      const f = files[p]!;
      const blob = f.body instanceof Blob ? f.body : new Blob([f.body as string], { type: f.contentType ?? 'application/octet-stream' });
      form.append(String(i), blob, f.filename);
    });
    const res = await (this.options.fetch ?? fetch)(`${this.options.url}/graphql`, {
      method: 'POST',
      headers: this.headers(opts.preflight === false ? {} : { 'apollo-require-preflight': 'true' }),
      body: form,
    });
    return { status: res.status, body: (await res.json()) as FormattedExecutionResult<TData> };
  }

  async upload<TData, TVars>(doc: TypedDocumentNode<TData, TVars>, variables: TVars, files: Record<string, UploadFile>): Promise<TData> {
    const { status, body } = await this.uploadRaw(doc, variables, files);
    if (body.errors?.length || !body.data) throw new SluiceRequestError(operationName(doc) ?? 'anonymous operation', body, status);
    return body.data;
  }

  private wsClient(): WsClient {
    this.ws ??= createClient({
      url: `${this.options.url.replace(/^http/, 'ws')}/graphql`,
      webSocketImpl: this.options.webSocketImpl ?? defaultWebSocket(),
      connectionParams: this.options.token ? { authorization: `Bearer ${this.options.token}` } : {},
      lazy: true,
      retryAttempts: 0,
    });
    return this.ws;
  }

  /** Subscribes over graphql-ws; iterate the result, `return()` to unsubscribe. */
  subscribe<TData, TVars>(doc: TypedDocumentNode<TData, TVars>, variables?: TVars): AsyncIterableIterator<FormattedExecutionResult<TData>> {
    return this.wsClient().iterate<TData>({
      query: print(doc),
      variables: (variables ?? {}) as Record<string, unknown>,
      operationName: operationName(doc),
    }) as AsyncIterableIterator<FormattedExecutionResult<TData>>;
  }

  async close(): Promise<void> {
    await this.ws?.dispose();
    this.ws = undefined;
  }
}

// ---------------------------------------------------------------- following a job

/** graphql-ws close codes with which the service refuses a token: reconnecting cannot help. */
export const TOKEN_CLOSE_CODES: ReadonlySet<number> = new Set([4401, 4403]);

/** The service closed the socket because the token expired (4401) or was refused (4403). */
export class TokenRefusedError extends Error {
  constructor(readonly closeCode: number) {
    super(`The service refused the token (close code ${closeCode})`);
    this.name = 'TokenRefusedError';
  }
}

/** Gave up after `maxReconnects` consecutive lost connections. */
export class ConnectionLostError extends Error {
  constructor(
    readonly attempts: number,
    readonly lastSeq: number,
    override readonly cause: unknown,
  ) {
    super(`Lost the connection ${attempts} times (last event seen: ${lastSeq}): ${(cause as Error)?.message ?? String(cause)}`);
    this.name = 'ConnectionLostError';
  }
}

export interface FollowJobOptions {
  /** The last sequence number already seen (from `job.lastSeq`); events after it are delivered. Default 0. */
  afterSeq?: number;
  /** Consecutive lost connections tolerated before ConnectionLostError. Default 5; `Infinity` never gives up. */
  maxReconnects?: number;
  /** Delay before reconnect attempt `n` (1-based), in ms. Default 250 ms doubling, at most 5 s. */
  backoffMs?: (attempt: number) => number;
  /** Called before each reconnect, e.g. to tell the user. */
  onReconnect?: (attempt: number, lastSeq: number, cause: unknown) => void;
  /** Stops following (the iterator ends) when true; checked between events. */
  stopped?: () => boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Follows one job's `jobUpdated` events until its terminal event. A dropped socket is resumed
 * after the last sequence number seen, so no event is missed or delivered twice; the server's
 * SNAPSHOT of each (re)connection is delivered too. Throws SluiceRequestError for GraphQL errors,
 * TokenRefusedError for 4401/4403, ConnectionLostError after too many lost connections.
 * The one copy of this logic, used by the CLI and the jobs page.
 */
export async function* followJob(client: SluiceClient, jobId: string, opts: FollowJobOptions = {}): AsyncGenerator<JobEventFieldsFragment> {
  let lastSeq = opts.afterSeq ?? 0;
  const maxReconnects = opts.maxReconnects ?? 5;
  const backoff = opts.backoffMs ?? ((n: number) => Math.min(250 * 2 ** n, 5000));
  let failures = 0;
  for (;;) {
    const it = client.subscribe(JobUpdatedDocument, { id: jobId, afterSeq: lastSeq });
    try {
      for await (const r of it) {
        if (opts.stopped?.()) {
          await it.return?.();
          return;
        }
        if (r.errors?.length) throw new SluiceRequestError('JobUpdated', r, 200);
        const e = r.data!.jobUpdated;
        failures = 0;
        if (e.seq <= lastSeq && e.kind !== 'SNAPSHOT') continue;
        lastSeq = Math.max(lastSeq, e.seq);
        yield e;
        if (e.terminal) {
          await it.return?.();
          return;
        }
      }
      // The subscription completed without a terminal event (the server ends it when the job is
      // terminal): the caller reads the job to see how it ended.
      return;
    } catch (err) {
      if (err instanceof SluiceRequestError) throw err;
      const code = (err as { code?: unknown } | null)?.code;
      if (typeof code === 'number' && TOKEN_CLOSE_CODES.has(code)) throw new TokenRefusedError(code);
      if (++failures > maxReconnects) throw new ConnectionLostError(failures, lastSeq, err);
      opts.onReconnect?.(failures, lastSeq, err);
      await sleep(backoff(failures));
      if (opts.stopped?.()) return;
    }
  }
}
