import fs from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';

/**
 * Hand-built multipart bodies and a raw HTTP client for them: fetch/FormData cannot produce the
 * malformed, truncated, stalled or endless bodies an attacker sends.
 */

export const BOUNDARY = 'sluice-test-boundary';

const UPLOAD_MUTATION = 'mutation ($file: Upload!) { uploadFile(program: "state_prog", spec: "attendance", file: $file) { file { id } } }';

/** One part: raw header lines (without CRLF) and a body. */
export interface Part {
  headers: string[];
  body: string | Buffer;
}

export function field(name: string, value: string): Part {
  return { headers: [`Content-Disposition: form-data; name="${name}"`], body: value };
}

export function filePart(name: string, filename: string, body: string | Buffer): Part {
  return { headers: [`Content-Disposition: form-data; name="${name}"; filename="${filename}"`, 'Content-Type: text/csv'], body };
}

/** The operations and map fields of an uploadFile mutation whose file is part "0". */
export function uploadFields(query = UPLOAD_MUTATION): Part[] {
  return [field('operations', JSON.stringify({ query, variables: { file: null } })), field('map', JSON.stringify({ 0: ['variables.file'] }))];
}

/** Serialises parts; `close: false` leaves the closing boundary off (a truncated body). */
export function multipart(parts: Part[], opts: { close?: boolean } = {}): Buffer {
  const chunks: Buffer[] = [];
  for (const p of parts) {
    chunks.push(Buffer.from(`--${BOUNDARY}\r\n${p.headers.map((h) => `${h}\r\n`).join('')}\r\n`, 'latin1'));
    chunks.push(Buffer.isBuffer(p.body) ? p.body : Buffer.from(p.body));
    chunks.push(Buffer.from('\r\n'));
  }
  if (opts.close !== false) chunks.push(Buffer.from(`--${BOUNDARY}--\r\n`));
  return Buffer.concat(chunks);
}

/** Everything before the file's bytes: fields, then the file part's header. */
export function multipartHead(fileName = 'big.csv'): Buffer {
  const head = multipart(uploadFields(), { close: false });
  return Buffer.concat([
    head,
    Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="0"; filename="${fileName}"\r\nContent-Type: text/csv\r\n\r\n`),
  ]);
}

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json: { data?: unknown; errors?: Array<{ message: string; extensions?: Record<string, unknown> }> } | undefined;
  /** Milliseconds from the start of the request to the end of the response. */
  elapsedMs: number;
  /** Body bytes written before the response arrived. */
  bytesSent: number;
}

export interface RawRequest {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  /** The whole body, sent at once. */
  body?: Buffer;
  /**
   * A body produced while the request runs: called with `write`; resolve to end the body, or
   * never resolve (a stalled client). Stops when the response arrives.
   */
  stream?: (write: (chunk: Buffer) => Promise<boolean>, answered: () => boolean) => Promise<void>;
  timeoutMs?: number;
}

/**
 * Sends one request on a fresh connection and resolves with the response, even when the server
 * answers before the body is complete and then closes the connection (write errors after the
 * answer are expected then). Rejects only when no response arrives.
 */
export function rawRequest(baseUrl: string, req: RawRequest): Promise<RawResponse> {
  const url = new URL(req.path ?? '/graphql', baseUrl);
  const started = Date.now();
  let bytesSent = 0;
  let answered = false;
  return new Promise<RawResponse>((resolve, reject) => {
    const r = http.request(url, { method: req.method ?? 'POST', headers: req.headers, agent: false });
    const timer = setTimeout(() => {
      r.destroy();
      reject(new Error(`no response within ${req.timeoutMs ?? 20_000} ms after sending ${bytesSent} bytes`));
    }, req.timeoutMs ?? 20_000);
    r.on('error', (err) => {
      if (!answered) {
        clearTimeout(timer);
        reject(new Error(`request failed before any response (${bytesSent} bytes sent): ${err.message}`));
      }
    });
    r.on('response', (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', () => undefined);
      res.on('end', () => {
        clearTimeout(timer);
        const text = Buffer.concat(chunks).toString();
        let json: RawResponse['json'];
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json, elapsedMs: Date.now() - started, bytesSent });
        r.destroy();
      });
    });
    const write = (chunk: Buffer) =>
      new Promise<boolean>((res) => {
        if (answered || r.destroyed) return res(false);
        bytesSent += chunk.length;
        r.write(chunk, () => res(true));
      });
    if (req.body) {
      bytesSent = req.body.length;
      r.end(req.body);
    } else if (req.stream) {
      void req
        .stream(write, () => answered)
        .then(
          () => {
            if (!answered && !r.destroyed) r.end();
          },
          () => undefined,
        );
    } else {
      r.end();
    }
  });
}

/**
 * Sends one request with its whole body on a fresh kept-alive connection (as an agent that reuses
 * connections does) and reads the answer; then watches the connection for `closeWithinMs`.
 * Resolves with the status, the answer's `Connection` header and whether the server closed the
 * connection meanwhile (a client that was told keep-alive would send its next request into it).
 */
export function keepAliveAnswer(
  baseUrl: string,
  headers: Record<string, string>,
  body: Buffer,
  closeWithinMs = 300,
  /** Bytes the Content-Length promises beyond `body`, never sent: a body the server cannot have finished when it answers. */
  unsentBytes = 0,
): Promise<{ status: number; connection: string | undefined; closed: boolean }> {
  const url = new URL('/graphql', baseUrl);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(url.port), url.hostname);
    let got = Buffer.alloc(0);
    let closed = false;
    let head: { status: number; connection: string | undefined; end: number } | null = null;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('no complete answer within 10 s'));
    }, 10_000);
    socket.on('error', () => undefined);
    socket.on('end', () => (closed = true));
    socket.on('close', () => (closed = true));
    socket.on('data', (chunk: Buffer) => {
      got = Buffer.concat([got, chunk]);
      if (!head) {
        const at = got.indexOf('\r\n\r\n');
        if (at < 0) return;
        const lines = got.subarray(0, at).toString('latin1').split('\r\n');
        const field = (name: string) =>
          lines
            .find((l) => l.toLowerCase().startsWith(`${name}:`))
            ?.slice(name.length + 1)
            .trim();
        head = { status: Number(lines[0]!.split(' ')[1]), connection: field('connection')?.toLowerCase(), end: at + 4 + Number(field('content-length') ?? 0) };
      }
      if (got.length < head.end) return;
      clearTimeout(timer);
      const answer = head;
      head = { ...head, end: Number.POSITIVE_INFINITY };
      setTimeout(() => {
        socket.destroy();
        resolve({ status: answer.status, connection: answer.connection, closed });
      }, closeWithinMs);
    });
    const lines = [`POST ${url.pathname} HTTP/1.1`, `Host: ${url.host}`, 'Connection: keep-alive', `Content-Length: ${body.length + unsentBytes}`];
    for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
    socket.write(Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), body]));
  });
}

export function multipartHeaders(extra: Record<string, string> = {}): Record<string, string> {
  return { 'content-type': `multipart/form-data; boundary=${BOUNDARY}`, 'apollo-require-preflight': 'true', ...extra };
}

/** Every file below `dir` whose name starts with `.tmp-` (writes in progress or left behind). */
export async function tempFiles(dir: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (d: string) => {
    let entries;
    try {
      entries = await fs.readdir(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const full = path.join(d, e.name);
      if (e.isDirectory()) await walk(full);
      else if (e.name.startsWith('.tmp-')) found.push(path.relative(dir, full));
    }
  };
  await walk(dir);
  return found;
}

/** Streams `total` bytes of CSV-ish filler (then never ends when `endless`), 64 KiB at a time. */
export function filler(total: number, opts: { endless?: boolean; pauseMs?: number } = {}) {
  const chunk = Buffer.alloc(64 * 1024, 'a\n');
  return async (write: (c: Buffer) => Promise<boolean>, answered: () => boolean) => {
    let sent = 0;
    while ((opts.endless || sent < total) && !answered()) {
      if (!(await write(chunk))) return;
      sent += chunk.length;
      if (opts.pauseMs) await new Promise((r) => setTimeout(r, opts.pauseMs));
    }
  };
}

/**
 * Malformed multipart requests that must each get 400 BAD_REQUEST while the process keeps
 * serving. The first seven killed the process before the multipart layer was fixed (busboy's
 * second `error` event had no listener); the last ones were answered INTERNAL_SERVER_ERROR.
 */
export function hostileBodies(): Array<{ name: string; body: Buffer; message: RegExp }> {
  const [operations, map] = uploadFields();
  const csv = 'date,school_id,present\n01/03/23,s1,10\n';
  const badFile = (filename: string) =>
    multipart([operations!, map!, { headers: [`Content-Disposition: form-data; name="0"; filename="${filename}"`], body: csv }]);
  return [
    {
      name: 'a part header line starting with a space',
      body: multipart([{ headers: [' Content-Disposition: form-data; name="operations"'], body: '{}' }, map!]),
      message: /Malformed multipart part header/,
    },
    { name: 'a NUL in filename', body: badFile('a\u0000b.csv'), message: /Malformed multipart part header/ },
    { name: 'a CR in filename', body: badFile('a\rb.csv'), message: /Malformed multipart part header/ },
    { name: 'a DEL in filename', body: badFile('a\u007fb.csv'), message: /Malformed multipart part header/ },
    { name: 'a control byte (0x01) in filename', body: badFile('a\u0001b.csv'), message: /Malformed multipart part header/ },
    {
      name: 'a part header line without a colon',
      body: multipart([operations!, map!, { headers: ['Content-Disposition: form-data; name="0"; filename="a.csv"', 'X-No-Colon'], body: csv }]),
      message: /Malformed multipart part header/,
    },
    {
      name: 'a 100 KB part header',
      body: multipart([
        operations!,
        map!,
        { headers: ['Content-Disposition: form-data; name="0"; filename="a.csv"', `X-Pad: ${'a'.repeat(100 * 1024)}`], body: csv },
      ]),
      message: /Malformed multipart part header/,
    },
    {
      name: 'a control character in a percent-encoded filename*',
      body: multipart([operations!, map!, { headers: [`Content-Disposition: form-data; name="0"; filename*=UTF-8''a%00b.csv`], body: csv }]),
      message: /filename .* without control characters/,
    },
    { name: 'a map entry whose file never arrives', body: multipart([operations!, map!]), message: /named in 'map' but missing/ },
    {
      name: 'a truncated body (no closing boundary)',
      body: multipart([operations!, map!, filePart('0', 'a.csv', csv)], { close: false }),
      message: /ended before its closing boundary/,
    },
    {
      name: 'a file part with no Content-Disposition',
      body: multipart([operations!, map!, { headers: ['Content-Type: text/csv'], body: csv }]),
      message: /named in 'map' but missing/,
    },
    { name: 'no operations field', body: multipart([map!]), message: /Misordered|Missing multipart field 'operations'/ },
  ];
}
