import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';

/** Header carrying `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`. */
export const SIGNATURE_HEADER = 'Sluice-Signature';
/** Header carrying the event id: the same on every attempt, so receivers can drop repeats. */
export const EVENT_ID_HEADER = 'Sluice-Event-Id';
export const EVENT_TYPE_HEADER = 'Sluice-Event-Type';

/** A new signing secret: shown to the client once, stored encrypted. */
export function generateSigningSecret(): string {
  return `whsec_${randomBytes(32).toString('base64url')}`;
}

/** The Stripe-style header value for `body` signed at `timestampSeconds` (the README shows the receiver's check). */
export function signatureHeader(secret: string, body: string, timestampSeconds: number): string {
  const v1 = createHmac('sha256', secret).update(`${timestampSeconds}.${body}`).digest('hex');
  return `t=${timestampSeconds},v1=${v1}`;
}

/**
 * Encrypts signing secrets at rest. Why encrypt rather than hash: Sluice must read the secret to
 * sign. Why not plain: a database dump or a read-only replica would then let anyone forge
 * deliveries. The key never enters the database; the webhook id is bound in as associated data,
 * so a ciphertext copied to another row does not decrypt.
 */
export class SecretBox {
  private readonly key: Buffer;

  constructor(keyMaterial: string) {
    this.key = Buffer.from(hkdfSync('sha256', keyMaterial, 'sluice', 'webhook-signing-secrets', 32));
  }

  seal(webhookId: string, secret: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(Buffer.from(webhookId));
    const ct = Buffer.concat([cipher.update(secret, 'utf8'), cipher.final(), cipher.getAuthTag()]);
    return `v1.${iv.toString('base64url')}.${ct.toString('base64url')}`;
  }

  /** The secret, or undefined when the key changed (or the value was tampered with). */
  open(webhookId: string, sealed: string): string | undefined {
    const [version, ivText, ctText] = sealed.split('.');
    if (version !== 'v1' || !ivText || !ctText) return undefined;
    try {
      const ct = Buffer.from(ctText, 'base64url');
      const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(ivText, 'base64url'));
      decipher.setAAD(Buffer.from(webhookId));
      decipher.setAuthTag(ct.subarray(ct.length - 16));
      return Buffer.concat([decipher.update(ct.subarray(0, ct.length - 16)), decipher.final()]).toString('utf8');
    } catch {
      return undefined;
    }
  }
}
