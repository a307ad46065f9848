import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type Database } from '../../src/db/client';
import {
  attachLoadedPartition,
  createSplitFilePartition,
  ensureLineIndex,
  fileLeafName,
  filePartitionName,
  prepareRowTable,
} from '../../src/modules/datasets/dataset-tables.store';
import { dropUnkeptPartition } from '../../src/modules/files/load-session';
import { createTestDatabase } from '../helpers/app';

/**
 * A file partition split by blocks of lines (a load during upload over SLUICE_LOAD_STREAMS > 1,
 * see src/modules/files/load-session.ts) under the two other writers of a file's partition: a
 * retry of the file's job (prepareRowTable over a committed attempt) and a corrections upload
 * (ensureLineIndex, then rows inserted by line).
 */
let db: Database;
const table = 'ds_split_probe';
const fileId = '0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0';
const partition = filePartitionName(fileId);

beforeAll(async () => {
  db = connect((await createTestDatabase()).url, { max: 2, appName: 'sluice-test' });
  await db.sql.unsafe(
    `create table ${table} (_file_id uuid not null, _line integer not null, _ingested_at timestamptz not null default now(), school text) partition by list (_file_id)`,
  );
  // As a split load leaves it: leaves loaded, the partition attached with the table's defaults back.
  await db.sql.begin(async (tx) => {
    await createSplitFilePartition(tx, table, fileId, 2);
    await tx.unsafe(`insert into ${partition} (_file_id, _line, school) select '${fileId}', g, 's' || g from generate_series(2, 10001) g`);
    await attachLoadedPartition(tx, table, fileId);
  });
});
afterAll(async () => {
  await db.dispose();
});

const perLeaf = async () =>
  db.sql<{ leaf: string; n: number; wrong: number }[]>`
    select tableoid::regclass::text as leaf, count(*)::int as n, count(*) filter (where ((_line >> 12) % 2) <> right(tableoid::regclass::text, 1)::int)::int as wrong
    from ${db.sql(table)} where _file_id = ${fileId} group by 1 order by 1`;

describe('a split file partition', () => {
  it('is attached as the file’s partition, each line in the leaf of its block', async () => {
    expect(await perLeaf()).toEqual([
      { leaf: fileLeafName(fileId, 0), n: 4094 + 1810, wrong: 0 },
      { leaf: fileLeafName(fileId, 1), n: 4096, wrong: 0 },
    ]);
  });

  it('a corrections upload: one unique index on _line per leaf, so PostgreSQL refuses a line twice', async () => {
    await db.sql.begin((tx) => ensureLineIndex(tx, partition));
    await db.sql.begin((tx) => ensureLineIndex(tx, partition));
    const indexes = await db.sql<{ name: string }[]>`
      select indexrelid::regclass::text as name from pg_index where indrelid in (to_regclass(${fileLeafName(fileId, 0)}), to_regclass(${fileLeafName(fileId, 1)})) order by 1`;
    expect(indexes.map((i) => i.name)).toEqual([`${fileLeafName(fileId, 0)}_line`, `${fileLeafName(fileId, 1)}_line`]);
    for (const line of [3, 5000]) {
      await expect(db.sql.unsafe(`insert into ${partition} (_file_id, _line, school) values ('${fileId}', ${line}, 'again')`)).rejects.toMatchObject({
        code: '23505',
      });
    }
    // A line the file did not have goes in, to its block's leaf.
    await db.sql.unsafe(`insert into ${partition} (_file_id, _line, school) values ('${fileId}', 20000, 'new')`);
    const [row] = await db.sql<{ leaf: string }[]>`select tableoid::regclass::text as leaf from ${db.sql(table)} where _line = 20000`;
    expect(row!.leaf).toBe(fileLeafName(fileId, (20000 >> 12) % 2));
    await db.sql.unsafe(`delete from ${partition} where _line = 20000`);
  });

  it('the cleanup of a split load never drops the partition the file’s job put in its place (it did, under load: the job SUCCEEDED with no rows)', async () => {
    const other = 'a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d';
    const part = filePartitionName(other);
    // As a split load's first transaction leaves it: detached, empty, no record.
    await db.sql.begin((tx) => createSplitFilePartition(tx, table, other, 2));
    // The file's job loading the file itself (without the load lock): its transaction drops the
    // partition and creates, loads and attaches its own under the same name, not committed yet.
    const job = await db.sql.reserve();
    try {
      await job`begin`;
      await job.unsafe(`drop table ${part}`);
      await job.unsafe(`create table ${part} (like ${table} including defaults, constraint ${part}_file check (_file_id = '${other}'))`);
      await job.unsafe(`insert into ${part} (_file_id, _line, school) values ('${other}', 2, 'kept')`);
      await job.unsafe(`alter table ${table} attach partition ${part} for values in ('${other}')`);
      // Meanwhile the load cleans up after itself (as its thread, the API thread or the sweep do).
      const cleanup = dropUnkeptPartition(db.sql, other);
      const commit = new Promise((r) => setTimeout(r, 300)).then(() => job`commit`);
      expect(await cleanup).toBe(false);
      await commit;
    } finally {
      job.release();
    }
    const [row] = await db.sql<{ n: number; parent: string }[]>`
      select count(*)::int as n, (select inhparent::regclass::text from pg_inherits where inhrelid = to_regclass(${part})) as parent
      from ${db.sql(table)} where _file_id = ${other}`;
    expect(row).toEqual({ n: 1, parent: table });
  });

  it('a retry of the file’s job empties it and loads it again through its key (no FREEZE on a partitioned table)', async () => {
    await db.sql.begin(async (tx) => {
      const into = await prepareRowTable(tx, table, fileId);
      expect(into).toMatchObject({ table: partition, freeze: false, fileIdDefault: true });
      expect((await tx.unsafe(`select count(*)::int as n from ${partition}`))[0]!['n']).toBe(0);
      // As the load's COPY would: `_file_id` from the partition's default.
      await tx.unsafe(`insert into ${partition} (_line, school) select g, 'r' || g from generate_series(2, 9001) g`);
      await into.attach();
    });
    expect(await perLeaf()).toEqual([
      { leaf: fileLeafName(fileId, 0), n: 4094 + 810, wrong: 0 },
      { leaf: fileLeafName(fileId, 1), n: 4096, wrong: 0 },
    ]);
    const defaults = await db.sql<{ table_name: string; column_default: string | null }[]>`
      select table_name, column_default from information_schema.columns where table_name like ${`${partition}%`} and column_name = '_file_id' order by 1`;
    expect(defaults.map((d) => d.column_default)).toEqual([null, null, null]);
  });
});
