import type { CsvDialectOptions } from '../../ingest/csv-dialect';
import type postgres from 'postgres';
import type { Sql } from '../../db/client';
import { decoder } from '../../db/rows';
import { bulkProcesses, bulkResults, directoryUsers, locations, organisations } from '../../db/schema';
import type { Tx } from '../../db/tx';
import type { BulkKind } from './directory.columns';
import type {
  LocationLookup,
  LocationType,
  LocationWrite,
  OrganisationLookup,
  OrganisationRef,
  OrganisationStatus,
  OrganisationWrite,
  UserLookup,
  UserType,
  UserWrite,
} from './rules';

type Row = Record<string, unknown>;

/**
 * A bulk upload: its `bulk_processes` row, except that `dialect` (the encoding and delimiter the
 * upload named; absent ones are detected) is always an object (`{}` for a NULL column).
 */
export type BulkProcess = Omit<typeof bulkProcesses.$inferSelect, 'dialect'> & { dialect: CsvDialectOptions };

/** The outcome of one row: its `bulk_results` row without the process id. */
export type BulkResult = Omit<typeof bulkResults.$inferSelect, 'processId'>;

export type LocationRecord = typeof locations.$inferSelect & { parentCode: string | null };

export type OrganisationRecord = typeof organisations.$inferSelect & { locationCode: string | null };

export type UserRecord = typeof directoryUsers.$inferSelect & { organisationExternalId: string | null; organisationName: string | null };

/**
 * The joined columns of the list queries (aliases, not columns of the listed table). The decoder
 * keeps them under their camel-case name, which is the record's property name.
 */
type LocationJoin = { parent_code: string | null };
type OrganisationJoin = { location_code: string | null };
type UserJoin = { organisation_external_id: string | null; organisation_name: string | null };

const decodeProcessRow = decoder(bulkProcesses);
const decodeResult = decoder(bulkResults);
const decodeLocation = decoder(locations);
const decodeOrganisation = decoder(organisations);
const decodeUser = decoder(directoryUsers);

function decodeProcess(r: Row): BulkProcess {
  const p = decodeProcessRow(r);
  return { ...p, dialect: p.dialect ?? {} };
}

const json = (tx: Tx, v: unknown) => tx.json(v as postgres.JSONValue);

/** SQL of the directory tables and of bulk processes. Batches travel as one jsonb parameter. */
export class DirectoryStore {
  constructor(private readonly sql: Sql) {}

  // ------------------------------------------------------------ processes and results

  async insertProcess(
    tx: Tx,
    v: {
      id: string;
      kind: BulkKind;
      locationType: LocationType | null;
      fileName: string;
      storageKey: string;
      size: number;
      sha256: string;
      totalRows: number;
      idempotencyKey: string | null;
      createdBy: string;
      dialect?: CsvDialectOptions;
    },
  ): Promise<BulkProcess | undefined> {
    const [row] = await tx`
      insert into bulk_processes (id, kind, location_type, file_name, storage_key, size, sha256, total_rows, idempotency_key, created_by, dialect)
      values (${v.id}, ${v.kind}::bulk_kind, ${v.locationType}::location_type, ${v.fileName}, ${v.storageKey}, ${v.size}, ${v.sha256}, ${v.totalRows}, ${v.idempotencyKey}, ${v.createdBy},
              ${tx.json({ ...v.dialect } as postgres.JSONValue)})
      on conflict (created_by, idempotency_key) do nothing
      returning *`;
    return row ? decodeProcess(row) : undefined;
  }

  async setJob(tx: Tx, id: string, jobId: string): Promise<void> {
    await tx`update bulk_processes set job_id = ${jobId} where id = ${id}`;
  }

  async getProcess(id: string): Promise<BulkProcess | undefined> {
    const [row] = await this.sql`select * from bulk_processes where id = ${id}`;
    return row ? decodeProcess(row) : undefined;
  }

  async byIdempotencyKey(createdBy: string, key: string): Promise<BulkProcess | undefined> {
    const [row] = await this.sql`select * from bulk_processes where created_by = ${createdBy} and idempotency_key = ${key}`;
    return row ? decodeProcess(row) : undefined;
  }

  /** The last line whose result is committed: a resumed job continues after it. */
  async lastLine(processId: string): Promise<number> {
    const [row] = await this.sql<{ line: number }[]>`select coalesce(max(line), 0)::int as line from bulk_results where process_id = ${processId}`;
    return row!.line;
  }

  async counts(processId: string): Promise<{ succeeded: number; failed: number }> {
    const [row] = await this.sql<{ succeeded: number; failed: number }[]>`
      select count(*) filter (where ok)::int as succeeded, count(*) filter (where not ok)::int as failed
      from bulk_results where process_id = ${processId}`;
    return { succeeded: row!.succeeded, failed: row!.failed };
  }

  async insertResults(tx: Tx, processId: string, results: BulkResult[]): Promise<void> {
    if (results.length === 0) return;
    const rows = results.map((r) => ({
      line: r.line,
      ok: r.ok,
      operation: r.operation,
      entity_id: r.entityId,
      error_code: r.errorCode,
      error_column: r.errorColumn,
      error_message: r.errorMessage,
      data: r.data,
    }));
    // Keyed by (process, line): a retried batch overwrites, never doubles.
    await tx`
      insert into bulk_results (process_id, line, ok, operation, entity_id, error_code, error_column, error_message, data)
      select ${processId}::uuid, x.line, x.ok, x.operation, x.entity_id, x.error_code, x.error_column, x.error_message, x.data
      from jsonb_to_recordset(${json(tx, rows)}) as x(line int, ok boolean, operation text, entity_id text, error_code text, error_column text, error_message text, data jsonb)
      on conflict (process_id, line) do update set ok = excluded.ok, operation = excluded.operation, entity_id = excluded.entity_id,
        error_code = excluded.error_code, error_column = excluded.error_column, error_message = excluded.error_message, data = excluded.data`;
  }

  async results(processId: string, ok: boolean, limit: number, afterLine: number): Promise<BulkResult[]> {
    const rows = await this.sql`
      select * from bulk_results where process_id = ${processId} and ok = ${ok} and line > ${afterLine} order by line limit ${limit}`;
    return rows.map((r) => {
      const { processId: _, ...result } = decodeResult(r);
      return result;
    });
  }

  // ------------------------------------------------------------ lookups for a batch

  async locationLookup(tx: Tx, codes: string[], ids: string[]): Promise<LocationLookup> {
    // A union, not `or`: each arm uses its own index (an `or` of two `= any` scans the table).
    const rows = await tx`
      select id, code, name, type, parent_id from locations where code = any(${codes}::text[])
      union select id, code, name, type, parent_id from locations where id = any(${ids}::text[])`;
    const lookup: LocationLookup = { byCode: new Map(), byId: new Map() };
    for (const r of rows) {
      const l = decodeLocation(r);
      lookup.byCode.set(l.code, l);
      lookup.byId.set(l.id, l);
    }
    return lookup;
  }

  async organisationLookup(tx: Tx, keys: { ids: string[]; externalIds: string[]; locationCodes: string[] }): Promise<OrganisationLookup> {
    const orgs = await this.orgs(tx, keys.ids, keys.externalIds);
    const locs = await this.locationLookup(tx, keys.locationCodes, []);
    return { ...orgs, locationsByCode: locs.byCode };
  }

  private async orgs(tx: Tx, ids: string[], externalIds: string[]) {
    const rows = await tx`
      select * from organisations where id = any(${ids}::text[])
      union select * from organisations where external_id = any(${externalIds}::text[])`;
    const byId = new Map<string, OrganisationRef>();
    const byExternalId = new Map<string, OrganisationRef>();
    for (const r of rows) {
      const o = decodeOrganisation(r);
      byId.set(o.id, o);
      if (o.externalId) byExternalId.set(o.externalId, o);
    }
    return { byId, byExternalId };
  }

  async userLookup(
    tx: Tx,
    keys: { ids: string[]; phones: string[]; emails: string[]; externalIds: string[]; orgIds: string[]; orgExternalIds: string[] },
  ): Promise<UserLookup> {
    const rows = await tx`
      select * from directory_users where id = any(${keys.ids}::text[])
      union select * from directory_users where phone = any(${keys.phones}::text[])
      union select * from directory_users where email = any(${keys.emails}::text[])
      union select * from directory_users where external_id = any(${keys.externalIds}::text[])`;
    const lookup: UserLookup = {
      byId: new Map(),
      byPhone: new Map(),
      byEmail: new Map(),
      byExternalId: new Map(),
      orgsById: new Map(),
      orgsByExternalId: new Map(),
    };
    for (const r of rows) {
      const u = decodeUser(r);
      lookup.byId.set(u.id, u);
      if (u.phone) lookup.byPhone.set(u.phone, u);
      if (u.email) lookup.byEmail.set(u.email, u);
      if (u.externalId) lookup.byExternalId.set(u.externalId, u);
    }
    const orgs = await this.orgs(tx, keys.orgIds, keys.orgExternalIds);
    lookup.orgsById = orgs.byId;
    lookup.orgsByExternalId = orgs.byExternalId;
    return lookup;
  }

  // ------------------------------------------------------------ writes (one row each, many per statement)

  async writeLocations(tx: Tx, rows: LocationWrite[]): Promise<void> {
    if (rows.length === 0) return;
    await tx`
      insert into locations (id, code, name, type, parent_id)
      select x.id, x.code, x.name, x.type, x.parent_id
      from jsonb_to_recordset(${json(tx, rows)}) as x(id text, code text, name text, type location_type, parent_id text)
      on conflict (id) do update set name = excluded.name, parent_id = excluded.parent_id, updated_at = now()`;
  }

  async writeOrganisations(tx: Tx, rows: OrganisationWrite[]): Promise<void> {
    if (rows.length === 0) return;
    await tx`
      insert into organisations (id, name, external_id, location_id, status, description, type)
      select x.id, x.name, x.external_id, x.location_id, x.status, x.description, x.type
      from jsonb_to_recordset(${json(tx, rows)})
        as x(id text, name text, external_id text, location_id text, status organisation_status, description text, type organisation_type)
      on conflict (id) do update set name = excluded.name, external_id = excluded.external_id, location_id = excluded.location_id,
        status = excluded.status, description = excluded.description, type = excluded.type, updated_at = now()`;
  }

  async writeUsers(tx: Tx, rows: UserWrite[]): Promise<void> {
    if (rows.length === 0) return;
    await tx`
      insert into directory_users (id, name, phone, email, organisation_id, user_type, roles, external_id)
      select x.id, x.name, x.phone, x.email, x.organisation_id, x.user_type, x.roles, x.external_id
      from jsonb_to_recordset(${json(tx, rows)})
        as x(id text, name text, phone text, email text, organisation_id text, user_type user_type, roles text[], external_id text)
      on conflict (id) do update set name = excluded.name, phone = excluded.phone, email = excluded.email,
        organisation_id = excluded.organisation_id, user_type = excluded.user_type, roles = excluded.roles,
        external_id = excluded.external_id, updated_at = now()`;
  }

  // ------------------------------------------------------------ reads

  /** Locations ordered by code (keyset: `code > after`). */
  async listLocations(f: { type?: LocationType | null; parentCode?: string | null }, limit: number, after?: string): Promise<LocationRecord[]> {
    const s = this.sql;
    const rows = await s<(LocationJoin & Row)[]>`
      select l.*, p.code as parent_code from locations l left join locations p on p.id = l.parent_id
      where true
        ${f.type ? s`and l.type = ${f.type}::location_type` : s``}
        ${f.parentCode ? s`and p.code = ${f.parentCode}` : s``}
        ${after !== undefined ? s`and l.code > ${after}` : s``}
      order by l.code limit ${limit}`;
    return rows.map((r) => ({ ...decodeLocation(r), parentCode: r.parent_code }));
  }

  async countLocations(f: { type?: LocationType | null; parentCode?: string | null }): Promise<number> {
    const s = this.sql;
    const [row] = await s<{ n: number }[]>`
      select count(*)::int as n from locations l left join locations p on p.id = l.parent_id
      where true ${f.type ? s`and l.type = ${f.type}::location_type` : s``} ${f.parentCode ? s`and p.code = ${f.parentCode}` : s``}`;
    return row!.n;
  }

  private orgWhere(f: { locationCode?: string | null; status?: OrganisationStatus | null; externalId?: string | null }) {
    const s = this.sql;
    return s`true
      ${f.locationCode ? s`and l.code = ${f.locationCode}` : s``}
      ${f.status ? s`and o.status = ${f.status}::organisation_status` : s``}
      ${f.externalId ? s`and o.external_id = ${f.externalId}` : s``}`;
  }

  /** Organisations ordered by (name, id). */
  async listOrganisations(
    f: { locationCode?: string | null; status?: OrganisationStatus | null; externalId?: string | null },
    limit: number,
    after?: { name: string; id: string },
  ): Promise<OrganisationRecord[]> {
    const s = this.sql;
    const rows = await s<(OrganisationJoin & Row)[]>`
      select o.*, l.code as location_code from organisations o left join locations l on l.id = o.location_id
      where ${this.orgWhere(f)} ${after ? s`and (o.name, o.id) > (${after.name}, ${after.id})` : s``}
      order by o.name, o.id limit ${limit}`;
    return rows.map((r) => ({ ...decodeOrganisation(r), locationCode: r.location_code }));
  }

  async countOrganisations(f: { locationCode?: string | null; status?: OrganisationStatus | null; externalId?: string | null }): Promise<number> {
    const [row] = await this.sql<{ n: number }[]>`
      select count(*)::int as n from organisations o left join locations l on l.id = o.location_id where ${this.orgWhere(f)}`;
    return row!.n;
  }

  private userWhere(f: { organisationId?: string | null; organisationExternalId?: string | null; userType?: UserType | null; role?: string | null }) {
    const s = this.sql;
    return s`true
      ${f.organisationId ? s`and u.organisation_id = ${f.organisationId}` : s``}
      ${f.organisationExternalId ? s`and o.external_id = ${f.organisationExternalId}` : s``}
      ${f.userType ? s`and u.user_type = ${f.userType}::user_type` : s``}
      ${f.role ? s`and ${f.role} = any(u.roles)` : s``}`;
  }

  /** Users ordered by (name, id). */
  async listUsers(
    f: { organisationId?: string | null; organisationExternalId?: string | null; userType?: UserType | null; role?: string | null },
    limit: number,
    after?: { name: string; id: string },
  ): Promise<UserRecord[]> {
    const s = this.sql;
    const rows = await s<(UserJoin & Row)[]>`
      select u.*, o.external_id as organisation_external_id, o.name as organisation_name
      from directory_users u left join organisations o on o.id = u.organisation_id
      where ${this.userWhere(f)} ${after ? s`and (u.name, u.id) > (${after.name}, ${after.id})` : s``}
      order by u.name, u.id limit ${limit}`;
    return rows.map((r) => ({ ...decodeUser(r), organisationExternalId: r.organisation_external_id, organisationName: r.organisation_name }));
  }

  async countUsers(f: {
    organisationId?: string | null;
    organisationExternalId?: string | null;
    userType?: UserType | null;
    role?: string | null;
  }): Promise<number> {
    const [row] = await this.sql<{ n: number }[]>`
      select count(*)::int as n from directory_users u left join organisations o on o.id = u.organisation_id where ${this.userWhere(f)}`;
    return row!.n;
  }
}
