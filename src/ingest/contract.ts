/**
 * The ingestion contract: the compiled form of a cQube-style spec, which src/ingest/ validates and
 * loads CSVs against (src/modules/specs compiles specs into it). Plain JSON data: it is stored in a jsonb column and
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
