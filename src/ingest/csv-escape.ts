/**
 * Text encoders for the pipeline's outputs: RFC 4180 CSV cells, spreadsheet-formula
 * neutralisation for files people open in Excel, and PostgreSQL COPY text-format fields.
 */

/** Line terminator of the CSV files Sluice writes. LF, not RFC 4180's CRLF: downstream cQube
 * tooling splits on `\n` and would keep a stray `\r` in the last field. */
export const CSV_EOL = '\n';

const NEEDS_QUOTES = /[",\r\n]/;
const QUOTE = /"/g;

/** One CSV cell: quoted (with `"` doubled) only when it holds a comma, quote, CR or LF. */
export function csvEscape(cell: string): string {
  return NEEDS_QUOTES.test(cell) ? `"${cell.replace(QUOTE, '""')}"` : cell;
}

/** One CSV record including its terminator. */
export function csvLine(cells: readonly string[]): string {
  let line = '';
  for (let i = 0; i < cells.length; i++) line += (i === 0 ? '' : ',') + csvEscape(cells[i]!);
  return line + CSV_EOL;
}

const FORMULA_START = /^[=+\-@\t\r]/;
const PLAIN_NUMBER = /^[+-]?(?:\d+\.?\d*|\.\d+)$/;

/**
 * Defuses CSV formula injection (OWASP): a cell a spreadsheet would evaluate (`=HYPERLINK(...)`,
 * `@SUM(...)`, `+cmd|...`, or one led by tab or CR) gets a leading `'`, which spreadsheets treat
 * as "text follows". Plain numbers such as `-12.5` are left alone: they cannot be formulas, and a
 * user correcting the error file and uploading it again must not find `'-12.5` there.
 */
export function neutraliseFormula(cell: string): string {
  return FORMULA_START.test(cell) && !PLAIN_NUMBER.test(cell) ? `'${cell}` : cell;
}

/** A CSV record for a file meant for people: every cell neutralised, then escaped. */
export function safeCsvLine(cells: readonly string[]): string {
  let line = '';
  for (let i = 0; i < cells.length; i++) line += (i === 0 ? '' : ',') + csvEscape(neutraliseFormula(cells[i]!));
  return line + CSV_EOL;
}

/** NULL in COPY text format. */
export const COPY_NULL = '\\N';

const COPY_SPECIAL = /[\\\t\n\r]/;
const COPY_SPECIAL_ALL = /[\\\t\n\r]/g;
const COPY_ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

/**
 * One field of COPY ... FROM STDIN (text format): backslash, tab, LF and CR are escaped so the
 * value cannot end the field or the row. NUL cannot be represented at all; callers reject it.
 */
export function copyEscape(value: string): string {
  return COPY_SPECIAL.test(value) ? value.replace(COPY_SPECIAL_ALL, (ch) => COPY_ESCAPES[ch]!) : value;
}
