import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { guardedLookup, isPrivateAddress } from '../../shared/address-guard';
import { codeValues } from '../../shared/codes';

/** Why a delivery attempt failed. Closed: stored with each attempt, documented in the README. */
export const DELIVERY_ERROR_CODES = {
  WEBHOOK_HTTP_ERROR: 'The receiver answered with a status outside 200-299 (3xx included: redirects are not followed).',
  WEBHOOK_TIMEOUT: 'No response (headers and the capped body) within SLUICE_WEBHOOK_TIMEOUT_MS.',
  WEBHOOK_ADDRESS_REFUSED: 'The host is or resolves to a private, loopback or link-local address. Not retried.',
  WEBHOOK_UNREACHABLE: 'DNS or connection failure.',
  WEBHOOK_SECRET_UNREADABLE: 'The stored signing secret cannot be decrypted (the encryption key changed). Not retried.',
} as const;
export type DeliveryErrorCode = keyof typeof DELIVERY_ERROR_CODES;
export const DeliveryErrorCode = codeValues(DELIVERY_ERROR_CODES);

/** Codes no retry can fix. */
export const PERMANENT_ERRORS: ReadonlySet<DeliveryErrorCode> = new Set([
  DeliveryErrorCode.WEBHOOK_ADDRESS_REFUSED,
  DeliveryErrorCode.WEBHOOK_SECRET_UNREADABLE,
]);

export interface SendOptions {
  timeoutMs: number;
  maxResponseBytes: number;
  allowPrivateAddresses: boolean;
}

export interface SendOutcome {
  ok: boolean;
  statusCode: number | null;
  durationMs: number;
  errorCode: DeliveryErrorCode | null;
  errorMessage: string | null;
  responseBody: string | null;
}

class AddressRefused extends Error {
  constructor(
    readonly refused: boolean,
    message: string,
  ) {
    super(message);
  }
}

/** Text from a receiver made safe for a text column: no NUL or other control bytes except tab and newlines. */
function printable(bytes: Buffer): string {
  return new TextDecoder('utf-8').decode(bytes).replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g, '?');
}

/** Why a URL's literal host is refused, or undefined. Names are checked at connect (guardedLookup). */
export function literalHostRefusal(url: URL, allowPrivate: boolean): string | undefined {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (!allowPrivate && net.isIP(host) && isPrivateAddress(host)) return `${host} is a private or reserved address`;
  return undefined;
}

/**
 * One POST. Never throws: every outcome is data. The timeout covers connecting, sending and the
 * response up to the byte cap; the rest of a longer body is never read; redirects are answers,
 * not followed (a 3xx is a failed attempt).
 */
export async function sendWebhook(target: string, body: string, headers: Record<string, string>, opts: SendOptions): Promise<SendOutcome> {
  const started = performance.now();
  const done = (o: Omit<SendOutcome, 'durationMs'>): SendOutcome => ({ ...o, durationMs: Math.round(performance.now() - started) });
  const url = new URL(target);
  const literal = literalHostRefusal(url, opts.allowPrivateAddresses);
  if (literal) return done({ ok: false, statusCode: null, errorCode: DeliveryErrorCode.WEBHOOK_ADDRESS_REFUSED, errorMessage: literal, responseBody: null });
  const timeout = AbortSignal.timeout(opts.timeoutMs);
  const lib = url.protocol === 'https:' ? https : http;
  const payload = Buffer.from(body, 'utf8');
  try {
    const { statusCode, text } = await new Promise<{ statusCode: number; text: string }>((resolve, reject) => {
      const req = lib.request(
        url,
        {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'content-length': String(payload.length),
            'user-agent': 'sluice-webhooks',
            'accept-encoding': 'identity',
            ...headers,
          },
          lookup: guardedLookup(opts.allowPrivateAddresses, (refused, message) => new AddressRefused(refused, message)),
          signal: timeout,
          agent: false,
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          const finish = () => {
            res.removeAllListeners('data');
            resolve({ statusCode: res.statusCode ?? 0, text: printable(Buffer.concat(chunks, size)) });
            res.destroy();
          };
          if (opts.maxResponseBytes === 0) return finish();
          res.on('data', (chunk: Buffer) => {
            const room = opts.maxResponseBytes - size;
            chunks.push(chunk.subarray(0, room));
            size += Math.min(room, chunk.length);
            if (size >= opts.maxResponseBytes) finish();
          });
          res.on('end', finish);
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
    const ok = statusCode >= 200 && statusCode < 300;
    const redirect = statusCode >= 300 && statusCode < 400 ? ' (redirects are not followed)' : '';
    return done({
      ok,
      statusCode,
      errorCode: ok ? null : DeliveryErrorCode.WEBHOOK_HTTP_ERROR,
      errorMessage: ok ? null : `The receiver answered HTTP ${statusCode}${redirect}`,
      responseBody: text,
    });
  } catch (err) {
    if (timeout.aborted) {
      return done({
        ok: false,
        statusCode: null,
        errorCode: DeliveryErrorCode.WEBHOOK_TIMEOUT,
        errorMessage: `No response within ${opts.timeoutMs} ms`,
        responseBody: null,
      });
    }
    if (err instanceof AddressRefused) {
      const code = err.refused ? DeliveryErrorCode.WEBHOOK_ADDRESS_REFUSED : DeliveryErrorCode.WEBHOOK_UNREACHABLE;
      return done({ ok: false, statusCode: null, errorCode: code, errorMessage: err.message, responseBody: null });
    }
    const e = err as NodeJS.ErrnoException;
    return done({
      ok: false,
      statusCode: null,
      errorCode: DeliveryErrorCode.WEBHOOK_UNREACHABLE,
      errorMessage: `${url.host} could not be reached (${e.code ?? e.message})`,
      responseBody: null,
    });
  }
}
