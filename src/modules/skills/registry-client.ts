import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { guardedLookup, isPrivateAddress } from '../../shared/address-guard';
import { CodedError } from './coded-error';

/** Why a registry request failed. Closed: stored in job results, documented in the README. */
export enum RegistryErrorCode {
  /** The registry answered 404 or 410: no such document. */
  REGISTRY_NOT_FOUND = 'REGISTRY_NOT_FOUND',
  /** Any other non-2xx status. */
  REGISTRY_HTTP_ERROR = 'REGISTRY_HTTP_ERROR',
  /** No complete response within the timeout. */
  REGISTRY_TIMEOUT = 'REGISTRY_TIMEOUT',
  /** The response is larger than the byte cap. */
  REGISTRY_TOO_LARGE = 'REGISTRY_TOO_LARGE',
  /** A redirect to another host, a redirect loop or too many redirects. */
  REGISTRY_REDIRECT_REFUSED = 'REGISTRY_REDIRECT_REFUSED',
  /** The host resolves to a private, loopback or link-local address. */
  REGISTRY_ADDRESS_REFUSED = 'REGISTRY_ADDRESS_REFUSED',
  /** DNS or connection failure. */
  REGISTRY_UNREACHABLE = 'REGISTRY_UNREACHABLE',
  /** The body is not JSON (also: compressed or binary data, invalid UTF-8). */
  REGISTRY_BAD_JSON = 'REGISTRY_BAD_JSON',
  /** The response declares a Content-Encoding (gzip, br...) although Sluice asks for identity. */
  REGISTRY_BAD_ENCODING = 'REGISTRY_BAD_ENCODING',
}

/** Leading bytes of compressed or archive formats a registry must not send as JSON. */
const COMPRESSED_MAGIC: Array<[string, number[]]> = [
  ['gzip', [0x1f, 0x8b]],
  ['zlib/deflate', [0x78, 0x9c]],
  ['zlib/deflate', [0x78, 0xda]],
  ['zip', [0x50, 0x4b, 0x03, 0x04]],
  ['zstd', [0x28, 0xb5, 0x2f, 0xfd]],
  ['bzip2', [0x42, 0x5a, 0x68]],
  ['xz', [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
];

/** Text from the network made safe for a stored message: no control characters, bounded length. */
function printable(text: string, max = 200): string {
  const clean = text.replace(/[\u0000-\u001f\u007f-\u009f\ufffd]/g, '?');
  return clean.length > max ? `${clean.slice(0, max)}…` : clean;
}

/**
 * Why `body` cannot be a JSON document before it is parsed, or undefined. Why check at all:
 * JSON.parse's message quotes the input, so compressed or binary bytes would carry NUL and
 * other control characters into job results (jsonb refuses `\u0000`), and invalid UTF-8 would be
 * replaced silently with U+FFFD.
 */
function notJsonReason(body: Buffer): string | undefined {
  for (const [name, magic] of COMPRESSED_MAGIC) {
    if (body.length >= magic.length && magic.every((b, i) => body[i] === b)) {
      return `is ${name}-compressed data, not JSON (sent without a Content-Encoding header)`;
    }
  }
  // JSON text has no control bytes other than tab, LF and CR (inside strings they are escaped).
  const control = body.findIndex((b) => b < 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d);
  if (control >= 0) return `is binary data, not JSON (control byte 0x${body[control]!.toString(16).padStart(2, '0')} at byte ${control})`;
  return undefined;
}

export class RegistryError extends CodedError<RegistryErrorCode> {}

export { isPrivateAddress };

export interface RegistryClientOptions {
  /** Origin of the registry, e.g. https://credentialengineregistry.org. Only this host is contacted. */
  baseUrl: string;
  /** Time for one response, headers and body together, in milliseconds. */
  timeoutMs: number;
  /** Largest body read, in bytes. */
  maxBytes: number;
  /** Same-host redirects followed per request. */
  maxRedirects: number;
  /** Allow addresses in private, loopback and link-local ranges (tests, private mirrors). */
  allowPrivateAddresses: boolean;
}

/** Strict: invalid UTF-8 is refused, never replaced with U+FFFD; a BOM is dropped. */
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A response with the signals that decide how its errors are reported. */
type Response = IncomingMessage & { timeoutSignal: AbortSignal; outer: AbortSignal | undefined };

function hostOf(url: URL): string {
  return url.hostname.replace(/^\[|\]$/g, '');
}

/**
 * Fetches JSON documents from one registry host. Every response has a timeout and a byte cap;
 * redirects are followed only to the same origin and only a few times; no other host is ever
 * contacted (the caller never passes links found inside documents).
 */
export class RegistryClient {
  readonly origin: string;
  private readonly base: URL;

  constructor(readonly options: RegistryClientOptions) {
    this.base = new URL(options.baseUrl);
    this.origin = this.base.origin;
  }

  /** GETs `path` (absolute path on the registry) and parses the body as JSON. */
  async getJson(path: string, signal?: AbortSignal): Promise<unknown> {
    if (!path.startsWith('/')) throw new Error(`registry path must be absolute, got ${JSON.stringify(path)}`);
    let url = new URL(path, this.base);
    const seen = new Set<string>([url.href]);
    for (let hop = 0; ; hop++) {
      const res = await this.request(url, signal);
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400 && res.headers.location) {
        res.resume();
        let next: URL;
        try {
          next = new URL(res.headers.location, url);
        } catch {
          throw new RegistryError(RegistryErrorCode.REGISTRY_REDIRECT_REFUSED, `${url.pathname} redirects to an invalid URL`);
        }
        if (next.origin !== this.origin) {
          throw new RegistryError(
            RegistryErrorCode.REGISTRY_REDIRECT_REFUSED,
            `${url.pathname} redirects to ${next.origin}, which is not the registry ${this.origin}`,
          );
        }
        if (hop >= this.options.maxRedirects) {
          throw new RegistryError(RegistryErrorCode.REGISTRY_REDIRECT_REFUSED, `${path} redirected more than ${this.options.maxRedirects} times`);
        }
        if (seen.has(next.href)) throw new RegistryError(RegistryErrorCode.REGISTRY_REDIRECT_REFUSED, `${path} redirects in a loop`);
        seen.add(next.href);
        url = next;
        continue;
      }
      return this.readJson(url, res);
    }
  }

  /** One request; the timeout covers connecting, headers and the whole body. */
  private request(url: URL, outer?: AbortSignal): Promise<Response> {
    const host = hostOf(url);
    if (net.isIP(host) && isPrivateAddress(host) && !this.options.allowPrivateAddresses) {
      return Promise.reject(new RegistryError(RegistryErrorCode.REGISTRY_ADDRESS_REFUSED, `${host} is a private or reserved address`));
    }
    const timeoutSignal = AbortSignal.timeout(this.options.timeoutMs);
    const signal = outer ? AbortSignal.any([outer, timeoutSignal]) : timeoutSignal;
    const lib = url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = lib.request(
        url,
        {
          method: 'GET',
          headers: { accept: 'application/ld+json, application/json;q=0.9', 'accept-encoding': 'identity', 'user-agent': 'sluice-skills-import' },
          lookup: guardedLookup(
            this.options.allowPrivateAddresses,
            (refused, message) => new RegistryError(refused ? RegistryErrorCode.REGISTRY_ADDRESS_REFUSED : RegistryErrorCode.REGISTRY_UNREACHABLE, message),
          ),
          signal,
          agent: false,
        },
        (res) => resolve(Object.assign(res, { timeoutSignal, outer })),
      );
      req.on('error', (err) => reject(this.mapError(err, url, timeoutSignal, outer)));
      req.end();
    });
  }

  private mapError(err: unknown, url: URL, timeoutSignal: AbortSignal, outer?: AbortSignal): unknown {
    if (outer?.aborted) return outer.reason ?? err;
    if (timeoutSignal.aborted)
      return new RegistryError(RegistryErrorCode.REGISTRY_TIMEOUT, `${url.pathname} did not answer within ${this.options.timeoutMs} ms`);
    if (err instanceof RegistryError) return err;
    const e = err as NodeJS.ErrnoException;
    return new RegistryError(RegistryErrorCode.REGISTRY_UNREACHABLE, `${url.host} could not be reached (${e.code ?? e.message})`);
  }

  private async readJson(url: URL, res: Response): Promise<unknown> {
    const status = res.statusCode ?? 0;
    if (status === 404 || status === 410) {
      res.resume();
      throw new RegistryError(RegistryErrorCode.REGISTRY_NOT_FOUND, `${url.pathname} does not exist on the registry (HTTP ${status})`);
    }
    if (status < 200 || status >= 300) {
      res.resume();
      throw new RegistryError(RegistryErrorCode.REGISTRY_HTTP_ERROR, `${url.pathname} answered HTTP ${status}`);
    }
    const encoding = (res.headers['content-encoding'] ?? '').trim().toLowerCase();
    if (encoding && encoding !== 'identity') {
      res.destroy();
      throw new RegistryError(
        RegistryErrorCode.REGISTRY_BAD_ENCODING,
        `${url.pathname} answered with Content-Encoding ${JSON.stringify(printable(encoding, 40))}; Sluice asks for uncompressed JSON (Accept-Encoding: identity)`,
      );
    }
    const max = this.options.maxBytes;
    const declared = Number(res.headers['content-length']);
    if (Number.isFinite(declared) && declared > max) {
      res.destroy();
      throw new RegistryError(RegistryErrorCode.REGISTRY_TOO_LARGE, `${url.pathname} is ${declared} bytes, more than the limit of ${max} bytes`);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const chunk of res as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > max) {
          res.destroy();
          throw new RegistryError(RegistryErrorCode.REGISTRY_TOO_LARGE, `${url.pathname} is more than the limit of ${max} bytes`);
        }
        chunks.push(chunk);
      }
    } catch (err) {
      throw err instanceof RegistryError ? err : this.mapError(err, url, res.timeoutSignal, res.outer);
    }
    const body = Buffer.concat(chunks, size);
    const notJson = notJsonReason(body);
    if (notJson) throw new RegistryError(RegistryErrorCode.REGISTRY_BAD_JSON, `${url.pathname} ${notJson}`);
    let text: string;
    try {
      text = utf8.decode(body);
    } catch {
      throw new RegistryError(RegistryErrorCode.REGISTRY_BAD_JSON, `${url.pathname} is not valid UTF-8, so it is not JSON`);
    }
    try {
      return JSON.parse(text) as unknown;
    } catch (err) {
      throw new RegistryError(RegistryErrorCode.REGISTRY_BAD_JSON, `${url.pathname} is not valid JSON (${printable((err as Error).message)})`);
    }
  }
}
