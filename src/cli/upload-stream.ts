import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import http, { type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import { pipeline } from 'node:stream/promises';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print, type FormattedExecutionResult, type OperationDefinitionNode } from 'graphql';
import { SluiceRequestError } from '../sdk/client';

/** Called as bytes of the file are handed to the socket. */
export type OnProgress = (sentBytes: number, totalBytes: number) => void;

/**
 * Read size for the file being sent. With 1 MiB reads piped straight into the socket, sending
 * 61 MiB costs ~0.05 s of CPU; fetch with a web stream of 256 KiB reads cost ~0.16 s (and ~0.1 s
 * of it at 4 MiB reads), enough to be the slow side of an upload to a local service.
 */
const readChunkBytes = 1024 * 1024;
/** No byte sent or received for this long ends the request (undici's, hence fetch's, default). */
const idleTimeoutMs = 300_000;

/** An HTTP answer, read whole (upload answers are small JSON documents or short error texts). */
interface Answer {
  status: number;
  statusText: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/**
 * Sends the file's bytes between optional `head` and `tail` bytes as the body of one request,
 * piping the file straight into the socket (node:http, not fetch: see readChunkBytes) and counting
 * file bytes as they are read. An answer that arrives before the body is sent (a refusal: too large,
 * bad request) stops the sending; the answer is what the caller gets. Failures to connect or send
 * reject with the socket's error (its `code`: ECONNREFUSED, ECONNRESET, ...).
 */
function sendFile(
  url: string,
  init: { method: 'POST' | 'PUT'; headers: Record<string, string> },
  filePath: string,
  size: number,
  onProgress: OnProgress | undefined,
  head?: Buffer,
  tail?: Buffer,
): Promise<Answer> {
  return new Promise<Answer>((resolve, reject) => {
    const target = new URL(url);
    const request = (target.protocol === 'https:' ? https : http).request(target, { method: init.method, headers: init.headers });
    const file = fs.createReadStream(filePath, { highWaterMark: readChunkBytes });
    let settled = false;
    const fail = (err: unknown) => {
      if (settled) return;
      settled = true;
      file.destroy();
      // Destroying the request before the whole body is sent tells the server the upload was cut off.
      request.destroy();
      reject(err);
    };
    request.setTimeout(idleTimeoutMs, () =>
      fail(Object.assign(new Error(`No answer from ${target.origin} for ${idleTimeoutMs / 1000} s`), { code: 'ETIMEDOUT' })),
    );
    let answered = false;
    // After the answer, a failed send (EPIPE, ECONNRESET: the server stopped reading) is expected;
    // the answer itself still arrives whole, or fails through `res`.
    request.on('error', (err) => answered || fail(err));
    file.on('error', fail);
    request.on('response', (res) => {
      answered = true;
      // Nothing more of the body is wanted once the server has answered.
      file.unpipe(request);
      file.destroy();
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', fail);
      res.on('aborted', () => fail(Object.assign(new Error(`The answer from ${target.origin} was cut off`), { code: 'ECONNRESET' })));
      res.on('end', () => {
        if (settled) return;
        settled = true;
        // A body the server stopped reading leaves the connection unusable for another request.
        if (!request.writableFinished) request.destroy();
        resolve({ status: res.statusCode ?? 0, statusText: res.statusMessage ?? '', headers: res.headers, body: Buffer.concat(chunks) });
      });
    });
    let sent = 0;
    file.on('data', (chunk) => {
      sent += chunk.length;
      onProgress?.(sent, size);
    });
    if (head) request.write(head);
    file.pipe(request, { end: false });
    file.once('end', () => (tail ? request.end(tail) : request.end()));
  });
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
  const res = await sendFile(
    `${opts.url}/graphql`,
    {
      method: 'POST',
      headers: {
        authorization: `Bearer ${opts.token}`,
        'apollo-require-preflight': 'true',
        'content-type': `multipart/form-data; boundary=${boundary}`,
        'content-length': String(head.length + size + tail.length),
      },
    },
    opts.filePath,
    size,
    opts.onProgress,
    head,
    tail,
  );
  const text = res.body.toString('utf8');
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
  const res = await sendFile(url, { method: 'PUT', headers: { 'content-length': String(size), ...opts.headers } }, filePath, size, opts.onProgress);
  const headers = new Headers();
  for (const [name, value] of Object.entries(res.headers)) {
    for (const v of Array.isArray(value) ? value : value === undefined ? [] : [value]) headers.append(name, v);
  }
  // A Response may not carry a body with these statuses.
  const body = [101, 204, 205, 304].includes(res.status) ? null : res.body;
  return new Response(body, { status: res.status, statusText: res.statusText, headers });
}

/** Lower-case hex SHA-256 of a file, streamed (for upload requests that declare a checksum). */
export async function sha256File(filePath: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(fs.createReadStream(filePath), hash);
  return hash.digest('hex');
}
