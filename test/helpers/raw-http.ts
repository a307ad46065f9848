import net from 'node:net';

/** One HTTP/1.1 response read off a raw connection. */
export interface ParsedResponse {
  status: number;
  /** Header names in lower case. */
  headers: Record<string, string>;
  body: string;
}

/**
 * Parses the complete responses at the start of `buf` (Content-Length or chunked bodies);
 * returns them and how many bytes they took.
 */
function parseResponses(buf: Buffer): { responses: ParsedResponse[]; used: number } {
  const responses: ParsedResponse[] = [];
  let at = 0;
  for (;;) {
    const end = buf.indexOf('\r\n\r\n', at);
    if (end < 0) break;
    const [statusLine, ...lines] = buf.toString('latin1', at, end).split('\r\n');
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '')?.[1] ?? Number.NaN);
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    let p = end + 4;
    let body: Buffer;
    if (headers['transfer-encoding']?.toLowerCase() === 'chunked') {
      const parts: Buffer[] = [];
      let complete = false;
      for (;;) {
        const lineEnd = buf.indexOf('\r\n', p);
        if (lineEnd < 0) break;
        const size = Number.parseInt(buf.toString('latin1', p, lineEnd), 16);
        if (buf.length < lineEnd + 2 + size + 2) break;
        parts.push(buf.subarray(lineEnd + 2, lineEnd + 2 + size));
        p = lineEnd + 2 + size + 2;
        if (size === 0) {
          complete = true;
          break;
        }
      }
      if (!complete) break;
      body = Buffer.concat(parts);
    } else {
      const length = Number(headers['content-length'] ?? 0);
      if (buf.length < p + length) break;
      body = buf.subarray(p, p + length);
      p += length;
    }
    responses.push({ status, headers, body: body.toString('utf8') });
    at = p;
  }
  return { responses, used: at };
}

/**
 * Sends `parts` on one fresh connection (each after `gapMs`, so a body can arrive after its
 * head; `halfClose`: then ends its side, reading on), and resolves once `responses` complete responses were read or the server closed the
 * connection; `closed` tells whether it did. Rejects after `timeoutMs` with what was read.
 */
export function rawExchange(
  baseUrl: string,
  parts: Array<string | Buffer>,
  opts: { responses: number; gapMs?: number; timeoutMs?: number; halfClose?: boolean },
): Promise<{ responses: ParsedResponse[]; closed: boolean }> {
  const url = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port: Number(url.port), host: url.hostname, allowHalfOpen: true });
    let got = Buffer.alloc(0);
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ responses: parseResponses(got).responses, closed });
    };
    const timer = setTimeout(() => {
      done = true;
      socket.destroy();
      reject(new Error(`no ${opts.responses} responses within ${opts.timeoutMs ?? 10_000} ms; read ${JSON.stringify(got.toString('latin1').slice(0, 500))}`));
    }, opts.timeoutMs ?? 10_000);
    socket.on('error', () => undefined);
    socket.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (parseResponses(got).responses.length >= opts.responses) finish(false);
    });
    // The server's end of the connection (its FIN; this side stays open for writing: allowHalfOpen).
    socket.on('end', () => finish(true));
    socket.on('close', () => finish(true));
    socket.on('connect', async () => {
      for (const [i, part] of parts.entries()) {
        if (i > 0 && opts.gapMs) await new Promise((r) => setTimeout(r, opts.gapMs));
        if (done) return;
        socket.write(part);
      }
      if (opts.halfClose && !done) socket.end();
    });
  });
}

/** An HTTP/1.1 request's bytes: request line, headers, and a body with its Content-Length. */
export function rawHttpRequest(method: string, path: string, headers: Record<string, string>, body = ''): string {
  const all = body ? { ...headers, 'Content-Length': String(Buffer.byteLength(body)) } : headers;
  return `${method} ${path} HTTP/1.1\r\n${Object.entries(all)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')}\r\n${body}`;
}
