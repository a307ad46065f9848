import { createHash } from 'node:crypto';
import type postgres from 'postgres';
import type { Sql } from '../../db/client';
import type { Tx } from '../jobs/jobs.store';
import { IDENTIFIER_PATTERN } from '../../ingest/identifier';
import { pgType, type CompiledSpec, type SpecKind } from '../../ingest/contract';

export interface SpecRecord {
  id: string;
  name: string;
  version: number;
  kind: SpecKind;
  program: string;
  raw: unknown;
  compiled: CompiledSpec;
  tableName: string;
  /** A DIMENSION with unique columns: the table of its current rows (see currentTableNameFor). */
  currentTableName: string | null;
  createdBy: string;
  createdAt: Date;
}

function toSpec(r: Record<string, unknown>): SpecRecord {
  return {
    id: r['id'] as string,
    name: r['name'] as string,
    version: r['version'] as number,
    kind: r['kind'] as SpecKind,
    program: r['program'] as string,
    raw: r['raw'],
    compiled: r['compiled'] as CompiledSpec,
    tableName: r['table_name'] as string,
    currentTableName: hasCurrentTable(r['compiled'] as CompiledSpec) ? currentTableNameFor(r['table_name'] as string) : null,
    createdBy: r['created_by'] as string,
    createdAt: r['created_at'] as Date,
  };
}

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

/** Arbitrary fixed key: serialises version numbering of one spec name. */
const SPEC_LOCK_CLASS = 7284;

export class SpecsStore {
  constructor(private readonly sql: Sql) {}

  /** Inserts the next version of `name` and creates its typed table, in one transaction. */
  async insertVersion(v: { name: string; kind: SpecKind; program: string; raw: unknown; compiled: CompiledSpec; createdBy: string }): Promise<SpecRecord> {
    return this.sql.begin(async (tx) => {
      await tx`select pg_advisory_xact_lock(${SPEC_LOCK_CLASS}, hashtext(${v.name}))`;
      const [{ next }] = (await tx`select coalesce(max(version), 0) + 1 as next from specs where name = ${v.name}`) as unknown as [{ next: number }];
      const tableName = tableNameFor(v.name, next);
      const compiled = { ...v.compiled, name: v.name };
      const [row] = await tx`
        insert into specs (name, version, kind, program, raw, compiled, table_name, created_by)
        values (${v.name}, ${next}, ${v.kind}::spec_kind, ${v.program}, ${tx.json(v.raw as postgres.JSONValue)},
                ${tx.json(compiled as unknown as postgres.JSONValue)}, ${tableName}, ${v.createdBy})
        returning *`;
      await this.createTable(tx, tableName, compiled);
      if (hasCurrentTable(compiled)) await createCurrentTable(tx, tableName, compiled);
      return toSpec(row!);
    }) as Promise<SpecRecord>;
  }

  private async createTable(tx: Tx, table: string, spec: CompiledSpec): Promise<void> {
    const columns = spec.columns.map((c) => `${quoteIdentifier(c.column)} ${pgType(c)}`);
    // Partitioned by file: each file's rows are a partition of their own, where (_file_id, _line)
    // is unique (see prepareRowTable in ingest.ts): a retried ingestion replaces its rows instead
    // of duplicating them.
    await tx.unsafe(
      `create table ${quoteIdentifier(table)} (
        _file_id uuid not null,
        _line integer not null,
        _ingested_at timestamptz not null default now(),
        ${columns.join(',\n        ')}
      ) partition by list (_file_id)`,
    );
  }

  async get(name: string, version?: number | null): Promise<SpecRecord | undefined> {
    const rows = version
      ? await this.sql`select * from specs where name = ${name} and version = ${version}`
      : await this.sql`select * from specs where name = ${name} order by version desc limit 1`;
    return rows[0] ? toSpec(rows[0]) : undefined;
  }

  async getById(id: string): Promise<SpecRecord | undefined> {
    const [row] = await this.sql`select * from specs where id = ${id}`;
    return row ? toSpec(row) : undefined;
  }

  /** Latest version of every spec, or every version of one. */
  async list(opts: { name?: string | null; allVersions?: boolean }): Promise<SpecRecord[]> {
    const rows = opts.name
      ? await this.sql`select * from specs where name = ${opts.name} order by version desc`
      : opts.allVersions
        ? await this.sql`select * from specs order by name, version desc`
        : await this.sql`select distinct on (name) * from specs order by name, version desc`;
    return rows.map(toSpec);
  }
}
