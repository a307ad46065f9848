/**
 * The compiled form of a cQube-style spec. Plain JSON data: it is stored in a jsonb column and
 * read back by workers, so it holds no functions, RegExps, Dates or `undefined` (absent = null).
 */

export type SpecKind = 'EVENT' | 'DIMENSION' | 'DATASET';
export const SPEC_KINDS: readonly SpecKind[] = ['EVENT', 'DIMENSION', 'DATASET'];

export type ColumnType = 'string' | 'number' | 'integer' | 'boolean' | 'date';
export const COLUMN_TYPES: readonly ColumnType[] = ['string', 'number', 'integer', 'boolean', 'date'];

/**
 * Accepted date layouts. `DD/MM/YY` maps two-digit years to 2000-2099 (`23` is 2023, `99` is
 * 2099): cQube data is recent, and a sliding century window would make the same file parse
 * differently depending on the year it is uploaded.
 */
export type DateFormat = 'YYYY-MM-DD' | 'DD/MM/YY' | 'DD/MM/YYYY';
export const DATE_FORMATS: readonly DateFormat[] = ['YYYY-MM-DD', 'DD/MM/YY', 'DD/MM/YYYY'];
export const DEFAULT_DATE_FORMAT: DateFormat = 'YYYY-MM-DD';

/** Bumped when the shape below changes, so stored specs can be migrated or recompiled. */
export const COMPILED_SPEC_VERSION = 1;

export interface CompiledColumn {
  /**
   * Matches IDENTIFIER_PATTERN and is never a reserved or system column name. It may be an SQL key
   * word (`user`, `order`): always quote it in SQL (quoteIdentifier, or postgres.js `sql(name)`).
   */
  column: string;
  /** The property name exactly as written in the spec (CSV headers are matched against it). */
  sourceName: string;
  type: ColumnType;
  /** False when the spec says `shouldNotNull: true`: an empty cell is then an error. */
  nullable: boolean;
  /** Listed in `required`: the CSV header must contain this column. */
  required: boolean;
  /** Part of the spec's composite unique key. */
  unique: boolean;
  /**
   * `sensitive: true`: the column's values never appear in error analytics (masked as "••••",
   * counts kept). Absent from specs compiled before the keyword existed (read as false).
   */
  sensitive?: boolean;
  /** Allowed values: strings for string columns, numbers for number and integer columns. */
  enum: string[] | number[] | null;
  minimum: number | null;
  maximum: number | null;
  /** Lengths in Unicode code points, as JSON Schema counts them. */
  minLength: number | null;
  maxLength: number | null;
  /** Source of a RegExp compiled with the `u` flag; unanchored, as in JSON Schema. */
  pattern: string | null;
  /** Set for date columns only. */
  dateFormat: DateFormat | null;
  /**
   * Other header names this column is read from (the spec's `aliases`, a Sluice extension to
   * cQube specs), matched like the spec name: trimmed, in any letter case. Absent in specs
   * compiled before aliases existed.
   */
  aliases?: string[];
}

/** What header cells naming no column do to a file (the spec's `onUnknownColumns`, a Sluice extension). */
export type UnknownColumnsPolicy = 'REJECT' | 'IGNORE';

export interface CompiledSpec {
  version: typeof COMPILED_SPEC_VERSION;
  /** Spec name (normalised identifier). */
  name: string;
  /** Program name from the spec's `program` (normalised identifier). */
  program: string;
  kind: SpecKind;
  /** In the order of the spec's `properties`. */
  columns: CompiledColumn[];
  /** Columns (by `column`) whose values together must be unique within a file; empty = no key. */
  uniqueKey: string[];
  /**
   * The spec's default for uploads that do not say: REJECT (a header problem) or IGNORE (the
   * columns are dropped with a warning). Null or absent: REJECT.
   */
  onUnknownColumns?: UnknownColumnsPolicy | null;
}

/** Every reason a spec can be rejected or warned about. Clients branch on these, never on messages. */
export const SPEC_PROBLEM_CODES = [
  /** A value has the wrong JSON type or shape (object expected, array expected...). */
  'INVALID_JSON_SHAPE',
  /** A name does not normalise to `^[a-z_][a-z0-9_]{0,62}$`. */
  'INVALID_IDENTIFIER',
  /** A column normalises to a name Sluice adds itself (`_file_id`, `_line`, `_ingested_at`, `_sluice*`). */
  'RESERVED_COLUMN',
  /** A column normalises to a PostgreSQL system column (`ctid`, `xmin`, `xmax`, `cmin`, `cmax`, `tableoid`). */
  'SYSTEM_COLUMN',
  /** Two properties normalise to the same column name. */
  'DUPLICATE_COLUMN',
  /** More than MAX_COLUMNS properties. */
  'TOO_MANY_COLUMNS',
  /** `properties` is empty. */
  'NO_COLUMNS',
  /** A name in `required` is not a property. */
  'REQUIRED_NOT_IN_PROPERTIES',
  /** `type` is missing or not one of string, number, integer, boolean, date. */
  'UNKNOWN_TYPE',
  /** A keyword Sluice does not implement (often a typo such as `minimun`). */
  'UNKNOWN_KEYWORD',
  /** A keyword has a bad value, does not apply to the column type, or contradicts another. */
  'INVALID_CONSTRAINT',
  /** `pattern` could backtrack catastrophically or is too long. */
  'UNSAFE_PATTERN',
  /** `pattern` is not a valid regular expression with the `u` flag. */
  'INVALID_PATTERN',
  /** `dateFormat` is not one of DATE_FORMATS. */
  'INVALID_DATE_FORMAT',
  /** A key or string of the spec holds a NUL character, which PostgreSQL cannot store. */
  'INVALID_CHARACTER',
  /** Warning: a program or spec name was changed by normalisation. */
  'NAME_NORMALISED',
  /** Warning: a property name was changed by normalisation; CSV headers still match the original. */
  'COLUMN_RENAMED',
] as const;
export type SpecProblemCode = (typeof SPEC_PROBLEM_CODES)[number];

export interface SpecProblem {
  /**
   * JSON Pointer (RFC 6901) into the raw spec, e.g. `/input/properties/latitude/minimum`.
   * `$name` and `$kind` point at the compile options rather than the JSON.
   */
  path: string;
  code: SpecProblemCode;
  message: string;
}

export type CompileSpecResult =
  | { ok: true; spec: CompiledSpec; warnings: SpecProblem[] }
  | { ok: false; problems: SpecProblem[] };

export type PgType = 'text' | 'double precision' | 'bigint' | 'boolean' | 'date';

const PG_TYPES: Record<ColumnType, PgType> = {
  string: 'text',
  number: 'double precision',
  integer: 'bigint',
  boolean: 'boolean',
  date: 'date',
};

/** The PostgreSQL column type that holds a compiled column's values. */
export function pgType(column: Pick<CompiledColumn, 'type'>): PgType {
  return PG_TYPES[column.type];
}
