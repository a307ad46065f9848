import type { CompiledSpec } from './contract';
import type { HeaderMapping, RowError } from './row-validator';

/** Values shown per column in `topValues`. */
export const TOP_VALUES_SHOWN = 10;
/**
 * Counters kept per column by the Space-Saving sketch (Metwally et al. 2005): memory is bounded
 * by this, whatever the number of distinct bad values. Any value seen more than
 * `errors / TOP_VALUE_COUNTERS` times is guaranteed to be kept; a count may be overestimated by at
 * most the smallest counter (exact while a column has at most this many distinct values).
 */
export const TOP_VALUE_COUNTERS = 64;
/** Longest value kept, in UTF-16 characters (longer ones are cut and end with "…"). */
export const TOP_VALUE_MAX_LENGTH = 200;
/** What a value of a `sensitive` column is shown as. */
export const MASKED_VALUE = '••••';

export interface CodeCount {
  code: string;
  count: number;
}

export interface ValueCount {
  value: string;
  count: number;
}

export interface ColumnErrorSummary {
  column: string;
  count: number;
  byCode: CodeCount[];
  topValues: ValueCount[];
}

/** What the `files.error_summary` column holds (and `file.errorSummary` returns). */
export interface ErrorSummary {
  /** Row errors in all (one invalid row may have several). */
  total: number;
  byCode: CodeCount[];
  byColumn: ColumnErrorSummary[];
}

/** Space-Saving top-k: at most `capacity` counters, the smallest one replaced by a new value. */
class TopValues {
  private readonly counts = new Map<string, number>();
  constructor(private readonly capacity: number) {}

  add(value: string, by = 1): void {
    const known = this.counts.get(value);
    if (known !== undefined) {
      this.counts.set(value, known + by);
      return;
    }
    if (this.counts.size < this.capacity) {
      this.counts.set(value, by);
      return;
    }
    let minValue = '';
    let min = Infinity;
    for (const [v, c] of this.counts) {
      if (c < min) {
        min = c;
        minValue = v;
      }
    }
    this.counts.delete(minValue);
    this.counts.set(value, min + by);
  }

  top(n: number): ValueCount[] {
    return [...this.counts]
      .map(([value, count]) => ({ value, count }))
      .sort((a, b) => b.count - a.count || (a.value < b.value ? -1 : a.value > b.value ? 1 : 0))
      .slice(0, n);
  }
}

class ColumnTally {
  count = 0;
  readonly byCode = new Map<string, number>();
  readonly values = new TopValues(TOP_VALUE_COUNTERS);
}

function bump(m: Map<string, number>, key: string, by = 1): void {
  m.set(key, (m.get(key) ?? 0) + by);
}

function sortedCodes(m: Map<string, number>): CodeCount[] {
  return [...m].map(([code, count]) => ({ code, count })).sort((a, b) => b.count - a.count || (a.code < b.code ? -1 : 1));
}

function clip(value: string): string {
  return value.length > TOP_VALUE_MAX_LENGTH ? `${value.slice(0, TOP_VALUE_MAX_LENGTH - 1)}…` : value;
}

/**
 * Error analytics of one file, built while its rows stream by: counts per code and per column,
 * and per column the most frequent offending values (bounded, see TOP_VALUE_COUNTERS). Memory is
 * O(columns × counters), never O(rows). Columns of the spec marked `sensitive` keep counts only.
 */
export class ErrorSummaryBuilder {
  private total = 0;
  private readonly byCode = new Map<string, number>();
  private readonly columns = new Map<string, ColumnTally>();
  /** Spec column name -> its index in `spec.columns`. */
  private readonly index = new Map<string, number>();
  private readonly keyColumns: number[];
  private readonly keyLabel: string;

  constructor(private readonly spec: CompiledSpec) {
    for (const [i, c] of spec.columns.entries()) this.index.set(c.column, i);
    this.keyColumns = spec.uniqueKey.map((k) => this.index.get(k) ?? -1).filter((i) => i >= 0);
    this.keyLabel = spec.uniqueKey.join(',');
  }

  /** One invalid row: its errors, and its cells with the mapping of the header they came under. */
  addRow(errors: readonly RowError[], cells: readonly string[], mapping: HeaderMapping | undefined): void {
    for (const e of errors) this.addError(e.code, e.column, mapping ? this.valueOf(e.column, cells, mapping) : undefined);
  }

  /** One error; `value` is the offending cell text when there is one. */
  addError(code: string, column: string | null, value?: string): void {
    this.total++;
    bump(this.byCode, code);
    if (!column) return;
    let tally = this.columns.get(column);
    if (!tally) {
      tally = new ColumnTally();
      this.columns.set(column, tally);
    }
    tally.count++;
    bump(tally.byCode, code);
    if (value === undefined) return;
    tally.values.add(this.isSensitive(column) ? MASKED_VALUE : clip(value));
  }

  private isSensitive(column: string): boolean {
    if (column === this.keyLabel && this.keyColumns.length > 0) return this.keyColumns.some((i) => this.spec.columns[i]!.sensitive === true);
    const i = this.index.get(column);
    return i !== undefined && this.spec.columns[i]!.sensitive === true;
  }

  /** The cell an error is about: the column's cell, or the key's cells joined (DUPLICATE_KEY). */
  private valueOf(column: string, cells: readonly string[], mapping: HeaderMapping): string | undefined {
    const cell = (i: number) => {
      const src = mapping.sourceIndex[i] ?? -1;
      return src >= 0 ? (cells[src] ?? '') : '';
    };
    const i = this.index.get(column);
    if (i !== undefined) return cell(i);
    if (column === this.keyLabel && this.keyColumns.length > 0) return this.keyColumns.map(cell).join(',');
    return undefined;
  }

  result(): ErrorSummary {
    return {
      total: this.total,
      byCode: sortedCodes(this.byCode),
      byColumn: [...this.columns]
        .map(([column, t]) => ({ column, count: t.count, byCode: sortedCodes(t.byCode), topValues: t.values.top(TOP_VALUES_SHOWN) }))
        .sort((a, b) => b.count - a.count || (a.column < b.column ? -1 : 1)),
    };
  }
}

/** The summaries of several files added up (a ZIP's CSVs): counts summed, top values merged and cut again. */
export function mergeErrorSummaries(parts: readonly ErrorSummary[]): ErrorSummary {
  const byCode = new Map<string, number>();
  const columns = new Map<string, { count: number; byCode: Map<string, number>; values: TopValues }>();
  let total = 0;
  for (const p of parts) {
    total += p.total;
    for (const c of p.byCode) bump(byCode, c.code, c.count);
    for (const col of p.byColumn) {
      let t = columns.get(col.column);
      if (!t) {
        t = { count: 0, byCode: new Map(), values: new TopValues(TOP_VALUE_COUNTERS) };
        columns.set(col.column, t);
      }
      t.count += col.count;
      for (const c of col.byCode) bump(t.byCode, c.code, c.count);
      for (const v of col.topValues) t.values.add(v.value, v.count);
    }
  }
  return {
    total,
    byCode: sortedCodes(byCode),
    byColumn: [...columns]
      .map(([column, t]) => ({ column, count: t.count, byCode: sortedCodes(t.byCode), topValues: t.values.top(TOP_VALUES_SHOWN) }))
      .sort((a, b) => b.count - a.count || (a.column < b.column ? -1 : 1)),
  };
}
