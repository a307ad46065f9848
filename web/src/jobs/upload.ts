import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print } from 'graphql';
import { SluiceRequestError } from '../../../src/sdk/client';

function operationName(doc: TypedDocumentNode<unknown, unknown>): string {
  const def = doc.definitions.find((d) => d.kind === 'OperationDefinition');
  return (def && 'name' in def && def.name?.value) || 'Upload';
}

/**
 * A GraphQL multipart request with one file (in variable `file`), sent with XMLHttpRequest because
 * fetch reports no upload progress. The browser streams the File from disk. `onStored` fires when
 * the last byte is sent (the server then answers once it has stored the file).
 */
export function uploadWithProgress<TData, TVars>(
  token: string,
  doc: TypedDocumentNode<TData, TVars>,
  variables: Omit<TVars, 'file'>,
  file: Blob,
  fileName: string,
  onProgress: (sent: number, total: number) => void,
): Promise<TData> {
  const name = operationName(doc as TypedDocumentNode<unknown, unknown>);
  const form = new FormData();
  form.append('operations', JSON.stringify({ query: print(doc), variables: { ...variables, file: null }, operationName: name }));
  form.append('map', JSON.stringify({ 0: ['variables.file'] }));
  form.append('0', file, fileName);
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', '/graphql');
    xhr.setRequestHeader('authorization', `Bearer ${token}`);
    xhr.setRequestHeader('apollo-require-preflight', 'true');
    xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : file.size);
    xhr.onerror = () => reject(new Error('Network error while uploading'));
    xhr.onload = () => {
      let body: { data?: TData | null; errors?: Array<{ message: string; extensions?: Record<string, unknown> }> };
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        reject(new Error(`Upload failed: HTTP ${xhr.status}`));
        return;
      }
      if (body.errors?.length || !body.data) reject(new SluiceRequestError(name, body, xhr.status));
      else resolve(body.data);
    };
    xhr.send(form);
  });
}

/** GETs one of a file's CSV downloads (`errors.csv`, `valid.csv`) with the bearer token; a refusal is thrown in its own words. */
export async function fetchFileCsv(token: string, fileId: string, which: 'errors' | 'valid'): Promise<{ blob: Blob; name: string }> {
  const res = await fetch(`/files/${encodeURIComponent(fileId)}/${which}.csv`, { headers: { authorization: `Bearer ${token}` } });
  if (!res.ok) {
    const body = (await res.json().catch(() => null)) as { errors?: Array<{ message: string }> } | null;
    throw new Error(body?.errors?.[0]?.message ?? `Download failed: HTTP ${res.status}`);
  }
  const name = /filename="([^"]+)"/.exec(res.headers.get('content-disposition') ?? '')?.[1] ?? `${which}.csv`;
  return { blob: await res.blob(), name };
}

/** Fetches a file's error report or stored rows and hands it to the browser as a download. */
export async function downloadFileCsv(token: string, fileId: string, which: 'errors' | 'valid'): Promise<void> {
  const { blob, name } = await fetchFileCsv(token, fileId, which);
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** Fetches a file's error report and hands it to the browser as a download. */
export const downloadErrorReport = (token: string, fileId: string): Promise<void> => downloadFileCsv(token, fileId, 'errors');
