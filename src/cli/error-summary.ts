import type { ErrorSummaryFieldsFragment } from '../sdk/client';
import { formatCount } from '../sdk/progress';

/** Top values printed per column (the service keeps 10). */
const SHOWN_VALUES = 5;

/** A file's error analytics as text lines: totals by code, then per column its codes and most frequent bad values. */
export function formatErrorSummary(s: ErrorSummaryFieldsFragment): string[] {
  const lines = [`Error summary: ${formatCount(s.total)} row errors (${s.byCode.map((c) => `${c.code} ${formatCount(c.count)}`).join(', ')})`];
  for (const col of s.byColumn) {
    lines.push(`  ${col.column}: ${formatCount(col.count)} (${col.byCode.map((c) => `${c.code} ${formatCount(c.count)}`).join(', ')})`);
    const shown = col.topValues.slice(0, SHOWN_VALUES);
    if (shown.length) lines.push(`    top values: ${shown.map((v) => `${JSON.stringify(v.value)} ×${formatCount(v.count)}`).join(', ')}`);
  }
  return lines;
}
