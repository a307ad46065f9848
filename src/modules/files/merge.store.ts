import type { MergeCounts } from '../../db/schema/specs';

export type { MergeCounts } from '../../db/schema/specs';
import type { Writable } from 'node:stream';
import type postgres from 'postgres';
import type { Sql } from '../../db/client';
import type { CompiledSpec } from '../../ingest/contract';
import { copyBinary, createCurrentTable, createScratchTable, currentTableNameFor, quoteIdentifier } from '../datasets/dataset-tables.store';

/** What a merge did (or a dry run would do) to a dimension's current table, in keys. */
/** One key whose row a merge changes: the values before (as stored) and after (from the file). */
export interface ChangedRow {
  /** Line of the file's row. */
  line: number;
  key: Array<{ column: string; value: string | null }>;
  /** The file and line that last wrote the current row. */
  previousFileId: string;
  previousLine: number;
  /** Only the columns that change; values as PostgreSQL prints them (NULL = null). */
  changes: Array<{ column: string; before: string | null; after: string | null }>;
}

export interface MergeDiff extends MergeCounts {
  /** The first MERGE_SAMPLE_ROWS changed rows, by line. */
  changes: ChangedRow[];
}

/**
 * A row of MergeSql.sample(): aliases over a dataset's current table and the file's rows, not a
 * drizzle table's row, so it is typed here and read raw (no decoder: `kN`/`dN` are per-spec
 * aliases, and nothing of a dataset table with user column names is camelised).
 */
type SampleRow = { line: number; prev_file: string; prev_line: number } & Record<string, unknown>;

/** Changed rows a dry run lists (the counts cover all of them). */
export const MERGE_SAMPLE_ROWS = 20;

/** Arbitrary fixed key (beside SPEC_LOCK_CLASS): serialises merges into one current table. */
const MERGE_LOCK_CLASS = 7285;

/**
 * The set-based SQL of one merge of `source` (a relation holding a file's typed rows: its
 * partition, or the dry run's temp table) into a dimension's current table. Every identifier comes
 * from the compiled spec and is quoted after the allowlist check.
 *
 * Rows of the file with the same key as typed values (`1` and `01` in an integer key are two keys
 * to the in-file check, which compares the text) merge as one key: the later line wins.
 */
class MergeSql {
  readonly current: string;
  private readonly all: string[];
  private readonly key: string[];
  private readonly values: string[];
  private readonly join: string;

  /** `source`: a quoted relation name, or a parenthesised SELECT of the file's rows. */
  constructor(
    readonly spec: CompiledSpec,
    tableName: string,
    private readonly source: string,
  ) {
    this.current = quoteIdentifier(currentTableNameFor(tableName));
    const keySet = new Set(spec.uniqueKey);
    this.all = spec.columns.map((c) => quoteIdentifier(c.column));
    this.key = spec.uniqueKey.map(quoteIdentifier);
    this.values = spec.columns.filter((c) => !keySet.has(c.column)).map((c) => quoteIdentifier(c.column));
    // `=` where the key column cannot be NULL keeps the join hashable; NULL keys match NULL keys.
    this.join = spec.uniqueKey
      .map((k) => {
        const col = spec.columns.find((c) => c.column === k)!;
        const q = quoteIdentifier(k);
        return col.nullable ? `c.${q} is not distinct from s.${q}` : `c.${q} = s.${q}`;
      })
      .join(' and ');
  }

  /** The file's rows, one per key. */
  private get rows(): string {
    // Aliased: `source` may be a subquery (a spec table from before partitioning), which
    // PostgreSQL before 16 accepts in FROM only with an alias.
    return `(select distinct on (${this.key.join(', ')}) * from ${this.source} as file_rows order by ${this.key.join(', ')}, _line desc)`;
  }

  private changed(a: string, b: string): string {
    if (this.values.length === 0) return 'false';
    return `(${this.values.map((v) => `${a}.${v}`).join(', ')}) is distinct from (${this.values.map((v) => `${b}.${v}`).join(', ')})`;
  }

  counts(): string {
    return `select count(*) filter (where c._file_id is null)::int as inserted,
        count(*) filter (where c._file_id is not null and ${this.changed('s', 'c')})::int as updated,
        count(*) filter (where c._file_id is not null and not ${this.changed('s', 'c')})::int as unchanged
      from ${this.rows} s left join ${this.current} c on ${this.join}`;
  }

  missing(): string {
    return `select count(*)::int as deleted from ${this.current} c where not exists (select 1 from ${this.source} s where ${this.join})`;
  }

  sample(limit: number): string {
    if (!Number.isSafeInteger(limit) || limit < 0) throw new Error(`bad sample size ${limit}`);
    const keys = this.key.map((k, i) => `s.${k}::text as k${i}`);
    const diffs = this.values.map((v, i) => `case when s.${v} is distinct from c.${v} then jsonb_build_array(c.${v}::text, s.${v}::text) end as d${i}`);
    return `select s._line as line, c._file_id as prev_file, c._line as prev_line, ${[...keys, ...diffs].join(', ')}
      from ${this.rows} s join ${this.current} c on ${this.join}
      where ${this.changed('s', 'c')} order by s._line limit ${limit}`;
  }

  /** Inserts new keys, updates changed rows (recording the file and line that wrote them). */
  upsert(): string {
    const cols = [...this.all, '_file_id', '_line'].join(', ');
    const onConflict =
      this.values.length === 0
        ? 'do nothing'
        : `do update set ${[...this.values, '_file_id', '_line', '_updated_at'].map((v) => `${v} = excluded.${v}`).join(', ')}
           where ${this.changed('c', 'excluded')}`;
    return `insert into ${this.current} as c (${cols}, _updated_at)
      select ${cols}, now() from ${this.rows} s
      on conflict (${this.key.join(', ')}) ${onConflict}`;
  }

  deleteMissing(): string {
    return `delete from ${this.current} c where not exists (select 1 from ${this.source} s where ${this.join})`;
  }

  toChangedRow(r: SampleRow): ChangedRow {
    const keyCols = this.spec.uniqueKey;
    const valueCols = this.spec.columns.filter((c) => !keyCols.includes(c.column)).map((c) => c.column);
    const changes: ChangedRow['changes'] = [];
    valueCols.forEach((column, i) => {
      const d = r[`d${i}`] as [string | null, string | null] | null;
      if (d) changes.push({ column, before: d[0], after: d[1] });
    });
    return {
      line: r.line,
      key: keyCols.map((column, i) => ({ column, value: (r[`k${i}`] as string | null) ?? null })),
      previousFileId: r.prev_file,
      previousLine: r.prev_line,
      changes,
    };
  }
}

async function diffOf(tx: postgres.TransactionSql, q: MergeSql, deleteMissing: boolean): Promise<MergeCounts> {
  const [c] = await tx.unsafe<Array<{ inserted: number; updated: number; unchanged: number }>>(q.counts());
  const deleted = deleteMissing ? (await tx.unsafe<Array<{ deleted: number }>>(q.missing()))[0]!.deleted : 0;
  return { inserted: c!.inserted, updated: c!.updated, unchanged: c!.unchanged, deleted };
}

/**
 * Takes the merge lock of a dimension's current table (held until the transaction ends) and
 * creates the table when it is missing. Merges into one table run one at a time, so the counts
 * a merge computes are the changes it makes.
 */
async function lockCurrent(tx: postgres.TransactionSql, tableName: string, spec: CompiledSpec): Promise<void> {
  const current = currentTableNameFor(tableName);
  await tx`select pg_advisory_xact_lock(${MERGE_LOCK_CLASS}, hashtext(${current}))`;
  await createCurrentTable(tx, tableName, spec);
}

/**
 * Merges a file's rows (`source`, its loaded partition) into the current table, in the caller's
 * transaction (the ingest job's fenced one: a crash or a lost fence leaves the table as it was).
 * The counts come from the same query a dry run uses, and are checked against what the writes
 * report.
 */
export async function mergeFileRows(
  tx: postgres.TransactionSql,
  m: { tableName: string; spec: CompiledSpec; source: string; deleteMissing: boolean },
): Promise<MergeCounts> {
  await lockCurrent(tx, m.tableName, m.spec);
  const q = new MergeSql(m.spec, m.tableName, m.source);
  const counts = await diffOf(tx, q, m.deleteMissing);
  const written = (await tx.unsafe(q.upsert())).count;
  const deleted = m.deleteMissing ? (await tx.unsafe(q.deleteMissing())).count : 0;
  if (written !== counts.inserted + counts.updated || deleted !== counts.deleted) {
    // Cannot happen under the merge lock; refuse to commit counts that are not the effect.
    throw new Error(`merge into ${q.current} wrote ${written} rows and deleted ${deleted}, expected ${JSON.stringify(counts)}`);
  }
  return counts;
}

/** The name of the dry run's table (a temp table: one per session, dropped with the transaction). */
const DRY_RUN_TABLE = 'sluice_dry_run';

class DryRunRollback extends Error {}

/** A dry run's diff query ran past its time limit (PostgreSQL cancelled it). */
export class DiffTimeoutError extends Error {
  constructor(readonly timeoutMs: number) {
    super(`The diff against the current table took longer than ${timeoutMs} ms`);
  }
}

/** SQLSTATE query_canceled: what statement_timeout raises. */
const QUERY_CANCELED = '57014';

/**
 * A dry-run merge: `load` COPYs the file's valid rows (binary format, as an ingestion does) into
 * a temp table inside a transaction that is always rolled back; the diff against the current table
 * is computed with the merge's own SQL. Nothing is written: without a current table (a spec from
 * before merges) the rolled-back transaction creates an empty one.
 */
export async function dryRunMerge<T>(
  sql: Sql,
  m: { tableName: string; spec: CompiledSpec; deleteMissing: boolean; columns: string[]; timeoutMs: number },
  load: (copy: Writable) => Promise<T>,
): Promise<{ result: T; diff: MergeDiff }> {
  let out: { result: T; diff: MergeDiff } | undefined;
  try {
    await sql.begin(async (tx) => {
      await createScratchTable(tx, DRY_RUN_TABLE, m.tableName);
      const result = await copyBinary(tx, DRY_RUN_TABLE, m.columns, false, load);
      // The COPY ran as long as the upload did; what follows is bounded.
      if (!Number.isSafeInteger(m.timeoutMs) || m.timeoutMs < 1) throw new Error(`bad timeout ${m.timeoutMs}`);
      await tx.unsafe(`set local statement_timeout = ${m.timeoutMs}`);
      const [exists] = await tx<Array<{ oid: string | null }>>`select to_regclass(${quoteIdentifier(currentTableNameFor(m.tableName))})::text as oid`;
      if (!exists?.oid) await lockCurrent(tx, m.tableName, m.spec);
      const q = new MergeSql(m.spec, m.tableName, quoteIdentifier(DRY_RUN_TABLE));
      const counts = await diffOf(tx, q, m.deleteMissing);
      const changes = counts.updated > 0 ? (await tx.unsafe<SampleRow[]>(q.sample(MERGE_SAMPLE_ROWS))).map((r) => q.toChangedRow(r)) : [];
      out = { result, diff: { ...counts, changes } };
      throw new DryRunRollback();
    });
  } catch (err) {
    if ((err as { code?: unknown }).code === QUERY_CANCELED) throw new DiffTimeoutError(m.timeoutMs);
    if (!(err instanceof DryRunRollback)) throw err;
  }
  return out!;
}
