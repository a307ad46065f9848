import { createHash } from 'node:crypto';
import type postgres from 'postgres';
import { isUuid } from '../../shared/cursor';
import type { Tx } from '../../db/tx';
import { IDENTIFIER_PATTERN } from '../../ingest/identifier';
import { pgType, type CompiledSpec } from '../../ingest/contract';

/**
 * The DDL of dataset tables, in one place: a spec version's table (`ds_<name>_v<version>`,
 * partitioned by file), a file's partition of it, a dimension's current table, the temp tables
 * shaped like them, and the identifier checks every name passes before it is placed in SQL text.
 */

/** Defence in depth: every identifier is re-checked right before it is placed in DDL or COPY. */
export function assertIdentifier(name: string): string {
  if (!IDENTIFIER_PATTERN.test(name)) throw new Error(`unsafe SQL identifier ${JSON.stringify(name)}`);
  return name;
}

/**
 * `name` as a quoted SQL identifier, for the SQL that has to be built as text (DDL). Why quote
 * names that already passed the allowlist: the allowlist admits SQL key words (`user`, `select`,
 * `order`, `current_user`), which PostgreSQL refuses or misreads unquoted. Allowlisted names hold
 * no `"`, so quoting needs no escaping.
 */
export function quoteIdentifier(name: string): string {
  return `"${assertIdentifier(name)}"`;
}

/** `ds_<name>_v<version>`, shortened with a hash when it would pass PostgreSQL's 63-byte limit. */
export function tableNameFor(name: string, version: number): string {
  const full = `ds_${name}_v${version}`;
  if (full.length <= 63) return assertIdentifier(full);
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 8);
  return assertIdentifier(`ds_${name.slice(0, 40)}_${hash}_v${version}`);
}

/**
 * The current table of a dimension spec version (`<table>_current`): one row per key, the values
 * of the file that last wrote it. Shortened with a hash of the table name past 63 bytes.
 */
export function currentTableNameFor(tableName: string): string {
  const full = `${tableName}_current`;
  if (full.length <= 63) return assertIdentifier(full);
  const hash = createHash('sha256').update(tableName).digest('hex').slice(0, 8);
  return assertIdentifier(`${tableName.slice(0, 45)}_${hash}_current`);
}

/** A spec whose files can be merged by key: a DIMENSION with `unique` columns. */
export function hasCurrentTable(spec: Pick<CompiledSpec, 'kind' | 'uniqueKey'>): boolean {
  return spec.kind === 'DIMENSION' && spec.uniqueKey.length > 0;
}

/** The typed table of a spec version, created with the version (see SpecsStore.insertVersion). */
export async function createDatasetTable(tx: Tx, table: string, spec: CompiledSpec): Promise<void> {
  const columns = spec.columns.map((c) => `${quoteIdentifier(c.column)} ${pgType(c)}`);
  // Partitioned by file: each file's rows are a partition of their own, where (_file_id, _line)
  // is unique (see prepareRowTable): a retried ingestion replaces its rows instead of
  // duplicating them.
  await tx.unsafe(
    `create table ${quoteIdentifier(table)} (
        _file_id uuid not null,
        _line integer not null,
        _ingested_at timestamptz not null default now(),
        ${columns.join(',\n        ')}
      ) partition by list (_file_id)`,
  );
}

/**
 * Creates the current table of a dimension spec version when it does not exist (specs registered
 * before merges get theirs at their first merge). The key is unique with NULLS NOT DISTINCT: an
 * empty key cell is one key, as the in-file duplicate check counts it. Callers serialise on the
 * table (see the merge lock in files/merge.store.ts), so `if not exists` cannot race.
 */
export async function createCurrentTable(tx: Tx, tableName: string, spec: CompiledSpec): Promise<string> {
  const current = currentTableNameFor(tableName);
  const columns = spec.columns.map((c) => `${quoteIdentifier(c.column)} ${pgType(c)}`);
  await tx.unsafe(
    `create table if not exists ${quoteIdentifier(current)} (
      ${columns.join(',\n      ')},
      _file_id uuid not null,
      _line integer not null,
      _updated_at timestamptz not null default now(),
      unique nulls not distinct (${spec.uniqueKey.map(quoteIdentifier).join(', ')})
    )`,
  );
  return current;
}

/**
 * A temp table shaped like the dataset table `table` (a dry run's rows, a corrections file's
 * rows before they are applied), dropped with the transaction.
 */
export async function createScratchTable(tx: postgres.TransactionSql, name: string, table: string): Promise<void> {
  await tx.unsafe(`create temp table ${quoteIdentifier(name)} (like ${quoteIdentifier(table)} including defaults) on commit drop`);
}

/** Memory PostgreSQL may use to sort one file's key (per load, released at commit). */
export const KEY_BUILD_MEMORY = '128MB';

/** The partition holding one file's rows: `dsf_<file id without dashes>` (36 characters). */
export function filePartitionName(fileId: string): string {
  return assertIdentifier(`dsf_${fileId.replace(/-/g, '').toLowerCase()}`);
}

function assertFileId(fileId: string): void {
  if (!isUuid(fileId)) throw new Error(`file id ${JSON.stringify(fileId)} is not a UUID`);
}

/**
 * A fresh table for one file's rows, shaped like `table`, with no index yet; its CHECK makes
 * `_file_id` one value (see prepareRowTable). Returns its name.
 */
export async function createFilePartition(tx: postgres.TransactionSql, table: string, fileId: string): Promise<string> {
  assertFileId(fileId);
  const partition = filePartitionName(fileId);
  const p = quoteIdentifier(partition);
  await tx.unsafe(
    `create table ${p} (like ${quoteIdentifier(table)} including defaults, constraint ${quoteIdentifier(`${partition}_file`)} check (_file_id = '${fileId}'))`,
  );
  return partition;
}

/** Gives a file's partition (createFilePartition) its unique key on `_line` and attaches it to `table`. */
export async function attachFilePartition(tx: postgres.TransactionSql, table: string, fileId: string): Promise<void> {
  assertFileId(fileId);
  const partition = filePartitionName(fileId);
  const p = quoteIdentifier(partition);
  await tx.unsafe(`set local maintenance_work_mem = '${KEY_BUILD_MEMORY}'`);
  await tx.unsafe(`alter table ${p} add constraint ${quoteIdentifier(`${partition}_line`)} unique (_line)`);
  await tx.unsafe(`alter table ${quoteIdentifier(table)} attach partition ${p} for values in ('${fileId}')`);
}

/** Removes the rows a committed attempt left for `fileId` in `table` (its partition, emptied). */
export async function clearFileRows(tx: postgres.TransactionSql, table: string, fileId: string): Promise<void> {
  const [kind] = await tx<{ relkind: string }[]>`select relkind from pg_class where oid = to_regclass(${quoteIdentifier(table)})`;
  if (!kind) return;
  if (kind.relkind !== 'p') {
    await tx`delete from ${tx(table)} where _file_id = ${fileId}`;
    return;
  }
  if ((await partitionParent(tx, filePartitionName(fileId))) === table) await tx.unsafe(`truncate ${quoteIdentifier(filePartitionName(fileId))}`);
}

/** The table `partition` is attached to: `null` when detached, `undefined` when it does not exist. */
export async function partitionParent(tx: postgres.TransactionSql, partition: string): Promise<string | null | undefined> {
  const [existing] = await tx<{ parent: string | null }[]>`
    select p.relname as parent from pg_class c
    left join pg_inherits i on i.inhrelid = c.oid left join pg_class p on p.oid = i.inhparent
    where c.oid = to_regclass(${quoteIdentifier(partition)})`;
  return existing ? existing.parent : undefined;
}

/** Where one load's rows are COPYed (see prepareRowTable). */
export interface RowTarget {
  table: string;
  /** The table was created or truncated by the load's transaction: COPY ... FREEZE is allowed. */
  freeze?: boolean;
  /** Runs after the COPY, before the commit (key build and attach). */
  attach: () => Promise<void>;
}

/**
 * Where a file's rows are COPYed. Spec tables are partitioned by file (LIST on `_file_id`): each
 * file is loaded into a fresh table of its own with no index, then gets its unique key and is
 * attached as the file's partition, all in the caller's transaction.
 *
 * Uniqueness of (_file_id, _line): the partition's CHECK makes `_file_id` one value, so its
 * unique index on `_line` is unique on the pair, and LIST routing puts every row of a file in its
 * partition (the CHECK also lets ATTACH skip its scan). Why not a primary key on the pair:
 * PostgreSQL then maintains it row by row during COPY, which roughly doubled its cost, and a
 * one-column key builds in about 60% of the time of the two-column one
 * (bench/stages.bench.ts, cases C and G). A retry empties the earlier attempt's partition, so rows
 * are never duplicated. A spec table created before partitioning (not partitioned) gets the old
 * way: delete the file's rows, COPY into the table.
 *
 * `freeze`: the COPY may say FREEZE, since the table it loads was created or truncated by this
 * very transaction (PostgreSQL's condition for it): its rows are written frozen and all-visible,
 * so no later VACUUM or first reader rewrites every page to set hint bits or freeze them. Nobody
 * else can see the rows before the commit either way (a fresh partition is attached in the same
 * transaction; a truncated one is locked ACCESS EXCLUSIVE until the commit).
 */
export async function prepareRowTable(tx: postgres.TransactionSql, table: string, fileId: string): Promise<RowTarget> {
  assertFileId(fileId);
  const [kind] = await tx<{ relkind: string }[]>`select relkind from pg_class where oid = to_regclass(${quoteIdentifier(table)})`;
  if (kind?.relkind !== 'p') {
    await tx`delete from ${tx(table)} where _file_id = ${fileId}`;
    return { table, freeze: false, attach: async () => undefined };
  }
  const partition = filePartitionName(fileId);
  // A retry over a committed attempt: the file's partition of this table is emptied and loaded
  // again as it is (TRUNCATE locks only the partition; dropping or detaching it would lock the
  // whole spec table, blocking its readers behind every other load in flight).
  const parent = await partitionParent(tx, partition);
  if (parent === table) {
    await tx.unsafe(`truncate ${quoteIdentifier(partition)}`);
    return { table: partition, freeze: true, attach: async () => undefined };
  }
  // Left in another spec version's table (the spec changed between attempts): moved out of it.
  const p = quoteIdentifier(partition);
  if (parent !== undefined) await tx.unsafe(`drop table ${p}`);
  await createFilePartition(tx, table, fileId);
  return {
    table: partition,
    freeze: true,
    attach: () => attachFilePartition(tx, table, fileId),
  };
}
