import { bigint, integer, jsonb, pgTable, text, uuid } from 'drizzle-orm/pg-core';
import { describe, expect, it } from 'vitest';
import { decoder } from '../../src/db/rows';

// src/db/rows.ts decodes postgres.js rows into the drizzle row type. What it must keep doing,
// however it builds the objects: every column under its key, int8 as a number, columns the table
// lacks under their camel-case name unless ignored, whether a row comes alone or from a result.

const things = pgTable('things', {
  id: uuid('id').primaryKey(),
  displayName: text('display_name'),
  size: bigint('size', { mode: 'number' }),
  count: integer('count'),
  meta: jsonb('meta'),
});

/** A postgres.js-like result: an array of rows with the query's columns. */
function result(rows: Array<Record<string, unknown>>, columns: string[]): Array<Record<string, unknown>> & { columns: Array<{ name: string }> } {
  return Object.assign(rows, { columns: columns.map((name) => ({ name })) });
}

describe('decoder', () => {
  const decode = decoder(things);
  const row = { id: 'a', display_name: 'A', size: '9007199254740991', count: 3, meta: { k: [1] } };

  it('maps each column to its key, int8 text to a number, everything else as it is', () => {
    expect(decode(row)).toEqual({ id: 'a', displayName: 'A', size: 9007199254740991, count: 3, meta: { k: [1] } });
    expect(decode({ ...row, size: null })).toMatchObject({ size: null });
  });

  it('keeps columns the table lacks under their camel-case name, alone or from a result (found once per result)', () => {
    const rows = result(
      [
        { ...row, parent_code: 'P1' },
        { ...row, id: 'b', parent_code: 'P2' },
      ],
      ['id', 'display_name', 'size', 'count', 'meta', 'parent_code'],
    );
    expect(rows.map(decode).map((r) => [r.id, (r as Record<string, unknown>)['parentCode']])).toEqual([
      ['a', 'P1'],
      ['b', 'P2'],
    ]);
    expect(decode({ ...row, parent_code: 'P3' })).toMatchObject({ parentCode: 'P3' });
  });

  it('leaves out the columns it is told to ignore, and gives every table column a key', () => {
    const page = decoder(things, { ignore: ['_total'] });
    const rows = result([{ _total: 7, ...row }], ['_total', 'id', 'display_name', 'size', 'count', 'meta']);
    const decoded = page(rows[0]!, 0, rows);
    expect(decoded).toEqual({ id: 'a', displayName: 'A', size: 9007199254740991, count: 3, meta: { k: [1] } });
    expect(Object.keys(decoded)).not.toContain('Total');
    // A partial row: the missing columns are there, undefined.
    const partial = decode({ id: 'c' });
    expect(Object.keys(partial).sort()).toEqual(['count', 'displayName', 'id', 'meta', 'size']);
    expect(partial).toEqual({ id: 'c' });
  });

  it('returns a fresh object per row (a change to one decoded row reaches no other)', () => {
    const a = decode(row);
    const b = decode(row);
    (a as Record<string, unknown>)['count'] = 99;
    expect(b.count).toBe(3);
  });
});
