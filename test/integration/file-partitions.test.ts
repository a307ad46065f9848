import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type Database } from '../../src/db/client';
import { filePartitionName, partitionParent, prepareRowTable } from '../../src/modules/datasets/dataset-tables.store';
import { createTestDatabase } from '../helpers/app';

/**
 * A file's partition as the ingestion job loads it (ingestion-load.ts): prepareRowTable, COPY
 * (FREEZE when the table was created or truncated by the transaction), attach, commit. A retried
 * attempt over one that committed (a worker that died before reporting) must replace the file's
 * rows, never add to them.
 */
const TABLE = 'ds_partitions_v1';
const FILE = '0b9a1c52-6f0e-4d6a-9a43-1f2e3d4c5b6a';
const ROWS = 5_000;

let db: Database;

beforeAll(async () => {
  const { url } = await createTestDatabase();
  db = connect(url, { max: 2, appName: 'sluice-test' });
  await db.sql.unsafe(
    `create table ${TABLE} (_file_id uuid not null, _line integer not null, _ingested_at timestamptz not null default now(), v text) partition by list (_file_id)`,
  );
});

afterAll(async () => {
  await db?.dispose();
});

/** One attempt: the file's rows COPYed (text format here) into where prepareRowTable says, then attached and committed. */
async function loadAttempt(rows: number, value: string): Promise<{ freeze: boolean | undefined }> {
  let freeze: boolean | undefined;
  await db.sql.begin(async (tx) => {
    const into = await prepareRowTable(tx, TABLE, FILE);
    freeze = into.freeze;
    const options = into.freeze ? '(format text, freeze)' : '(format text)';
    const copy = await tx.unsafe(`copy ${into.table} (_file_id, _line, v) from stdin with ${options}`).writable();
    const lines = Array.from({ length: rows }, (_, i) => `${FILE}\t${i + 2}\t${value}\n`);
    await pipeline(Readable.from(lines), copy);
    await into.attach();
  });
  return { freeze };
}

async function counts(): Promise<{ n: number; lines: number; values: string[] }> {
  const [row] = await db.sql<
    { n: number; lines: number }[]
  >`select count(*)::int as n, count(distinct _line)::int as lines from ${db.sql(TABLE)} where _file_id = ${FILE}`;
  const values = (await db.sql<{ v: string }[]>`select distinct v from ${db.sql(TABLE)} where _file_id = ${FILE}`).map((r) => r.v);
  return { n: row!.n, lines: row!.lines, values };
}

describe("a file's partition", () => {
  it('is created, COPYed with FREEZE and attached by the first attempt', async () => {
    expect(await loadAttempt(ROWS, 'first')).toEqual({ freeze: true });
    expect(await db.sql.begin((tx) => partitionParent(tx, filePartitionName(FILE)))).toBe(TABLE);
    expect(await counts()).toEqual({ n: ROWS, lines: ROWS, values: ['first'] });
  });

  it('a retried attempt over a committed one replaces the rows: no duplicate (_file_id, _line), no row of the earlier attempt', async () => {
    expect(await loadAttempt(ROWS, 'second')).toEqual({ freeze: true });
    expect(await counts()).toEqual({ n: ROWS, lines: ROWS, values: ['second'] });
    // A third attempt with fewer rows (the file changed in storage is refused elsewhere; this is
    // the partition's own guarantee): only its rows remain.
    expect(await loadAttempt(ROWS - 10, 'third')).toEqual({ freeze: true });
    expect(await counts()).toEqual({ n: ROWS - 10, lines: ROWS - 10, values: ['third'] });
  });

  it('an attempt that rolls back leaves the committed rows as they were', async () => {
    await expect(
      db.sql.begin(async (tx) => {
        const into = await prepareRowTable(tx, TABLE, FILE);
        await tx.unsafe(`insert into ${into.table} (_file_id, _line, v) values ('${FILE}', 2, 'rolled back')`);
        throw new Error('attempt failed');
      }),
    ).rejects.toThrow('attempt failed');
    expect(await counts()).toEqual({ n: ROWS - 10, lines: ROWS - 10, values: ['third'] });
  });
});
