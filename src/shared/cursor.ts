import { BadInputError } from './errors';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface TimeCursor {
  createdAt: Date;
  id: string;
}

/** Opaque keyset cursor for lists ordered by (created_at desc, id desc). */
export function encodeTimeCursor(row: TimeCursor): string {
  return Buffer.from(JSON.stringify([row.createdAt.toISOString(), row.id])).toString('base64url');
}

export function decodeTimeCursor(cursor: string): TimeCursor {
  try {
    const [at, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as [string, string];
    const createdAt = new Date(at);
    if (Number.isNaN(createdAt.getTime()) || !UUID.test(id)) throw new Error('bad');
    return { createdAt, id };
  } catch {
    throw new BadInputError(`after ${JSON.stringify(cursor)} is not a cursor returned by this API`, { field: 'after' });
  }
}

export function isUuid(value: string): boolean {
  return UUID.test(value);
}
