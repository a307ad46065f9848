import fs from 'node:fs/promises';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { formatBytes, RateMeter } from '../sdk/progress';
import { CliError, type CliContext } from './command';
import { ProgressLine } from './progress';
import { putFileStream, uploadFileStream, type OnProgress } from './upload-stream';

/** Size of a file the user named; a clear error when it is missing or not a file. */
export async function fileSize(filePath: string): Promise<number> {
  const stat = await fs.stat(filePath).catch(() => undefined);
  if (!stat?.isFile()) throw new CliError(`No such file: ${filePath}`);
  return stat.size;
}

/**
 * Runs `send` with an upload progress bar (bytes, percent, bytes per second) for `filePath`.
 * Every command that sends a file goes through here, so they all look and behave alike.
 */
export async function withUploadProgress<T>(ctx: CliContext, filePath: string, send: (onProgress: OnProgress) => Promise<T>): Promise<T> {
  const size = await fileSize(filePath);
  const line = new ProgressLine(ctx.stderr);
  const meter = new RateMeter();
  const label = `Uploading ${filePath}`;
  try {
    line.update({ label, ratio: 0, detail: `0 B of ${formatBytes(size)}` });
    return await send((sent, total) => {
      meter.push(sent);
      const rate = meter.perSecond();
      line.update({
        label,
        ratio: total ? sent / total : 1,
        detail: `${formatBytes(sent)} of ${formatBytes(total)}${rate === undefined ? '' : ` · ${formatBytes(rate)}/s`}`,
      });
    });
  } finally {
    line.done();
  }
}

/** Streams a file to an upload mutation (GraphQL multipart) with a progress bar. */
export function sendFile<TData, TVars>(
  ctx: CliContext,
  doc: TypedDocumentNode<TData, TVars>,
  filePath: string,
  variables: TVars,
  opts: { fileVariable?: string; contentType?: string } = {},
): Promise<TData> {
  const token = ctx.client().options.token!;
  return withUploadProgress(ctx, filePath, (onProgress) =>
    uploadFileStream(doc, { url: ctx.url, token, variables, fileVariable: opts.fileVariable ?? 'file', filePath, contentType: opts.contentType, onProgress }),
  );
}

/** PUTs a file to a signed upload URL with a progress bar; throws CliError unless the answer is 2xx. */
export async function putFile(ctx: CliContext, url: string, filePath: string, headers: Record<string, string> = {}): Promise<void> {
  const res = await withUploadProgress(ctx, filePath, (onProgress) => putFileStream(url, filePath, { headers, onProgress }));
  if (!res.ok) throw new CliError(`PUT to the upload URL failed: HTTP ${res.status} ${(await res.text()).slice(0, 300)}`);
}
