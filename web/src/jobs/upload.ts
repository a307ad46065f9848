import { print } from 'graphql';
import { SluiceRequestError, UploadFileDocument, type UploadFileMutation, type UploadFileMutationVariables } from '../../../src/sdk/client';

/**
 * `uploadFile` as a GraphQL multipart request, sent with XMLHttpRequest because fetch reports no
 * upload progress. The browser streams the File from disk.
 */
export function uploadFile(
  token: string,
  variables: Omit<UploadFileMutationVariables, 'file'>,
  file: File,
  onProgress: (sent: number, total: number) => void,
): Promise<UploadFileMutation['uploadFile']> {
  const form = new FormData();
  form.append('operations', JSON.stringify({ query: print(UploadFileDocument), variables: { ...variables, file: null }, operationName: 'UploadFile' }));
  form.append('map', JSON.stringify({ 0: ['variables.file'] }));
  form.append('0', file, file.name);
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', '/graphql');
    xhr.setRequestHeader('authorization', `Bearer ${token}`);
    xhr.setRequestHeader('apollo-require-preflight', 'true');
    xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : file.size);
    xhr.onerror = () => reject(new Error('Network error while uploading'));
    xhr.onload = () => {
      let body: { data?: UploadFileMutation | null; errors?: Array<{ message: string; extensions?: Record<string, unknown> }> };
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        reject(new Error(`Upload failed: HTTP ${xhr.status}`));
        return;
      }
      if (body.errors?.length || !body.data) reject(new SluiceRequestError('UploadFile', body, xhr.status));
      else resolve(body.data.uploadFile);
    };
    xhr.send(form);
  });
}

/** Fetches the file's error report with the bearer token and hands it to the browser as a download. */
export async function downloadErrorReport(token: string, fileId: string): Promise<void> {
  const res = await fetch(`/files/${encodeURIComponent(fileId)}/errors.csv`, { headers: { authorization: `Bearer ${token}` } });
  if (!res.ok) {
    const body = (await res.json().catch(() => null)) as { errors?: Array<{ message: string }> } | null;
    throw new Error(body?.errors?.[0]?.message ?? `Download failed: HTTP ${res.status}`);
  }
  const name = /filename="([^"]+)"/.exec(res.headers.get('content-disposition') ?? '')?.[1] ?? 'errors.csv';
  const url = URL.createObjectURL(await res.blob());
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
