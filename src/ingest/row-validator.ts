import { dateParser } from './dates';
import type { CompiledColumn, CompiledSpec } from './contract';
import { checkPattern, LEGACY_PATTERN_INPUT_LENGTH, MAX_PATTERN_INPUT_LENGTH } from './pattern';
import { COPY_NULL, copyEscape } from './csv-escape';
import { closest, looseName, namesOf } from './header-match';

/**
 * Every reason a data row can be rejected, each with its description (the schema's RowErrorCode
 * takes both from here). Closed: clients branch on these, never on messages.
 */
export const ROW_ERROR_CODES = {
  REQUIRED_VALUE_MISSING: 'Empty (or blank) cell in a `shouldNotNull` column.',
  NOT_A_NUMBER: 'Not plain decimal notation, or beyond double precision range.',
  NOT_AN_INTEGER: 'Not a whole number in decimal digits, or outside PostgreSQL bigint.',
  NOT_A_BOOLEAN: 'Not one of true/false/1/0/yes/no.',
  INVALID_DATE: "Not in the column's date format, or not a real calendar date.",
  NOT_IN_ENUM: "Not one of the column's `enum` values.",
  BELOW_MINIMUM: "Below the column's `minimum`.",
  ABOVE_MAXIMUM: "Above the column's `maximum`.",
  TOO_SHORT: "Fewer characters than the column's `minLength`.",
  TOO_LONG: "More characters than the column's `maxLength`, or too long for its `pattern` to be run on.",
  PATTERN_MISMATCH: "Does not match the column's `pattern`.",
  DUPLICATE_KEY: 'The row repeats the composite unique key of an earlier row of the same file.',
  WRONG_FIELD_COUNT: 'The row has more or fewer cells than the header.',
  MALFORMED_QUOTES: 'A quoted cell is not closed, or a closing quote is followed by text.',
  INVALID_CHARACTER: 'A NUL character, which PostgreSQL text cannot store.',
  INVALID_UTF8: "The cell's bytes are not valid UTF-8 (a Windows-1252 or Latin-1 file, or damaged bytes).",
} as const;
export type RowErrorCode = keyof typeof ROW_ERROR_CODES;

export interface RowError {
  /** The SQL column name; empty for errors about the whole row. */
  column: string;
  code: RowErrorCode;
  /** Names the column (as in the header), the value and the limit. */
  message: string;
}

/** `values` are in spec column order, already encoded as COPY text-format fields (`\N` = NULL). */
export type RowResult = { ok: true; values: string[] } | { ok: false; errors: RowError[] };

/** How the cells of one file line up with the spec, computed once from the header. */
export interface HeaderMapping {
  /** Cells every record must have: the header's length. */
  fieldCount: number;
  /** For each spec column (spec order), the index of its CSV cell, or -1 when the file lacks it. */
  sourceIndex: number[];
}

/**
 * Every reason a CSV header can be refused (spec uploads and directory bulk uploads alike), each
 * with its description. Reported in a file error's `problems`.
 */
export const HEADER_PROBLEM_CODES = {
  MISSING_REQUIRED_COLUMN: 'A column the spec (or the upload kind) requires is not in the header.',
  UNKNOWN_COLUMN: 'A header cell names no column (refused unless unknown columns are ignored).',
  DUPLICATE_COLUMN: 'Two header cells name the same column.',
  EMPTY_HEADER: 'A header cell is empty, or the header line is missing.',
  INVALID_CHARACTER: 'A header cell holds a NUL character.',
  INVALID_UTF8: "A header cell holds bytes that are not valid in the file's encoding.",
} as const;
export type HeaderProblemCode = keyof typeof HEADER_PROBLEM_CODES;

/**
 * Problems listed (in a header check, a spec, a file's error); the rest are counted. A 120,000-column
 * header once produced an 8.3 MB error, stored twice and sent back as a 16.6 MB reply.
 */
export const MAX_PROBLEMS_LISTED = 20;

/**
 * Marks bytes that were not valid UTF-8 in decoded text (see decodeMarked, csv-text.ts). A lone low
 * surrogate: no valid UTF-8 decodes to one, so it cannot be mistaken for input text.
 */
export const INVALID_UTF8_MARK = '\udfff';

/** User text made safe to quote and store: NUL and invalid-byte marks become U+FFFD, cut to `max` characters. */
export function printable(text: string, max = 200): string {
  const cut = text.length > max ? `${text.slice(0, max)}...` : text;
  return /[\u0000\udfff]/.test(cut) ? cut.replace(/[\u0000\udfff]/g, '\ufffd') : cut;
}

export interface HeaderProblem {
  code: HeaderProblemCode;
  /** The header cell as written (trimmed), or the spec's name for a missing column; empty for EMPTY_HEADER. */
  column: string;
  message: string;
  /**
   * The closest name on the other side, when one is close: for an unknown header cell, the spec
   * column it may mean; for a missing column, the header cell that may be it. Absent otherwise.
   */
  suggestion?: string;
}

/** A header cell that names no spec column, dropped under `unknownColumns: 'ignore'`. */
export interface IgnoredColumn {
  /** The header cell as written (trimmed, made printable). */
  name: string;
  /** 1-based position in the header. */
  position: number;
  /** The spec column it may mean (see HeaderProblem.suggestion), or null. */
  suggestion: string | null;
}

/** Ignored columns listed (the rest are counted); a header can have 100,000 cells. */
export const MAX_IGNORED_LISTED = 100;

/** `problems` holds at most MAX_PROBLEMS_LISTED; `problemCount` counts them all. */
export type HeaderCheck =
  | { ok: true; mapping: HeaderMapping; ignored?: { columns: IgnoredColumn[]; count: number } }
  | { ok: false; problems: HeaderProblem[]; problemCount: number };

export interface HeaderOptions {
  /**
   * `reject` (default): a header cell that names no spec column is UNKNOWN_COLUMN.
   * `ignore`: such cells are skipped (cQube exports often carry extra columns) and listed in
   * the check's `ignored` (the first MAX_IGNORED_LISTED, and how many in all).
   */
  unknownColumns?: 'reject' | 'ignore';
  /**
   * Header cell (trimmed, lower-cased) -> spec column index, from a client's columnMap (see
   * resolveColumnMap). Takes precedence over the spec's names and aliases.
   */
  columnMap?: ReadonlyMap<string, number>;
}

/** Unknown header cells considered as the maybe-misspelt form of a missing column. */
const MAX_SUGGESTION_CELLS = 256;

/**
 * Matches a CSV header against a spec. A cell matches a column when, trimmed and lower-cased,
 * it is a key of `opts.columnMap`, or equals the column's spec name (trimmed, lower-cased), its
 * SQL name or one of its `aliases`. A leading BOM on the first cell is ignored. Columns in
 * `required`, and `shouldNotNull` columns, must be present; other columns may be absent (their
 * values are NULL). Lists every problem, each unknown or missing name with the closest name on
 * the other side when one is close ("did you mean").
 */
export function checkHeader(spec: CompiledSpec, headerCells: readonly string[], opts: HeaderOptions = {}): HeaderCheck {
  const lookup = new Map<string, number>();
  spec.columns.forEach((c, i) => {
    for (const name of namesOf(c)) {
      const key = name.trim().toLowerCase();
      if (!lookup.has(key)) lookup.set(key, i);
    }
  });
  const ignore = opts.unknownColumns === 'ignore';

  const problems: HeaderProblem[] = [];
  let problemCount = 0;
  const push = (p: HeaderProblem) => {
    if (problemCount++ < MAX_PROBLEMS_LISTED) problems.push(p);
  };
  const sourceIndex = spec.columns.map(() => -1);
  // Header cells naming no column, by position; suggestions are filled in once all cells are matched.
  const unknown: Array<{ position: number; text: string; problem: HeaderProblem | null }> = [];
  let ignoredCount = 0;
  headerCells.forEach((cell, i) => {
    const raw = (i === 0 ? cell.replace(/^\uFEFF/, '') : cell).trim();
    const text = printable(raw);
    const position = `header cell ${i + 1}`;
    if (raw.indexOf(INVALID_UTF8_MARK) !== -1) {
      push({
        code: 'INVALID_UTF8',
        column: text,
        message: `${position} ${JSON.stringify(text)} holds bytes that are not valid UTF-8 (shown as U+FFFD); save the file as UTF-8`,
      });
      return;
    }
    if (raw.indexOf('\u0000') !== -1) {
      push({ code: 'INVALID_CHARACTER', column: text, message: `${position} ${JSON.stringify(text)} contains a NUL character` });
      return;
    }
    if (raw === '') {
      push({ code: 'EMPTY_HEADER', column: '', message: `${position} is empty; every column needs a name` });
      return;
    }
    const key = raw.toLowerCase();
    const col = opts.columnMap?.get(key) ?? lookup.get(key);
    if (col === undefined) {
      if (ignore) {
        if (ignoredCount++ < MAX_IGNORED_LISTED) unknown.push({ position: i + 1, text, problem: null });
      } else {
        const problem: HeaderProblem = {
          code: 'UNKNOWN_COLUMN',
          column: text,
          message: `${position} ${JSON.stringify(text)} is not a column of spec ${JSON.stringify(spec.name)}`,
        };
        if (problemCount < MAX_PROBLEMS_LISTED || unknown.length < MAX_SUGGESTION_CELLS)
          unknown.push({ position: i + 1, text, problem: problemCount < MAX_PROBLEMS_LISTED ? problem : null });
        push(problem);
      }
      return;
    }
    const first = sourceIndex[col]!;
    if (first >= 0) {
      push({
        code: 'DUPLICATE_COLUMN',
        column: text,
        message: `${position} ${JSON.stringify(text)} names the column ${JSON.stringify(spec.columns[col]!.sourceName)} again (first at header cell ${first + 1})`,
      });
      return;
    }
    sourceIndex[col] = i;
  });

  // "Did you mean": unknown cells against the columns no cell matched, and back.
  const unmatched = spec.columns.filter((_, i) => sourceIndex[i] === -1);
  const columnNames = unmatched.flatMap((c) => namesOf(c).map((n) => [looseName(n), c.sourceName] as const));
  const ignored: IgnoredColumn[] = [];
  for (const u of unknown) {
    const suggestion = u.problem || ignore ? closest(u.text, columnNames) : null;
    if (u.problem && suggestion) {
      u.problem.suggestion = suggestion;
      u.problem.message += `; did you mean ${JSON.stringify(suggestion)}?`;
    }
    if (ignore) ignored.push({ name: u.text, position: u.position, suggestion });
  }
  const cellNames = unknown.slice(0, MAX_SUGGESTION_CELLS).map((u) => [looseName(u.text), u.text] as const);
  spec.columns.forEach((c, i) => {
    if (sourceIndex[i] !== -1 || (!c.required && c.nullable)) return;
    // An absent shouldNotNull column would fail every row one by one; one header problem says it better.
    const why = c.required ? 'is not in the header' : 'is not in the header, and shouldNotNull needs a value in every row';
    let suggestion: string | null = null;
    for (const name of namesOf(c)) {
      suggestion ??= closest(name, cellNames);
    }
    const hint = suggestion ? `; did you mean the header cell ${JSON.stringify(suggestion)}? (map it with columnMap, or add it to the column's aliases)` : '';
    push({
      code: 'MISSING_REQUIRED_COLUMN',
      column: c.sourceName,
      message: `required column ${JSON.stringify(c.sourceName)} ${why}${hint}`,
      ...(suggestion ? { suggestion } : {}),
    });
  });
  if (problemCount > 0) return { ok: false, problems, problemCount };
  const mapping = { fieldCount: headerCells.length, sourceIndex };
  // Present only when a cell was dropped.
  return ignoredCount > 0 ? { ok: true, mapping, ignored: { columns: ignored, count: ignoredCount } } : { ok: true, mapping };
}

/** Validates and converts one record (cells in CSV header order). */
export type RowValidator = (cells: readonly string[], mapping: HeaderMapping) => RowResult;

/** A cell's COPY field, or why it was refused. */
export type CellCheck = (text: string) => string | CellFailure;
export interface CellFailure {
  code: RowErrorCode;
  message: string;
}

/**
 * Builds the row validator for a spec once: each column's type, constraints, enum set, date
 * parser and RegExp are resolved here into one closure, so the per-row work is a loop of
 * direct calls with no compilation, no schema walking and no allocation for valid cells.
 */
export function compileRowValidator(spec: CompiledSpec, checks: readonly CellCheck[] = compileCellChecks(spec)): RowValidator {
  const count = spec.columns.length;
  const names = spec.columns.map((c) => c.column);

  return (cells, mapping) => {
    if (cells.length !== mapping.fieldCount) {
      return {
        ok: false,
        errors: [{ column: '', code: 'WRONG_FIELD_COUNT', message: `row has ${cells.length} fields; the header has ${mapping.fieldCount}` }],
      };
    }
    const values = new Array<string>(count);
    let errors: RowError[] | null = null;
    const sourceIndex = mapping.sourceIndex;
    for (let c = 0; c < count; c++) {
      const at = sourceIndex[c]!;
      const out = checks[c]!(at < 0 ? '' : cells[at]!);
      if (typeof out === 'string') values[c] = out;
      else (errors ??= []).push({ column: names[c]!, code: out.code, message: out.message });
    }
    return errors === null ? { ok: true, values } : { ok: false, errors };
  };
}

/** Each spec column's cell check, in spec order: trimming, NULLs, type, constraints, COPY encoding. */
export function compileCellChecks(spec: CompiledSpec): CellCheck[] {
  return spec.columns.map(cellCheck);
}

/** Longest slice of a cell quoted in a message, in characters. */
const SHOWN_VALUE_LENGTH = 40;

function show(text: string): string {
  return JSON.stringify(text.length > SHOWN_VALUE_LENGTH ? `${text.slice(0, SHOWN_VALUE_LENGTH)}...` : text);
}

function cellCheck(col: CompiledColumn): CellCheck {
  const label = col.sourceName;
  const fail = (code: RowErrorCode, message: string): CellFailure => ({ code, message: `${label}: ${message}` });
  const missing = fail('REQUIRED_VALUE_MISSING', 'a value is required');
  const convert = converter(col, fail);
  const nullable = col.nullable;
  // Why trim: spreadsheets pad numbers and dates with spaces; a blank cell is NULL for every type.
  // String values that are not blank are kept verbatim.
  const keepVerbatim = col.type === 'string';
  return (text) => {
    if (text.length === 0 || (text.charCodeAt(0) <= 32 || text.charCodeAt(text.length - 1) <= 32 ? text.trim() === '' : false)) {
      return nullable ? COPY_NULL : missing;
    }
    return convert(keepVerbatim ? text : text.trim());
  };
}

type Fail = (code: RowErrorCode, message: string) => CellFailure;

function converter(col: CompiledColumn, fail: Fail): CellCheck {
  switch (col.type) {
    case 'string':
      return stringCheck(col, fail);
    case 'number':
      return numberCheck(col, fail);
    case 'integer':
      return integerCheck(col, fail);
    case 'boolean':
      return booleanCheck(fail);
    case 'date':
      return dateCheck(col, fail);
  }
}

function stringCheck(col: CompiledColumn, fail: Fail): CellCheck {
  const allowed = col.enum ? new Set(col.enum.map(String)) : null;
  const { minLength, maxLength } = col;
  const regex = col.pattern === null ? null : new RegExp(col.pattern, 'u');
  // A spec stored before the polynomial rule (pattern.ts, rule 4) may hold a pattern it now
  // refuses: such a pattern only ever sees short cells.
  const patternLimit = col.pattern !== null && !checkPattern(col.pattern).ok ? LEGACY_PATTERN_INPUT_LENGTH : MAX_PATTERN_INPUT_LENGTH;
  const enumText = col.enum ? col.enum.map((v) => JSON.stringify(v)).join(', ') : '';
  return (text) => {
    if (text.indexOf('\u0000') !== -1) return fail('INVALID_CHARACTER', `${show(text)} contains a NUL character`);
    if (allowed && !allowed.has(text)) return fail('NOT_IN_ENUM', `${show(text)} is not one of ${enumText}`);
    if (minLength !== null || maxLength !== null) {
      // UTF-16 length is an upper bound of the code point count; count exactly only when it matters.
      const length = (maxLength !== null && text.length > maxLength) || (minLength !== null && text.length < 2 * minLength) ? codePoints(text) : text.length;
      if (minLength !== null && length < minLength) return fail('TOO_SHORT', `${show(text)} has ${length} characters; the minimum is ${minLength}`);
      if (maxLength !== null && length > maxLength) return fail('TOO_LONG', `${show(text)} has ${length} characters; the maximum is ${maxLength}`);
    }
    // Why a bound: the patterns let through (pattern.ts) backtrack at most quadratically,
    // which is cheap on a code or an e-mail address and not on a 1 MiB cell.
    if (regex && text.length > patternLimit)
      return fail('TOO_LONG', `${show(text)} has ${text.length} characters; a value checked against a pattern may have at most ${patternLimit}`);
    if (regex && !regex.test(text)) return fail('PATTERN_MISMATCH', `${show(text)} does not match the pattern ${col.pattern!}`);
    return copyEscape(text);
  };
}

function codePoints(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    // A high surrogate followed by a low one is a single code point.
    if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}

/** Range and enum checks shared by number and integer columns; null when the value passes. */
function numericLimits(col: CompiledColumn, fail: Fail): (n: number, text: string) => CellFailure | null {
  const { minimum, maximum } = col;
  const allowed = col.enum ? new Set(col.enum as number[]) : null;
  const enumText = col.enum ? col.enum.join(', ') : '';
  return (n, text) => {
    if (minimum !== null && n < minimum) return fail('BELOW_MINIMUM', `${show(text)} is below the minimum ${minimum}`);
    if (maximum !== null && n > maximum) return fail('ABOVE_MAXIMUM', `${show(text)} is above the maximum ${maximum}`);
    if (allowed && !allowed.has(n)) return fail('NOT_IN_ENUM', `${show(text)} is not one of ${enumText}`);
    return null;
  };
}

/**
 * Plain decimal notation only (`[+-]digits[.digits]`, `.5`, `7.`): no exponent, no Infinity/NaN,
 * no hex, no thousands separators. One pass over the characters: the regex it replaces
 * (`^[+-]?(?:\d+\.?\d*|\.\d+)$`) backtracked quadratically on a long run of digits followed by
 * a letter (100,000 digits took 7 s).
 */
export function isPlainDecimal(text: string): boolean {
  let i = 0;
  const n = text.length;
  const first = text.charCodeAt(0);
  if (first === 43 || first === 45) i++;
  let digits = 0;
  let dot = false;
  for (; i < n; i++) {
    const ch = text.charCodeAt(i);
    if (ch >= 48 && ch <= 57) digits++;
    else if (ch === 46 && !dot) dot = true;
    else return false;
  }
  return digits > 0;
}

function numberCheck(col: CompiledColumn, fail: Fail): CellCheck {
  const limits = numericLimits(col, fail);
  return (text) => {
    if (!isPlainDecimal(text)) return fail('NOT_A_NUMBER', `${show(text)} is not a number in plain decimal notation (like -12.5)`);
    const n = Number(text);
    if (!Number.isFinite(n)) return fail('NOT_A_NUMBER', `${show(text)} is beyond the double precision range (about 1.8e308)`);
    const bad = limits(n, text);
    // String(n) is the shortest text that reads back as the same double in PostgreSQL, and it
    // makes `1.50` and `1.5` equal in the unique key.
    return bad ?? String(n);
  };
}

const INTEGER = /^[+-]?\d+$/;
/** PostgreSQL bigint bounds as digit strings: the values exceed Number precision. */
const BIGINT_MAX = '9223372036854775807';
const BIGINT_MIN_ABS = '9223372036854775808';

function integerCheck(col: CompiledColumn, fail: Fail): CellCheck {
  const limits = numericLimits(col, fail);
  return (text) => {
    if (!INTEGER.test(text)) return fail('NOT_AN_INTEGER', `${show(text)} is not a whole number`);
    const negative = text.charCodeAt(0) === 45;
    let digits = text.charCodeAt(0) === 43 || negative ? text.slice(1) : text;
    if (digits.charCodeAt(0) === 48 && digits.length > 1) digits = digits.replace(/^0+(?=\d)/, '');
    const bound = negative ? BIGINT_MIN_ABS : BIGINT_MAX;
    if (digits.length > bound.length || (digits.length === bound.length && digits > bound)) {
      return fail('NOT_AN_INTEGER', `${show(text)} is outside the bigint range -${BIGINT_MIN_ABS} to ${BIGINT_MAX}`);
    }
    const canonical = negative && digits !== '0' ? `-${digits}` : digits;
    // Limits compare as doubles: exact up to 2^53, which covers any minimum/maximum JSON can carry exactly.
    return limits(Number(canonical), text) ?? canonical;
  };
}

const BOOLEANS = new Map([
  ['true', 't'],
  ['false', 'f'],
  ['1', 't'],
  ['0', 'f'],
  ['yes', 't'],
  ['no', 'f'],
]);

function booleanCheck(fail: Fail): CellCheck {
  // The longest accepted value is `false`: a longer cell is not lower-cased (a copy) first.
  return (text) =>
    (text.length <= 5 ? BOOLEANS.get(text.toLowerCase()) : undefined) ?? fail('NOT_A_BOOLEAN', `${show(text)} is not one of true, false, 1, 0, yes, no`);
}

function dateCheck(col: CompiledColumn, fail: Fail): CellCheck {
  const format = col.dateFormat ?? 'YYYY-MM-DD';
  const parse = dateParser(format);
  return (text) => parse(text) ?? fail('INVALID_DATE', `${show(text)} is not a real date in the format ${format}`);
}
