import type { CompiledSpec } from '../../ingest/contract';

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
