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

/** One page of a keyset-paged list, shaped like the GraphQL connections (src/shared/connection.ts). */
export interface Page<T> {
  nodes: T[];
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
  totalCount: number;
}

/**
 * Keyset paging over a sorted query: fetches `first + 1` rows after the (decoded) cursor to learn
 * whether more follow, and counts every match. `cursorOf` encodes the last node's sort key; the
 * caller checks `first` (the bounds and their messages differ per list).
 */
export async function paginate<T, C>(q: {
  first: number;
  after: C | undefined;
  fetch: (limit: number, after: C | undefined) => Promise<T[]>;
  count: () => Promise<number>;
  cursorOf: (last: T) => string;
}): Promise<Page<T>> {
  const [rows, totalCount] = await Promise.all([q.fetch(q.first + 1, q.after), q.count()]);
  return pageOf(rows, q.first, totalCount, q.cursorOf);
}

/** The page of `first` nodes from `rows` (fetched with a limit of `first + 1`, as paginate does). */
export function pageOf<T>(rows: T[], first: number, totalCount: number, cursorOf: (last: T) => string): Page<T> {
  const nodes = rows.slice(0, first);
  const last = nodes[nodes.length - 1];
  return { nodes, pageInfo: { hasNextPage: rows.length > first, endCursor: last === undefined ? null : cursorOf(last) }, totalCount };
}
