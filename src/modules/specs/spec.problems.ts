import type { CompiledSpec } from '../../ingest/contract';

/** Every reason a spec can be rejected or warned about, each with its description. Clients branch on these, never on messages. */
export const SPEC_PROBLEM_CODES = {
  INVALID_JSON_SHAPE: 'A value has the wrong JSON type or shape (object expected, array expected...).',
  INVALID_IDENTIFIER: 'A name does not normalise to `^[a-z_][a-z0-9_]{0,62}$`.',
  RESERVED_COLUMN: 'A column normalises to a name Sluice adds itself (`_file_id`, `_line`, `_ingested_at`, `_sluice*`).',
  SYSTEM_COLUMN: 'A column normalises to a PostgreSQL system column (`ctid`, `xmin`, `xmax`, `cmin`, `cmax`, `tableoid`).',
  DUPLICATE_COLUMN: 'Two properties normalise to the same column name.',
  TOO_MANY_COLUMNS: 'More than MAX_COLUMNS properties.',
  NO_COLUMNS: '`properties` is empty.',
  REQUIRED_NOT_IN_PROPERTIES: 'A name in `required` is not a property.',
  UNKNOWN_TYPE: '`type` is missing or not one of string, number, integer, boolean, date.',
  UNKNOWN_KEYWORD: 'A keyword Sluice does not implement (often a typo such as `minimun`).',
  INVALID_CONSTRAINT: 'A keyword has a bad value, does not apply to the column type, or contradicts another.',
  UNSAFE_PATTERN: '`pattern` could backtrack catastrophically or is too long.',
  INVALID_PATTERN: '`pattern` is not a valid regular expression with the `u` flag.',
  INVALID_DATE_FORMAT: '`dateFormat` is not one of DATE_FORMATS.',
  INVALID_CHARACTER: 'A key or string of the spec holds a NUL character, which PostgreSQL cannot store.',
  NAME_NORMALISED: 'Warning: a program or spec name was changed by normalisation.',
  COLUMN_RENAMED: 'Warning: a property name was changed by normalisation; CSV headers still match the original.',
} as const;
export type SpecProblemCode = keyof typeof SPEC_PROBLEM_CODES;

export interface SpecProblem {
  /**
   * JSON Pointer (RFC 6901) into the raw spec, e.g. `/input/properties/latitude/minimum`.
   * `$name` and `$kind` point at the compile options rather than the JSON.
   */
  path: string;
  code: SpecProblemCode;
  message: string;
}

export type CompileSpecResult = { ok: true; spec: CompiledSpec; warnings: SpecProblem[] } | { ok: false; problems: SpecProblem[] };
