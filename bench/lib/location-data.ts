/**
 * A location hierarchy for the bulk upload benchmark: states > districts (10 each) > blocks (10
 * each) > clusters (9 each) > schools (10 each), in file order (every parent before its children),
 * cut at `rows`. Deterministic: the same count gives the same file.
 */
export interface LocationRow {
  code: string;
  name: string;
  parentCode: string;
  type: 'state' | 'district' | 'block' | 'cluster' | 'school';
}

export function locationRows(rows: number): LocationRow[] {
  const out: LocationRow[] = [];
  const add = (code: string, parentCode: string, type: LocationRow['type']) => out.push({ code, name: `Name of ${code}`, parentCode, type });
  for (let s = 0; out.length < rows; s++) {
    add(`S${s}`, '', 'state');
    for (let d = 0; d < 10 && out.length < rows; d++) {
      add(`S${s}D${d}`, `S${s}`, 'district');
      for (let b = 0; b < 10 && out.length < rows; b++) {
        add(`S${s}D${d}B${b}`, `S${s}D${d}`, 'block');
        for (let c = 0; c < 9 && out.length < rows; c++) {
          add(`S${s}D${d}B${b}C${c}`, `S${s}D${d}B${b}`, 'cluster');
          for (let k = 0; k < 10 && out.length < rows; k++) add(`S${s}D${d}B${b}C${c}K${k}`, `S${s}D${d}B${b}C${c}`, 'school');
        }
      }
    }
  }
  return out.slice(0, rows);
}

/** The rows as a bulk upload CSV with a per-row `type` column. */
export function locationCsv(rows: LocationRow[]): string {
  return `code,name,parentCode,type\n${rows.map((r) => `${r.code},${r.name},${r.parentCode},${r.type}`).join('\n')}\n`;
}
