import { createHmac, timingSafeEqual } from 'node:crypto';

/** `<expiry, unix seconds>.<HMAC-SHA256, base64url>` */
const TOKEN = /^(\d{1,12})\.([A-Za-z0-9_-]{43})$/;

export type TokenCheck = { ok: true; expiresAt: Date } | { ok: false; reason: 'INVALID' | 'EXPIRED'; expiresAt?: Date };

/**
 * Signs and checks the `token` of Sluice's own upload URLs (`PUT /uploads/<fileId>?token=...`).
 * The MAC binds the file id and the expiry, so neither can be changed; single use is enforced by
 * the file row (see SignedUploadsStore.claim), not by the token.
 */
export class UploadUrlSigner {
  private readonly key: Buffer;

  /**
   * `secret`: SLUICE_UPLOAD_URL_SECRET, or the JWT secret. A key of its own is derived either way,
   * so an upload token can never pass as a JWT signature or the other way round.
   */
  constructor(secret: string) {
    this.key = createHmac('sha256', secret).update('sluice upload URL key v1').digest();
  }

  sign(fileId: string, expiresAt: Date): string {
    const exp = Math.floor(expiresAt.getTime() / 1000);
    return `${exp}.${this.mac(fileId, exp).toString('base64url')}`;
  }

  verify(fileId: string, token: string | undefined, now = new Date()): TokenCheck {
    const m = TOKEN.exec(token ?? '');
    if (!m) return { ok: false, reason: 'INVALID' };
    const exp = Number(m[1]);
    const given = Buffer.from(m[2]!, 'base64url');
    const expected = this.mac(fileId, exp);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'INVALID' };
    const expiresAt = new Date(exp * 1000);
    // Checked only once the MAC holds, so a forged expiry is reported as tampering, not as expiry.
    if (now.getTime() >= expiresAt.getTime()) return { ok: false, reason: 'EXPIRED', expiresAt };
    return { ok: true, expiresAt };
  }

  private mac(fileId: string, exp: number): Buffer {
    return createHmac('sha256', this.key).update(`PUT /uploads/${fileId.toLowerCase()} until ${exp}`).digest();
  }
}

/**
 * Expiry instants are whole seconds, as in the token, so the row and the token always agree.
 * Rounded up, so a URL never lives shorter than its configured lifetime.
 */
export function wholeSeconds(d: Date): Date {
  return new Date(Math.ceil(d.getTime() / 1000) * 1000);
}
