import type postgres from 'postgres';
import type { Sql } from '../../db/client';
import { decoder } from '../../db/rows';
import { skills } from '../../db/schema';
import type { Tx } from '../../db/tx';
import type { ParsedFramework } from './ctdl';

export const CREDENTIAL_ENGINE_SOURCE = 'credential_engine';

/** A skills row. */
export type SkillRecord = typeof skills.$inferSelect;

export interface SkillFilter {
  frameworkCtid?: string | null;
  /** Already escaped for LIKE. */
  searchPattern?: string | null;
  sourceName?: string | null;
  includeRemoved?: boolean;
}

/** What one framework's import changed. */
export interface FrameworkWrite {
  created: number;
  updated: number;
  /** Competencies that were in the framework before and are gone upstream now. */
  removed: number;
}

const decodeSkill = decoder(skills);

const json = (tx: Tx, v: unknown) => tx.json(v as postgres.JSONValue);

export class SkillsStore {
  constructor(private readonly sql: Sql) {}

  /**
   * Writes one framework and its competencies: upsert by CTID (ids are kept, so the tree and
   * outside references stay valid), then the tree as skill ids, then competencies of this
   * framework that are gone upstream are marked removed. Run it inside the job's fenced
   * transaction so a failure leaves nothing half-written.
   */
  async writeFramework(tx: Tx, fw: ParsedFramework, jobId: string): Promise<FrameworkWrite> {
    await tx`
      insert into skill_frameworks (ce_ctid, uri, name, description, source_name, raw, competency_count, import_job_id)
      values (${fw.ctid}, ${fw.uri}, ${fw.name}, ${fw.description}, ${CREDENTIAL_ENGINE_SOURCE}, ${json(tx, fw.raw)}, ${fw.competencies.length}, ${jobId})
      on conflict (ce_ctid) do update set uri = excluded.uri, name = excluded.name, description = excluded.description,
        raw = excluded.raw, competency_count = excluded.competency_count, import_job_id = excluded.import_job_id, imported_at = now()`;

    const input = fw.competencies.map((c) => ({
      ctid: c.ctid,
      name: c.name,
      description: c.description,
      reference_id: c.referenceId,
      keywords: c.keywords,
      category: c.category,
      raw: c.raw,
      position: c.position,
      source_uri: c.uri,
    }));
    const written = input.length
      ? await tx<{ id: string; ce_ctid: string; inserted: boolean }[]>`
          insert into skills (ce_ctid, name, description, reference_id, keywords, category, raw, position, source_uri,
                              source_name, framework_ctid, framework_name, framework_uri, import_job_id)
          select x.ctid, x.name, x.description, x.reference_id, x.keywords, x.category, x.raw, x.position, x.source_uri,
                 ${CREDENTIAL_ENGINE_SOURCE}, ${fw.ctid}, ${fw.name}, ${fw.uri}, ${jobId}::uuid
          from jsonb_to_recordset(${json(tx, input)}) as x(ctid text, name text, description text, reference_id text,
               keywords text[], category text, raw jsonb, position int, source_uri text)
          on conflict (ce_ctid) do update set name = excluded.name, description = excluded.description,
            reference_id = excluded.reference_id, keywords = excluded.keywords, category = excluded.category,
            raw = excluded.raw, position = excluded.position, source_uri = excluded.source_uri,
            source_name = excluded.source_name, framework_ctid = excluded.framework_ctid,
            framework_name = excluded.framework_name, framework_uri = excluded.framework_uri,
            import_job_id = excluded.import_job_id, removed_at = null, updated_at = now()
          returning id, ce_ctid, (xmax = 0) as inserted`
      : [];

    const idOf = new Map(written.map((r) => [r.ce_ctid, r.id]));
    const tree = fw.competencies.map((c) => ({
      id: idOf.get(c.ctid)!,
      parents: c.parentCtids.map((p) => idOf.get(p)!),
      children: c.childCtids.map((ch) => idOf.get(ch)!),
    }));
    if (tree.length) {
      await tx`
        update skills s set parent_nodes = x.parents, child_nodes = x.children
        from jsonb_to_recordset(${json(tx, tree)}) as x(id uuid, parents uuid[], children uuid[])
        where s.id = x.id`;
    }

    const removed = await tx`
      update skills set removed_at = now(), updated_at = now()
      where framework_ctid = ${fw.ctid} and source_name = ${CREDENTIAL_ENGINE_SOURCE} and removed_at is null
        and ce_ctid <> all(select jsonb_array_elements_text(${json(
          tx,
          fw.competencies.map((c) => c.ctid),
        )}))
      returning id`;

    const created = written.filter((r) => r.inserted === true).length;
    return { created, updated: written.length - created, removed: removed.length };
  }

  async get(id: string): Promise<SkillRecord | undefined> {
    const [row] = await this.sql`select * from skills where id = ${id}`;
    return row ? decodeSkill(row) : undefined;
  }

  /** Skills by id, for DataLoader batches: one query however many ids. */
  async byIds(ids: readonly string[]): Promise<SkillRecord[]> {
    if (!ids.length) return [];
    const rows = await this.sql`select * from skills where id = any(${ids as string[]}::uuid[])`;
    return rows.map(decodeSkill);
  }

  private where(f: SkillFilter, after?: { createdAt: Date; id: string }) {
    const s = this.sql;
    const parts = [s`true`];
    if (!f.includeRemoved) parts.push(s`removed_at is null`);
    if (f.frameworkCtid) parts.push(s`framework_ctid = ${f.frameworkCtid}`);
    if (f.sourceName) parts.push(s`source_name = ${f.sourceName}`);
    if (f.searchPattern) {
      parts.push(s`(name ilike ${f.searchPattern} or description ilike ${f.searchPattern} or reference_id ilike ${f.searchPattern})`);
    }
    if (after) parts.push(s`(created_at, id) < (${after.createdAt}, ${after.id}::uuid)`);
    return parts.reduce((acc, p) => s`${acc} and ${p}`);
  }

  /** Newest first; ties (one import) by id, so pages never overlap. */
  async list(f: SkillFilter, limit: number, after?: { createdAt: Date; id: string }): Promise<SkillRecord[]> {
    const rows = await this.sql`select * from skills where ${this.where(f, after)} order by created_at desc, id desc limit ${limit}`;
    return rows.map(decodeSkill);
  }

  /** Offset pagination in the same order, for clients of the replaced skill service. */
  async page(f: SkillFilter, skip: number, limit: number): Promise<SkillRecord[]> {
    const rows = await this.sql`select * from skills where ${this.where(f)} order by created_at desc, id desc offset ${skip} limit ${limit}`;
    return rows.map(decodeSkill);
  }

  async count(f: SkillFilter): Promise<number> {
    const [row] = await this.sql<{ n: number }[]>`select count(*)::int as n from skills where ${this.where(f)}`;
    return row!.n;
  }
}
