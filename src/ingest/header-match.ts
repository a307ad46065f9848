import type { CompiledColumn, CompiledSpec } from './contract';
import { normaliseIdentifier } from './identifier';

/**
 * Header names compared for "did you mean": letter case, spaces and punctuation are not
 * differences a person sees (`School Id` and `school_id` are the same name).
 */
export function looseName(name: string): string {
  return name.toLowerCase().replace(/[^\p{L}\p{N}]+/gu, '');
}

/** Longest loose name compared; a longer header cell is never a typo of a column name. */
const MAX_COMPARED_LENGTH = 64;
/** Edits (insert, delete, substitute) a name may be from another and still be suggested. */
const MAX_SUGGESTION_EDITS = 2;

/**
 * Levenshtein distance of `a` and `b` when it is at most `limit`, else `limit + 1`. Only the
 * diagonal band of width 2 * limit + 1 is computed, so a comparison costs O(length * limit).
 */
export function boundedDistance(a: string, b: string, limit: number): number {
  if (Math.abs(a.length - b.length) > limit) return limit + 1;
  if (a === b) return 0;
  const n = b.length;
  const big = limit + 1;
  let prev = new Array<number>(n + 1);
  let cur = new Array<number>(n + 1);
  for (let j = 0; j <= n; j++) prev[j] = j <= limit ? j : big;
  for (let i = 1; i <= a.length; i++) {
    const from = Math.max(1, i - limit);
    const to = Math.min(n, i + limit);
    cur.fill(big);
    cur[0] = i <= limit ? i : big;
    let best = cur[0]!;
    for (let j = from; j <= to; j++) {
      const cost = a.charCodeAt(i - 1) === b.charCodeAt(j - 1) ? 0 : 1;
      const v = Math.min(prev[j - 1]! + cost, prev[j]! + 1, cur[j - 1]! + 1, big);
      cur[j] = v;
      if (v < best) best = v;
    }
    if (best > limit) return big;
    [prev, cur] = [cur, prev];
  }
  return Math.min(prev[n]!, big);
}

/**
 * The candidate closest to `name` (loose names within MAX_SUGGESTION_EDITS, and at most a third
 * of the name's length, so `id` never suggests `ab`), or null. `candidates` are [loose name,
 * what to suggest]; ties go to the first.
 */
export function closest(name: string, candidates: ReadonlyArray<readonly [string, string]>): string | null {
  const loose = looseName(name);
  if (loose.length === 0 || loose.length > MAX_COMPARED_LENGTH) return null;
  const limit = Math.min(MAX_SUGGESTION_EDITS, Math.floor(loose.length / 3));
  let best: string | null = null;
  let bestDistance = limit + 1;
  for (const [candidate, suggestion] of candidates) {
    if (candidate.length === 0 || candidate.length > MAX_COMPARED_LENGTH) continue;
    const d = boundedDistance(loose, candidate, Math.min(limit, bestDistance - 1 < 0 ? 0 : bestDistance - 1));
    if (d < bestDistance) {
      best = suggestion;
      bestDistance = d;
      if (d === 0) break;
    }
  }
  return best;
}

/** Every name a header cell can use for `column`: its spec name, its SQL name, its aliases. */
export function namesOf(column: CompiledColumn): string[] {
  return [column.sourceName, column.column, ...(column.aliases ?? [])];
}

/** Most entries a columnMap may hold. */
export const MAX_COLUMN_MAP_ENTRIES = 500;
/** Longest header name a columnMap entry may give, in characters. */
export const MAX_COLUMN_MAP_NAME_LENGTH = 200;

/** One `CSV header -> spec column` pair of a columnMap, as the client gave it. */
export interface ColumnMapEntry {
  header: string;
  column: string;
}

/**
 * A columnMap as a client sends it: a JSON object `{ "<header>": "<column>" }` or a list of
 * `{ header, column }`. Returns the entries, or the problems with its shape.
 */
export function parseColumnMap(raw: unknown): { ok: true; entries: ColumnMapEntry[] } | { ok: false; problems: string[] } {
  const problems: string[] = [];
  let pairs: Array<[unknown, unknown]>;
  if (Array.isArray(raw)) {
    pairs = raw.map((e, i) => {
      if (e === null || typeof e !== 'object' || Array.isArray(e)) {
        problems.push(`entry ${i + 1} must be an object { header, column }`);
        return [undefined, undefined];
      }
      const extra = Object.keys(e).filter((k) => k !== 'header' && k !== 'column');
      if (extra.length > 0)
        problems.push(`entry ${i + 1} has unknown keys ${extra.map((k) => JSON.stringify(k)).join(', ')}; only header and column are allowed`);
      return [(e as Record<string, unknown>)['header'], (e as Record<string, unknown>)['column']];
    });
  } else if (raw !== null && typeof raw === 'object') {
    pairs = Object.entries(raw);
  } else {
    return { ok: false, problems: ['columnMap must be a JSON object { "<CSV header>": "<spec column>" } or a list of { header, column }'] };
  }
  if (pairs.length > MAX_COLUMN_MAP_ENTRIES) return { ok: false, problems: [`columnMap has ${pairs.length} entries; the limit is ${MAX_COLUMN_MAP_ENTRIES}`] };
  const entries: ColumnMapEntry[] = [];
  pairs.forEach(([header, column], i) => {
    if (header === undefined && column === undefined && problems.length > 0) return;
    const where = `entry ${i + 1}`;
    for (const [what, v] of [
      ['header', header],
      ['column', column],
    ] as const) {
      if (typeof v !== 'string') problems.push(`${where}: ${what} must be a string`);
      else if (v.trim() === '') problems.push(`${where}: ${what} is empty`);
      else if (v.length > MAX_COLUMN_MAP_NAME_LENGTH) problems.push(`${where}: ${what} is longer than ${MAX_COLUMN_MAP_NAME_LENGTH} characters`);
      else if (/[\u0000-\u001f\u007f]/.test(v)) problems.push(`${where}: ${what} holds a control character`);
    }
    if (typeof header === 'string' && typeof column === 'string') entries.push({ header, column });
  });
  const seen = new Map<string, number>();
  entries.forEach((e, i) => {
    const key = e.header.trim().toLowerCase();
    const first = seen.get(key);
    if (first !== undefined)
      problems.push(`the header ${JSON.stringify(e.header)} is mapped twice (entries ${first + 1} and ${i + 1}; headers match in any letter case)`);
    else seen.set(key, i);
  });
  return problems.length > 0 ? { ok: false, problems } : { ok: true, entries };
}

/** The index of the spec column `target` names (spec name or SQL name, any case), or -1. */
export function columnIndexOf(spec: CompiledSpec, target: string): number {
  const t = target.trim().toLowerCase();
  const byName = spec.columns.findIndex((c) => c.sourceName.trim().toLowerCase() === t || c.column === t);
  return byName >= 0 ? byName : spec.columns.findIndex((c) => c.column === normaliseIdentifier(target));
}

/**
 * Resolves a columnMap against a spec: header (trimmed, lower-cased) -> spec column index.
 * Problems: a target that is not a column of the spec (with the closest one when there is one),
 * two headers mapped to one column. `skipUnknownTargets` (a ZIP, whose one map serves the specs
 * of all its CSVs) drops entries whose column this spec lacks instead.
 */
export function resolveColumnMap(
  spec: CompiledSpec,
  entries: readonly ColumnMapEntry[],
  opts: { skipUnknownTargets?: boolean } = {},
): { ok: true; map: Map<string, number> } | { ok: false; problems: string[] } {
  const problems: string[] = [];
  const map = new Map<string, number>();
  const firstHeaderOf = new Map<number, string>();
  const candidates = spec.columns.flatMap((c) => namesOf(c).map((n) => [looseName(n), c.sourceName] as const));
  for (const e of entries) {
    const col = columnIndexOf(spec, e.column);
    if (col < 0) {
      if (opts.skipUnknownTargets) continue;
      const near = closest(e.column, candidates);
      problems.push(
        `columnMap maps ${JSON.stringify(e.header)} to ${JSON.stringify(e.column)}, which is not a column of spec ${JSON.stringify(spec.name)}${near ? `; did you mean ${JSON.stringify(near)}?` : ''}`,
      );
      continue;
    }
    const earlier = firstHeaderOf.get(col);
    if (earlier !== undefined) {
      problems.push(
        `columnMap maps both ${JSON.stringify(earlier)} and ${JSON.stringify(e.header)} to the column ${JSON.stringify(spec.columns[col]!.sourceName)}`,
      );
      continue;
    }
    firstHeaderOf.set(col, e.header);
    map.set(e.header.trim().toLowerCase(), col);
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, map };
}
