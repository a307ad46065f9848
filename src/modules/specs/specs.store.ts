import type postgres from 'postgres';
import type { Sql } from '../../db/client';
import { decoder } from '../../db/rows';
import { specs } from '../../db/schema';
import { createCurrentTable, createDatasetTable, currentTableNameFor, hasCurrentTable, tableNameFor } from '../datasets/dataset-tables.store';
import type { CompiledSpec, SpecKind } from '../../ingest/contract';

/** A specs row and where its current rows live. */
export type SpecRecord = typeof specs.$inferSelect & {
  /** A DIMENSION with unique columns: the table of its current rows (see currentTableNameFor). */
  currentTableName: string | null;
};

const decodeSpec = decoder(specs);

function toSpec(r: Record<string, unknown>): SpecRecord {
  const spec = decodeSpec(r);
  return { ...spec, currentTableName: hasCurrentTable(spec.compiled) ? currentTableNameFor(spec.tableName) : null };
}

/** Arbitrary fixed key: serialises version numbering of one spec name. */
const SPEC_LOCK_CLASS = 7284;

export class SpecsStore {
  constructor(private readonly sql: Sql) {}

  /** Inserts the next version of `name` and creates its typed table, in one transaction. */
  async insertVersion(v: { name: string; kind: SpecKind; program: string; raw: unknown; compiled: CompiledSpec; createdBy: string }): Promise<SpecRecord> {
    return this.sql.begin(async (tx) => {
      await tx`select pg_advisory_xact_lock(${SPEC_LOCK_CLASS}, hashtext(${v.name}))`;
      const [{ next }] = await tx<[{ next: number }]>`select coalesce(max(version), 0) + 1 as next from specs where name = ${v.name}`;
      const tableName = tableNameFor(v.name, next);
      const compiled = { ...v.compiled, name: v.name };
      const [row] = await tx`
        insert into specs (name, version, kind, program, raw, compiled, table_name, created_by)
        values (${v.name}, ${next}, ${v.kind}::spec_kind, ${v.program}, ${tx.json(v.raw as postgres.JSONValue)},
                ${tx.json(compiled as unknown as postgres.JSONValue)}, ${tableName}, ${v.createdBy})
        returning *`;
      await createDatasetTable(tx, tableName, compiled);
      if (hasCurrentTable(compiled)) await createCurrentTable(tx, tableName, compiled);
      return toSpec(row!);
    }) as Promise<SpecRecord>;
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
