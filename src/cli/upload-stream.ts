import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print, type FormattedExecutionResult, type OperationDefinitionNode } from 'graphql';
import { SluiceRequestError } from '../sdk/client';

/** Called as bytes of the file are handed to the socket. */
export type OnProgress = (sentBytes: number, totalBytes: number) => void;

/** The file's bytes between optional `head` and `tail` bytes, counting file bytes as they are read. */
function streamingBody(filePath: string, size: number, onProgress: OnProgress | undefined, head?: Buffer, tail?: Buffer): ReadableStream<Uint8Array> {
  let sent = 0;
  async function* body() {
    if (head) yield head;
    for await (const chunk of fs.createReadStream(filePath, { highWaterMark: 256 * 1024 })) {
      sent += (chunk as Buffer).length;
      onProgress?.(sent, size);
      yield chunk as Buffer;
    }
    if (tail) yield tail;
  }
  return Readable.toWeb(Readable.from(body())) as ReadableStream<Uint8Array>;
}

/** fetch with a streamed body: Node's fetch sends one only in half-duplex mode. */
function streamingFetch(url: string, init: RequestInit): Promise<Response> {
  return fetch(url, { ...init, duplex: 'half' } as RequestInit & { duplex: 'half' });
}

export interface StreamUploadOptions<TVars> {
  /** Base URL of the service (no /graphql). */
  url: string;
  token: string;
  variables: TVars;
  /** Variable that receives the file, e.g. "file" or "input.file". */
  fileVariable: string;
  filePath: string;
  contentType?: string;
  onProgress?: OnProgress;
}

/**
 * A GraphQL multipart request (the spec graphql-upload implements) whose file part streams from
 * disk: memory stays flat whatever the file size, and the byte count drives the progress bar.
 * Content-Length is computed up front, so the server can refuse an oversized file at once.
 */
export async function uploadFileStream<TData, TVars>(doc: TypedDocumentNode<TData, TVars>, opts: StreamUploadOptions<TVars>): Promise<TData> {
  const size = (await fs.promises.stat(opts.filePath)).size;
  const operationName = (doc.definitions.find((d) => d.kind === 'OperationDefinition') as OperationDefinitionNode | undefined)?.name?.value;
  const boundary = `----sluice-${randomBytes(12).toString('hex')}`;
  const filename = path.basename(opts.filePath).replace(/["\r\n]/g, '_');
  const field = (name: string, value: string) => `--${boundary}\r\ncontent-disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;
  const head = Buffer.from(
    field('operations', JSON.stringify({ query: print(doc), variables: opts.variables, operationName })) +
      field('map', JSON.stringify({ 0: [`variables.${opts.fileVariable}`] })) +
      `--${boundary}\r\ncontent-disposition: form-data; name="0"; filename="${filename}"\r\ncontent-type: ${opts.contentType ?? 'text/csv'}\r\n\r\n`,
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const res = await streamingFetch(`${opts.url}/graphql`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${opts.token}`,
      'apollo-require-preflight': 'true',
      'content-type': `multipart/form-data; boundary=${boundary}`,
      'content-length': String(head.length + size + tail.length),
    },
    body: streamingBody(opts.filePath, size, opts.onProgress, head, tail),
  });
  const text = await res.text();
  let parsed: FormattedExecutionResult<TData>;
  try {
    parsed = JSON.parse(text) as FormattedExecutionResult<TData>;
  } catch {
    throw new Error(`${operationName ?? 'upload'} failed: HTTP ${res.status} ${text.slice(0, 200)}`);
  }
  if (parsed.errors?.length || !parsed.data) throw new SluiceRequestError(operationName ?? 'anonymous operation', parsed, res.status);
  return parsed.data;
}

/**
 * PUTs the file's bytes to `url` (a signed upload URL) as a stream with its Content-Length.
 * Resolves with the response; a non-2xx status is the caller's to report.
 */
export async function putFileStream(
  url: string,
  filePath: string,
  opts: { headers?: Record<string, string>; onProgress?: OnProgress } = {},
): Promise<Response> {
  const size = (await fs.promises.stat(filePath)).size;
  return streamingFetch(url, {
    method: 'PUT',
    headers: { 'content-length': String(size), ...opts.headers },
    body: streamingBody(filePath, size, opts.onProgress),
  });
}

/** Lower-case hex SHA-256 of a file, streamed (for upload requests that declare a checksum). */
export async function sha256File(filePath: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(fs.createReadStream(filePath), hash);
  return hash.digest('hex');
}
