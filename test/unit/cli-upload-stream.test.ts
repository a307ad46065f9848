import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { putFileStream, sha256File, uploadFileStream } from '../../src/cli/upload-stream';
import { SluiceRequestError, UploadFileDocument } from '../../src/sdk/client';

let dir: string;
let file: string;
let content: Buffer;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-cli-put-'));
  file = path.join(dir, 'data.csv');
  content = Buffer.alloc(3 * 1024 * 1024 + 17, 'a,b,c\n');
  await fs.writeFile(file, content);
});

afterAll(() => fs.rm(dir, { recursive: true, force: true }));

describe('CLI file streaming', () => {
  it('sha256File hashes a file as a stream', async () => {
    expect(await sha256File(file)).toBe(createHash('sha256').update(content).digest('hex'));
  });

  it('putFileStream PUTs the bytes with their Content-Length and reports progress up to the size', async () => {
    let received: { method?: string; length?: string; type?: string; bytes: number; sha: string } | undefined;
    const server = http.createServer(async (req, res) => {
      const hash = createHash('sha256');
      let bytes = 0;
      for await (const c of req) {
        bytes += (c as Buffer).length;
        hash.update(c as Buffer);
      }
      received = { method: req.method, length: req.headers['content-length'], type: req.headers['content-type'], bytes, sha: hash.digest('hex') };
      res.writeHead(201).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const progress: number[] = [];
      const res = await putFileStream(`http://127.0.0.1:${(server.address() as AddressInfo).port}/upload`, file, {
        headers: { 'content-type': 'text/csv' },
        onProgress: (sent, total) => {
          expect(total).toBe(content.length);
          progress.push(sent);
        },
      });
      expect(res.status).toBe(201);
      expect(received).toEqual({ method: 'PUT', length: String(content.length), type: 'text/csv', bytes: content.length, sha: await sha256File(file) });
      // The file is read in 1 MiB chunks (64 KiB reads cost several times the CPU to send).
      expect(progress).toEqual([1, 2, 3].map((m) => m * 1024 * 1024).concat(content.length));
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it('uploadFileStream returns an answer the server sends before reading the body (413), not a send error', async () => {
    const big = path.join(dir, 'big.csv');
    await fs.writeFile(big, Buffer.alloc(32 * 1024 * 1024, 'a,b,c\n'));
    const server = http.createServer((req, res) => {
      res.writeHead(413, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ message: 'too large', extensions: { code: 'PAYLOAD_TOO_LARGE' } }] }));
      // As the service does: the rest of the body is dropped, then the connection closed.
      req.resume();
      setTimeout(() => req.socket.destroy(), 200).unref();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const err = await uploadFileStream(UploadFileDocument, {
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        token: 't',
        variables: { program: 'p', spec: 's', file: null },
        fileVariable: 'file',
        filePath: big,
      }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(SluiceRequestError);
      expect((err as SluiceRequestError).status).toBe(413);
      expect((err as SluiceRequestError).code).toBe('PAYLOAD_TOO_LARGE');
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  it('uploadFileStream to a closed port fails with the socket error code (the CLI reports "Cannot reach")', async () => {
    const server = http.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    await new Promise((r) => server.close(r));
    const err = await uploadFileStream(UploadFileDocument, {
      url: `http://127.0.0.1:${port}`,
      token: 't',
      variables: { program: 'p', spec: 's', file: null },
      fileVariable: 'file',
      filePath: file,
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((err as NodeJS.ErrnoException).code).toBe('ECONNREFUSED');
  });
});
