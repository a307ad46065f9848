import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { putFileStream, sha256File } from '../../src/cli/upload-stream';

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
      expect(progress.length).toBeGreaterThan(1);
      expect(progress.at(-1)).toBe(content.length);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});
