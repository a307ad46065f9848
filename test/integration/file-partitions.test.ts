import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type Database } from '../../src/db/client';
import { ensureLineIndex, filePartitionName, LOAD_FLUSH_AFTER, partitionParent, prepareRowTable } from '../../src/modules/datasets/dataset-tables.store';
import { createTestDatabase } from '../helpers/app';

/**
 * A file's partition as the ingestion job loads it (ingestion-load.ts): prepareRowTable, COPY
 * (FREEZE when the table was created or truncated by the transaction), attach, commit. A retried
 * attempt over one that committed (a worker that died before reporting) must replace the file's
 * rows, never add to them. The load builds no index; a corrections upload adds the unique one on
 * `_line` (ensureLineIndex) before it writes.
 */
const TABLE = 'ds_partitions_v1';
const FILE = '0b9a1c52-6f0e-4d6a-9a43-1f2e3d4c5b6a';
const ROWS = 5_000;

let db: Database;
/** A client that keeps the server's notices (the product's drops them), for ATTACH's DEBUG line. */
let noticed: postgres.Sql;
const notices: string[] = [];

beforeAll(async () => {
  const { url } = await createTestDatabase();
  db = connect(url, { max: 2, appName: 'sluice-test' });
  noticed = postgres(url, { max: 1, onnotice: (n) => notices.push(String(n.message)) });
  await db.sql.unsafe(
    `create table ${TABLE} (_file_id uuid not null, _line integer not null, _ingested_at timestamptz not null default now(), v text) partition by list (_file_id)`,
  );
});

afterAll(async () => {
  await noticed?.end({ timeout: 5 });
  await db?.dispose();
});

/**
 * One attempt: the file's rows COPYed (text format here) into where prepareRowTable says, then
 * attached and committed. Returns whether it could FREEZE and the `backend_flush_after` it COPYed with.
 */
async function loadAttempt(rows: number, value: string, sql: postgres.Sql = db.sql): Promise<{ freeze: boolean | undefined; flushAfter: string }> {
  let freeze: boolean | undefined;
  let flushAfter = '';
  await sql.begin(async (tx) => {
    const into = await prepareRowTable(tx, TABLE, FILE);
    freeze = into.freeze;
    flushAfter = String((await tx`show backend_flush_after`)[0]!['backend_flush_after']);
    const options = into.freeze ? '(format text, freeze)' : '(format text)';
    const copy = await tx.unsafe(`copy ${into.table} (_file_id, _line, v) from stdin with ${options}`).writable();
    const lines = Array.from({ length: rows }, (_, i) => `${FILE}\t${i + 2}\t${value}\n`);
    await pipeline(Readable.from(lines), copy);
    await tx`set local client_min_messages = debug1`;
    await into.attach();
    await tx`set local client_min_messages = notice`;
  });
  return { freeze, flushAfter };
}

/** The indexes of the file's partition. */
async function partitionIndexes(): Promise<string[]> {
  return (await db.sql<{ indexdef: string }[]>`select indexdef from pg_indexes where tablename = ${filePartitionName(FILE)} order by indexname`).map(
    (r) => r.indexdef,
  );
}

async function counts(): Promise<{ n: number; lines: number; values: string[] }> {
  const [row] = await db.sql<
    { n: number; lines: number }[]
  >`select count(*)::int as n, count(distinct _line)::int as lines from ${db.sql(TABLE)} where _file_id = ${FILE}`;
  const values = (await db.sql<{ v: string }[]>`select distinct v from ${db.sql(TABLE)} where _file_id = ${FILE}`).map((r) => r.v);
  return { n: row!.n, lines: row!.lines, values };
}

describe("a file's partition", () => {
  it('is created, COPYed with FREEZE and attached by the first attempt, with no index, and ATTACH reads no row', async () => {
    const [settings] = await db.sql<{ wal_level: string; backend_flush_after: string }[]>`
      select current_setting('wal_level') as wal_level, current_setting('backend_flush_after') as backend_flush_after`;
    const { wal_level: walLevel, backend_flush_after: flushDefault } = settings!;
    notices.length = 0;
    // At wal_level=minimal the COPY skips WAL and the partition is fsynced at commit: the backend
    // starts the writeback while it COPYs. Elsewhere the setting is left as the server has it.
    expect(await loadAttempt(ROWS, 'first', noticed)).toEqual({ freeze: true, flushAfter: walLevel === 'minimal' ? LOAD_FLUSH_AFTER : flushDefault });
    expect(await db.sql.begin((tx) => partitionParent(tx, filePartitionName(FILE)))).toBe(TABLE);
    expect(await counts()).toEqual({ n: ROWS, lines: ROWS, values: ['first'] });
    // The CHECK matches the partition bound, so ATTACH proves it instead of scanning the rows.
    expect(notices).toContain(`partition constraint for table "${filePartitionName(FILE)}" is implied by existing constraints`);
    // No key is built at load (see prepareRowTable): one load writes each line once.
    expect(await partitionIndexes()).toEqual([]);
    // The setting is the transaction's only.
    expect((await db.sql`show backend_flush_after`)[0]!['backend_flush_after']).toBe(flushDefault);
  });

  it('a retried attempt over a committed one replaces the rows: no duplicate (_file_id, _line), no row of the earlier attempt', async () => {
    expect(await loadAttempt(ROWS, 'second')).toMatchObject({ freeze: true });
    expect(await counts()).toEqual({ n: ROWS, lines: ROWS, values: ['second'] });
    // A third attempt with fewer rows (the file changed in storage is refused elsewhere; this is
    // the partition's own guarantee): only its rows remain.
    expect(await loadAttempt(ROWS - 10, 'third')).toMatchObject({ freeze: true });
    expect(await counts()).toEqual({ n: ROWS - 10, lines: ROWS - 10, values: ['third'] });
  });

  it('gets a unique index on _line before a second writer adds rows: a duplicate line is refused, and a retry keeps it', async () => {
    await db.sql.begin((tx) => ensureLineIndex(tx, filePartitionName(FILE)));
    await db.sql.begin((tx) => ensureLineIndex(tx, filePartitionName(FILE)));
    const partition = filePartitionName(FILE);
    expect(await partitionIndexes()).toEqual([`CREATE UNIQUE INDEX ${partition}_line ON public.${partition} USING btree (_line)`]);
    const duplicate = await db.sql.unsafe(`insert into ${TABLE} (_file_id, _line, v) values ('${FILE}', 2, 'again')`).catch((e: { code?: string }) => e);
    expect((duplicate as { code?: string }).code).toBe('23505');
    expect(await loadAttempt(ROWS - 10, 'third')).toMatchObject({ freeze: true });
    expect(await counts()).toEqual({ n: ROWS - 10, lines: ROWS - 10, values: ['third'] });
    expect(await partitionIndexes()).toHaveLength(1);
  });

  it('a partition loaded with the old unique constraint on _line keeps it as its index; none is added', async () => {
    const older = '5d1e7c2a-3b4f-4a6e-8c9d-0e1f2a3b4c5d';
    const p = filePartitionName(older);
    await db.sql.begin(async (tx) => {
      await prepareRowTable(tx, TABLE, older);
      await tx.unsafe(`alter table ${p} add constraint ${p}_line unique (_line)`);
      await tx.unsafe(`alter table ${TABLE} attach partition ${p} for values in ('${older}')`);
    });
    await db.sql.begin((tx) => ensureLineIndex(tx, p));
    expect((await db.sql`select indexname from pg_indexes where tablename = ${p}`).map((r) => r['indexname'])).toEqual([`${p}_line`]);
  });

  it("takes the file id and the transaction time from its defaults while it loads, and has the table's own defaults after", async () => {
    const other = '7c4d2e1f-0a9b-4c8d-9e7f-6a5b4c3d2e1f';
    const p = filePartitionName(other);
    const defaults = async () =>
      (
        await db.sql<{ attname: string; def: string | null }[]>`
          select a.attname, pg_get_expr(d.adbin, d.adrelid) as def from pg_attribute a
          left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
          where a.attrelid = to_regclass(${p}) and a.attname in ('_file_id', '_ingested_at') order by a.attname`
      ).map((r) => [r.attname, r.def]);
    // The first attempt (a fresh partition), then a retry over it (truncated).
    for (const attempt of ['fresh', 'retry']) {
      let txNow = '';
      await db.sql.begin(async (tx) => {
        const into = await prepareRowTable(tx, TABLE, other);
        expect(into.fileIdDefault).toBe(true);
        txNow = String((await tx`select now()::text as now`)[0]!['now']);
        const copy = await tx.unsafe(`copy ${into.table} (_line, v) from stdin with (format text, freeze)`).writable();
        await pipeline(Readable.from(['2\ta\n', '3\tb\n']), copy);
        await into.attach();
      });
      const rows = await db.sql<{ id: string; at: string; v: string }[]>`
        select _file_id::text as id, _ingested_at::text as at, v from ${db.sql(TABLE)} where _file_id = ${other} order by _line`;
      expect({ attempt, rows }).toEqual({
        attempt,
        rows: [
          { id: other, at: txNow, v: 'a' },
          { id: other, at: txNow, v: 'b' },
        ],
      });
      expect(await defaults()).toEqual([
        ['_file_id', null],
        ['_ingested_at', 'now()'],
      ]);
      // A later writer of the partition (a corrections upload) gets the table's defaults, not the load's.
      await db.sql.unsafe(`insert into ${p} (_file_id, _line, v) values ('${other}', 100, 'later')`);
      const [later] = await db.sql<{ fresh: boolean }[]>`select _ingested_at > ${txNow}::timestamptz as fresh from ${db.sql(p)} where _line = 100`;
      expect(later!.fresh).toBe(true);
      await expect(db.sql.unsafe(`insert into ${p} (_line, v) values (101, 'no id')`)).rejects.toMatchObject({ code: '23502' });
    }
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
