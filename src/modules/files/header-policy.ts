import type { CsvPipelineOptions, CsvPipelineResult } from '../../ingest/csv-pipeline';
import { parseColumnMap, resolveColumnMap, type ColumnMapEntry } from '../../ingest/header-match';
import { BadInputError } from '../../shared/errors';
import type { CompiledSpec, UnknownColumnsPolicy } from '../../ingest/contract';

/**
 * How one upload's header is matched: what the client asked for on uploadFile,
 * uploadNationalProgram, validateFile or importFile. It travels in the job input, so a retried
 * attempt reads the file the same way.
 */
export interface HeaderPolicy {
  /** Null: the spec's `onUnknownColumns`, else REJECT. */
  onUnknownColumns: UnknownColumnsPolicy | null;
  /** CSV header -> spec column; empty when none was given. */
  columnMap: ColumnMapEntry[];
}

export const DEFAULT_HEADER_POLICY: HeaderPolicy = { onUnknownColumns: null, columnMap: [] };

/** Every file-level warning, each with its description. Stable: clients branch on these. */
export const FILE_WARNING_CODES = {
  IGNORED_COLUMNS: 'Header cells that name no spec column were dropped (onUnknownColumns IGNORE).',
} as const;
export type FileWarningCode = keyof typeof FILE_WARNING_CODES;

/** A file-level warning: the file loaded, but something in it was not used. */
export interface FileWarning {
  code: FileWarningCode;
  message: string;
  /** The columns concerned (the first MAX_IGNORED_LISTED), 1-based positions. */
  columns: Array<{ name: string; position: number; suggestion: string | null }>;
  /** How many columns in all. */
  count: number;
}

/** The mutation arguments as a policy; a columnMap of the wrong shape is BAD_USER_INPUT. */
export function headerPolicyOf(onUnknownColumns: UnknownColumnsPolicy | null | undefined, columnMap: unknown): HeaderPolicy {
  let entries: ColumnMapEntry[] = [];
  if (columnMap != null) {
    const parsed = parseColumnMap(columnMap);
    if (!parsed.ok)
      throw new BadInputError(`columnMap is invalid: ${parsed.problems.slice(0, 20).join('; ')}`, {
        field: 'columnMap',
        problems: parsed.problems.slice(0, 20),
      });
    entries = parsed.entries;
  }
  return { onUnknownColumns: onUnknownColumns ?? null, columnMap: entries };
}

/** Checks the columnMap against the spec it will be used with (a CSV upload): BAD_USER_INPUT when it names no column or maps two headers to one. */
export function checkPolicyAgainst(spec: CompiledSpec, policy: HeaderPolicy): void {
  const resolved = resolveColumnMap(spec, policy.columnMap);
  if (!resolved.ok)
    throw new BadInputError(`columnMap does not fit spec ${JSON.stringify(spec.name)}: ${resolved.problems.slice(0, 20).join('; ')}`, {
      field: 'columnMap',
      problems: resolved.problems.slice(0, 20),
    });
}

/**
 * The pipeline options for one CSV. `inZip`: one policy serves every CSV of a national program
 * ZIP, so columnMap entries whose column a CSV's spec lacks are skipped for that CSV.
 */
export function pipelineHeaderOptions(
  spec: CompiledSpec,
  policy: HeaderPolicy,
  opts: { inZip?: boolean } = {},
): Pick<CsvPipelineOptions, 'unknownColumns' | 'columnMap'> {
  const effective = policy.onUnknownColumns ?? spec.onUnknownColumns ?? 'REJECT';
  const out: Pick<CsvPipelineOptions, 'unknownColumns' | 'columnMap'> = { unknownColumns: effective === 'IGNORE' ? 'ignore' : 'reject' };
  if (policy.columnMap.length > 0) {
    const resolved = resolveColumnMap(spec, policy.columnMap, { skipUnknownTargets: opts.inZip });
    // Checked when the upload was accepted; a spec cannot change under a file (versions are immutable).
    if (!resolved.ok) throw new BadInputError(resolved.problems.join('; '), { field: 'columnMap' });
    out.columnMap = resolved.map;
  }
  return out;
}

/** The warnings a pipeline result carries (dropped columns), in the shape files store and return. */
export function warningsOf(result: CsvPipelineResult | null): FileWarning[] {
  const ignored = result?.ignored;
  if (!ignored || ignored.count === 0) return [];
  const listed = ignored.columns.map((c) => `${JSON.stringify(c.name)} (column ${c.position})`).join(', ');
  const more = ignored.count > ignored.columns.length ? ` and ${ignored.count - ignored.columns.length} more` : '';
  return [
    {
      code: 'IGNORED_COLUMNS',
      message: `${ignored.count} column${ignored.count === 1 ? '' : 's'} the spec does not declare ${ignored.count === 1 ? 'was' : 'were'} not loaded (onUnknownColumns IGNORE): ${listed}${more}`,
      columns: ignored.columns,
      count: ignored.count,
    },
  ];
}

/** The policy as stored in a job's input (plain JSON), for an attempt to read back. */
export function policyToJson(policy: HeaderPolicy): Record<string, unknown> | undefined {
  if (policy.onUnknownColumns === null && policy.columnMap.length === 0) return undefined;
  return { onUnknownColumns: policy.onUnknownColumns, columnMap: policy.columnMap };
}

/** A job input's `headers` back as a policy; null when it is not one (a job input is data, checked like any). */
export function policyFromJson(raw: unknown): HeaderPolicy | null {
  if (raw === undefined || raw === null) return DEFAULT_HEADER_POLICY;
  if (typeof raw !== 'object' || Array.isArray(raw)) return null;
  const r = raw as Record<string, unknown>;
  const policy = r['onUnknownColumns'];
  if (policy !== null && policy !== undefined && policy !== 'REJECT' && policy !== 'IGNORE') return null;
  const parsed = r['columnMap'] == null ? { ok: true as const, entries: [] as ColumnMapEntry[] } : parseColumnMap(r['columnMap']);
  if (!parsed.ok) return null;
  return { onUnknownColumns: (policy as UnknownColumnsPolicy | null | undefined) ?? null, columnMap: parsed.entries };
}
