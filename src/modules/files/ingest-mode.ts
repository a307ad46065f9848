import type { IngestMode } from '../../db/schema/specs';

export type { IngestMode } from '../../db/schema/specs';
import { BadInputError } from '../../shared/errors';
import type { CompiledSpec } from '../../ingest/contract';
import { hasCurrentTable } from '../datasets/dataset-tables.store';

/** MERGE: dimension rows are merged by key into the current table (and kept per file). APPEND: per file only. */
export interface ResolvedMode {
  mode: IngestMode;
  deleteMissing: boolean;
}

/**
 * The mode a CSV of `spec` is ingested with: MERGE by default for a DIMENSION with a key, APPEND
 * otherwise. MERGE where there is no key to merge by, or deleteMissing without MERGE, is refused.
 */
export function resolveIngestMode(
  spec: Pick<CompiledSpec, 'name' | 'kind' | 'uniqueKey'>,
  requested: IngestMode | null | undefined,
  deleteMissing: boolean | null | undefined,
): ResolvedMode {
  const mergeable = hasCurrentTable(spec);
  if (requested === 'MERGE' && !mergeable) {
    const why = spec.kind !== 'DIMENSION' ? `is an ${spec.kind} spec (append-only)` : 'has no unique columns to merge by';
    throw new BadInputError(`mode MERGE needs a DIMENSION spec with unique columns; spec ${JSON.stringify(spec.name)} ${why}`, {
      field: 'mode',
      kind: spec.kind,
    });
  }
  const mode: IngestMode = requested ?? (mergeable ? 'MERGE' : 'APPEND');
  if (deleteMissing && mode !== 'MERGE') {
    throw new BadInputError(`deleteMissing needs mode MERGE (a dimension with unique columns); spec ${JSON.stringify(spec.name)} is ingested with ${mode}`, {
      field: 'deleteMissing',
    });
  }
  return { mode, deleteMissing: Boolean(deleteMissing) };
}

/** A ZIP's mode before its CSVs are known: only deleteMissing with APPEND can be refused now. */
export function checkZipMode(requested: IngestMode | null | undefined, deleteMissing: boolean | null | undefined): void {
  if (deleteMissing && requested === 'APPEND') throw new BadInputError('deleteMissing needs mode MERGE', { field: 'deleteMissing' });
}

/**
 * The mode an upload records on its file: a CSV's resolved for its spec, a ZIP's as asked (its
 * CSVs resolve theirs, see childMode). Shared by direct uploads and signed-URL imports.
 */
export function uploadMode(
  spec: Pick<CompiledSpec, 'name' | 'kind' | 'uniqueKey'> | null,
  requested: IngestMode | null | undefined,
  deleteMissing: boolean | null | undefined,
): { mode: IngestMode | null; deleteMissing: boolean } {
  if (spec) return resolveIngestMode(spec, requested, deleteMissing);
  checkZipMode(requested, deleteMissing);
  return { mode: requested ?? null, deleteMissing: Boolean(deleteMissing) };
}

/**
 * The mode of one CSV of a ZIP: APPEND when the ZIP asked for it; otherwise its dimension
 * children with a key merge (with the ZIP's deleteMissing) and the others append.
 */
export function childMode(parent: { ingestMode: string | null; deleteMissing: boolean }, spec: Pick<CompiledSpec, 'kind' | 'uniqueKey'>): ResolvedMode {
  if (parent.ingestMode === 'APPEND' || !hasCurrentTable(spec)) return { mode: 'APPEND', deleteMissing: false };
  return { mode: 'MERGE', deleteMissing: parent.deleteMissing };
}
