import { identifierProblem, isReservedColumn, isSystemColumn, normaliseIdentifier } from '../../ingest/identifier';
import {
  COLUMN_TYPES,
  COMPILED_SPEC_VERSION,
  DATE_FORMATS,
  DEFAULT_DATE_FORMAT,
  SPEC_KINDS,
  type ColumnType,
  type CompiledColumn,
  type DateFormat,
  type SpecKind,
  type UnknownColumnsPolicy,
} from '../../ingest/contract';
import { checkPattern } from '../../ingest/pattern';
import type { CompileSpecResult, SpecProblem, SpecProblemCode } from './spec.problems';

export { pgType } from '../../ingest/contract';
export type { CompiledColumn, CompiledSpec } from '../../ingest/contract';
export type { CompileSpecResult, SpecProblem, SpecProblemCode } from './spec.problems';

/** Most columns one spec may declare; each becomes a table column and a check per row. */
export const MAX_COLUMNS = 200;

export interface CompileSpecOptions {
  /** Spec name; normalised like a column name. */
  name: string;
  kind: SpecKind;
}

/** Keywords that document a spec and change nothing; accepted and dropped. */
const ANNOTATIONS = new Set(['description', 'title', '$comment', 'examples']);
const TOP_KEYWORDS = new Set(['program', 'input', '$schema', 'onUnknownColumns', ...ANNOTATIONS]);
const INPUT_KEYWORDS = new Set(['type', 'properties', 'required', ...ANNOTATIONS]);
const COLUMN_KEYWORDS = new Set([
  'type',
  'format',
  'dateFormat',
  'shouldNotNull',
  'unique',
  'sensitive',
  'enum',
  'minimum',
  'maximum',
  'minLength',
  'maxLength',
  'pattern',
  'aliases',
  ...ANNOTATIONS,
]);

/** Most `aliases` one column may list, and the longest alias, in characters. */
export const MAX_ALIASES = 20;
export const MAX_ALIAS_LENGTH = 200;

/**
 * Validates a cQube spec (`{ program, input: { type: "object", properties, required } }`) and
 * compiles it into plain data the row validator and the table builder use. Lists every problem
 * found, not only the first; warnings never block compilation.
 */
export function compileSpec(raw: unknown, opts: CompileSpecOptions): CompileSpecResult {
  const out = new Problems();
  const name = compileName(opts.name, '$name', out);
  if (!SPEC_KINDS.includes(opts.kind)) {
    out.error('$kind', 'INVALID_JSON_SHAPE', `kind ${JSON.stringify(opts.kind)} is not one of ${SPEC_KINDS.join(', ')}`);
  }
  if (!isRecord(raw)) {
    out.error('', 'INVALID_JSON_SHAPE', `a spec must be a JSON object, got ${describe(raw)}`);
    return { ok: false, problems: out.errors };
  }
  const top = canonicalKeywords(raw, TOP_KEYWORDS, '', out);

  let program = '';
  if (typeof top['program'] !== 'string') {
    out.error('/program', 'INVALID_JSON_SHAPE', `program must be a string, got ${describe(top['program'])}`);
  } else {
    program = compileName(top['program'], '/program', out);
  }

  const rawInput = top['input'];
  if (!isRecord(rawInput)) {
    out.error('/input', 'INVALID_JSON_SHAPE', `input must be an object, got ${describe(rawInput)}`);
    return { ok: false, problems: out.errors };
  }
  const input = canonicalKeywords(rawInput, INPUT_KEYWORDS, '/input', out);
  if (input['type'] !== undefined && input['type'] !== 'object') {
    out.error('/input/type', 'INVALID_JSON_SHAPE', `input.type must be "object", got ${describe(input['type'])}`);
  }

  const columns = compileColumns(input['properties'], out);
  markRequired(input['required'], columns, out);
  checkAliasClashes(columns, out);
  const onUnknownColumns = unknownColumnsPolicy(top['onUnknownColumns'], out);

  if (out.errors.length > 0) return { ok: false, problems: out.errors };
  return {
    ok: true,
    spec: {
      version: COMPILED_SPEC_VERSION,
      name,
      program,
      kind: opts.kind,
      columns,
      uniqueKey: columns.filter((c) => c.unique).map((c) => c.column),
      ...(onUnknownColumns ? { onUnknownColumns } : {}),
    },
    warnings: out.warnings,
  };
}

class Problems {
  readonly errors: SpecProblem[] = [];
  readonly warnings: SpecProblem[] = [];
  error(path: string, code: SpecProblemCode, message: string): void {
    this.errors.push({ path, code, message });
  }
  warn(path: string, code: SpecProblemCode, message: string): void {
    this.warnings.push({ path, code, message });
  }
}

function compileName(rawName: string, path: string, out: Problems): string {
  const name = normaliseIdentifier(rawName);
  const problem = identifierProblem(rawName, name);
  if (problem) out.error(path, 'INVALID_IDENTIFIER', problem);
  else if (name !== rawName) out.warn(path, 'NAME_NORMALISED', `${JSON.stringify(rawName)} is stored as ${JSON.stringify(name)}`);
  return name;
}

function compileColumns(properties: unknown, out: Problems): CompiledColumn[] {
  const path = '/input/properties';
  if (!isRecord(properties)) {
    out.error(path, 'INVALID_JSON_SHAPE', `input.properties must be an object, got ${describe(properties)}`);
    return [];
  }
  const entries = Object.entries(properties);
  if (entries.length === 0) out.error(path, 'NO_COLUMNS', 'input.properties declares no columns; at least 1 is needed');
  if (entries.length > MAX_COLUMNS) {
    out.error(path, 'TOO_MANY_COLUMNS', `input.properties declares ${entries.length} columns; the limit is ${MAX_COLUMNS}`);
  }
  const columns: CompiledColumn[] = [];
  const firstSource = new Map<string, string>();
  for (const [sourceName, def] of entries) {
    const colPath = `${path}/${pointerToken(sourceName)}`;
    const column = compileColumn(sourceName, def, colPath, out);
    if (!column) continue;
    const earlier = firstSource.get(column.column);
    if (earlier !== undefined) {
      out.error(
        colPath,
        'DUPLICATE_COLUMN',
        `${JSON.stringify(sourceName)} and ${JSON.stringify(earlier)} both normalise to the column ${JSON.stringify(column.column)}`,
      );
      continue;
    }
    firstSource.set(column.column, sourceName);
    columns.push(column);
  }
  return columns;
}

/** Compiles one property; returns null when its name is unusable (problems are recorded). */
function compileColumn(sourceName: string, rawDef: unknown, path: string, out: Problems): CompiledColumn | null {
  const column = normaliseIdentifier(sourceName);
  const nameProblem = identifierProblem(sourceName, column);
  if (nameProblem) out.error(path, 'INVALID_IDENTIFIER', nameProblem);
  else if (isReservedColumn(column)) {
    out.error(path, 'RESERVED_COLUMN', `${JSON.stringify(sourceName)} normalises to ${JSON.stringify(column)}, a name Sluice reserves for its own columns`);
  } else if (isSystemColumn(column)) {
    out.error(
      path,
      'SYSTEM_COLUMN',
      `${JSON.stringify(sourceName)} normalises to ${JSON.stringify(column)}, a PostgreSQL system column every table already has; rename the property`,
    );
  } else if (column !== sourceName) {
    out.warn(path, 'COLUMN_RENAMED', `${JSON.stringify(sourceName)} is stored in the column ${JSON.stringify(column)}`);
  }

  if (!isRecord(rawDef)) {
    out.error(path, 'INVALID_JSON_SHAPE', `column ${JSON.stringify(sourceName)} must be an object, got ${describe(rawDef)}`);
    return null;
  }
  const def = canonicalKeywords(rawDef, COLUMN_KEYWORDS, path, out);
  const type = columnType(def, path, out);
  const check = new ConstraintReader(def, path, out, type);

  const compiled: CompiledColumn = {
    column,
    sourceName,
    type: type ?? 'string',
    nullable: !check.boolean('shouldNotNull'),
    required: false,
    unique: check.boolean('unique'),
    // Only when set: specs compiled before the keyword existed read the same.
    ...(check.boolean('sensitive') ? { sensitive: true } : {}),
    enum: check.enumValues(),
    minimum: check.number('minimum', ['number', 'integer']),
    maximum: check.number('maximum', ['number', 'integer']),
    minLength: check.length('minLength'),
    maxLength: check.length('maxLength'),
    pattern: check.pattern(),
    dateFormat: check.dateFormat(),
  };
  const aliases = check.aliases();
  if (aliases) compiled.aliases = aliases;
  if (compiled.minimum !== null && compiled.maximum !== null && compiled.minimum > compiled.maximum) {
    out.error(`${path}/minimum`, 'INVALID_CONSTRAINT', `minimum ${compiled.minimum} is greater than maximum ${compiled.maximum}`);
  }
  if (compiled.minLength !== null && compiled.maxLength !== null && compiled.minLength > compiled.maxLength) {
    out.error(`${path}/minLength`, 'INVALID_CONSTRAINT', `minLength ${compiled.minLength} is greater than maxLength ${compiled.maxLength}`);
  }
  return nameProblem ? null : compiled;
}

/** Resolves `type` + `format`; `{ type: "string", format: "date" }` is a date column. */
function columnType(def: Record<string, unknown>, path: string, out: Problems): ColumnType | null {
  const type = def['type'];
  const format = def['format'];
  if (typeof type !== 'string' || !(COLUMN_TYPES as readonly string[]).includes(type)) {
    const got = type === undefined ? 'is missing' : `is ${JSON.stringify(type)}`;
    out.error(`${path}/type`, 'UNKNOWN_TYPE', `type ${got}; expected one of ${COLUMN_TYPES.join(', ')}`);
    return null;
  }
  if (format === undefined) return type as ColumnType;
  if (format !== 'date') {
    out.error(`${path}/format`, 'INVALID_CONSTRAINT', `format ${JSON.stringify(format)} is not supported; the only format is "date"`);
    return type as ColumnType;
  }
  if (type !== 'string' && type !== 'date') {
    out.error(`${path}/format`, 'INVALID_CONSTRAINT', `format "date" needs type "string" or "date", not ${JSON.stringify(type)}`);
    return type as ColumnType;
  }
  return 'date';
}

/** Reads the optional constraint keywords of one column, recording a problem per bad value. */
class ConstraintReader {
  constructor(
    private readonly def: Record<string, unknown>,
    private readonly path: string,
    private readonly out: Problems,
    /** Null when the type itself was invalid: applicability is then not judged. */
    private readonly type: ColumnType | null,
  ) {}

  boolean(key: 'shouldNotNull' | 'unique' | 'sensitive'): boolean {
    const value = this.def[key];
    if (value === undefined) return false;
    if (typeof value !== 'boolean') {
      this.bad(key, `${key} must be true or false, got ${describe(value)}`);
      return false;
    }
    return value;
  }

  number(key: 'minimum' | 'maximum', types: ColumnType[]): number | null {
    const value = this.def[key];
    if (value === undefined || !this.applies(key, types)) return null;
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      this.bad(key, `${key} must be a finite number, got ${describe(value)}`);
      return null;
    }
    return value;
  }

  length(key: 'minLength' | 'maxLength'): number | null {
    const value = this.def[key];
    if (value === undefined || !this.applies(key, ['string'])) return null;
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
      this.bad(key, `${key} must be a whole number of characters >= 0, got ${describe(value)}`);
      return null;
    }
    return value;
  }

  enumValues(): string[] | number[] | null {
    const value = this.def['enum'];
    if (value === undefined || !this.applies('enum', ['string', 'number', 'integer'])) return null;
    if (!Array.isArray(value) || value.length === 0) {
      this.bad('enum', `enum must be a non-empty array, got ${describe(value)}`);
      return null;
    }
    if (this.type === 'string') {
      const wrong = value.findIndex((v) => typeof v !== 'string');
      if (wrong < 0) return value as string[];
      this.bad('enum', `enum of a string column must hold strings; item ${wrong} is ${describe(value[wrong])}`);
      return null;
    }
    const whole = this.type === 'integer';
    const wrong = value.findIndex((v) => typeof v !== 'number' || !Number.isFinite(v) || (whole && !Number.isInteger(v)));
    if (wrong < 0) return value as number[];
    this.bad('enum', `enum of a ${this.type ?? 'numeric'} column must hold ${whole ? 'integers' : 'numbers'}; item ${wrong} is ${describe(value[wrong])}`);
    return null;
  }

  pattern(): string | null {
    const value = this.def['pattern'];
    if (value === undefined || !this.applies('pattern', ['string'])) return null;
    if (typeof value !== 'string') {
      this.bad('pattern', `pattern must be a string, got ${describe(value)}`);
      return null;
    }
    const checked = checkPattern(value);
    if (!checked.ok) {
      this.out.error(`${this.path}/pattern`, checked.code, checked.message);
      return null;
    }
    return value;
  }

  dateFormat(): DateFormat | null {
    const value = this.def['dateFormat'];
    if (this.type !== 'date') {
      if (value !== undefined && this.type !== null) {
        this.bad('dateFormat', `dateFormat applies to date columns only; add "format": "date" or use type "date" (this column is ${this.type})`);
      }
      return null;
    }
    if (value === undefined) return DEFAULT_DATE_FORMAT;
    if (typeof value !== 'string' || !(DATE_FORMATS as readonly string[]).includes(value)) {
      this.out.error(`${this.path}/dateFormat`, 'INVALID_DATE_FORMAT', `dateFormat ${describe(value)} is not one of ${DATE_FORMATS.join(', ')}`);
      return null;
    }
    return value as DateFormat;
  }

  /** `aliases`: other header names for the column (a Sluice extension), or null when absent. */
  aliases(): string[] | null {
    const value = this.def['aliases'];
    if (value === undefined) return null;
    if (!Array.isArray(value)) {
      this.bad('aliases', `aliases must be an array of header names, got ${describe(value)}`);
      return null;
    }
    if (value.length > MAX_ALIASES) {
      this.bad('aliases', `aliases lists ${value.length} names; the limit is ${MAX_ALIASES}`);
      return null;
    }
    const wrong = value.findIndex((v) => typeof v !== 'string' || v.trim() === '' || v.length > MAX_ALIAS_LENGTH || /[\u0000-\u001f\u007f]/.test(v));
    if (wrong >= 0) {
      this.out.error(
        `${this.path}/aliases/${wrong}`,
        'INVALID_CONSTRAINT',
        `aliases[${wrong}] must be a non-empty header name of at most ${MAX_ALIAS_LENGTH} characters without control characters, got ${describe(value[wrong])}`,
      );
      return null;
    }
    return value as string[];
  }

  private applies(key: string, types: ColumnType[]): boolean {
    if (this.type === null) return false;
    if (types.includes(this.type)) return true;
    this.bad(key, `${key} does not apply to ${this.type} columns (only ${types.join(', ')})`);
    return false;
  }

  private bad(key: string, message: string): void {
    this.out.error(`${this.path}/${key}`, 'INVALID_CONSTRAINT', message);
  }
}

/**
 * Marks the columns listed in `required`. Names are matched after normalisation, the same
 * identity the columns have, so `"District ID"` finds the property `district_id`.
 */
function markRequired(required: unknown, columns: CompiledColumn[], out: Problems): void {
  const path = '/input/required';
  if (required === undefined) return;
  if (!Array.isArray(required)) {
    out.error(path, 'INVALID_JSON_SHAPE', `input.required must be an array of property names, got ${describe(required)}`);
    return;
  }
  const byColumn = new Map(columns.map((c) => [c.column, c]));
  required.forEach((name: unknown, i) => {
    if (typeof name !== 'string') {
      out.error(`${path}/${i}`, 'INVALID_JSON_SHAPE', `input.required[${i}] must be a string, got ${describe(name)}`);
      return;
    }
    const column = byColumn.get(normaliseIdentifier(name));
    if (column) column.required = true;
    else out.error(`${path}/${i}`, 'REQUIRED_NOT_IN_PROPERTIES', `required column ${JSON.stringify(name)} is not declared in input.properties`);
  });
}

/**
 * An alias must name one column only: it may not repeat another column's spec name, SQL name or
 * alias (header names match trimmed, in any letter case), or a header would be ambiguous.
 */
function checkAliasClashes(columns: CompiledColumn[], out: Problems): void {
  const owner = new Map<string, CompiledColumn>();
  for (const c of columns) {
    for (const name of [c.sourceName, c.column]) {
      const key = name.trim().toLowerCase();
      if (!owner.has(key)) owner.set(key, c);
    }
  }
  for (const c of columns) {
    (c.aliases ?? []).forEach((alias, i) => {
      const key = alias.trim().toLowerCase();
      const other = owner.get(key);
      if (other && other !== c) {
        out.error(
          `/input/properties/${pointerToken(c.sourceName)}/aliases/${i}`,
          'DUPLICATE_COLUMN',
          `alias ${JSON.stringify(alias)} of ${JSON.stringify(c.sourceName)} already names the column ${JSON.stringify(other.sourceName)}`,
        );
      } else owner.set(key, c);
    });
  }
}

/** The spec's `onUnknownColumns` (REJECT or IGNORE, any letter case), or null when absent. */
function unknownColumnsPolicy(value: unknown, out: Problems): UnknownColumnsPolicy | null {
  if (value === undefined) return null;
  const policy = typeof value === 'string' ? value.toUpperCase() : null;
  if (policy === 'REJECT' || policy === 'IGNORE') return policy;
  out.error('/onUnknownColumns', 'INVALID_CONSTRAINT', `onUnknownColumns must be "REJECT" or "IGNORE", got ${describe(value)}`);
  return null;
}

/**
 * Matches keywords case-insensitively, as real cQube collections write them (`shouldnotnull`,
 * `Required`), and returns the object with canonical keys. An unknown keyword, or one written
 * twice in different cases, is a precise problem.
 */
function canonicalKeywords(obj: Record<string, unknown>, allowed: Set<string>, path: string, out: Problems): Record<string, unknown> {
  const byLower = new Map([...allowed].map((k) => [k.toLowerCase(), k]));
  const canonical: Record<string, unknown> = {};
  const spelled = new Map<string, string>();
  for (const [key, value] of Object.entries(obj)) {
    const name = byLower.get(key.toLowerCase());
    if (name === undefined) {
      out.error(
        `${path}/${pointerToken(key)}`,
        'UNKNOWN_KEYWORD',
        `unknown keyword ${JSON.stringify(key)}; allowed here: ${[...allowed].join(', ')} (in any letter case)`,
      );
      continue;
    }
    const earlier = spelled.get(name);
    if (earlier !== undefined) {
      out.error(
        `${path}/${pointerToken(key)}`,
        'INVALID_CONSTRAINT',
        `keyword ${JSON.stringify(key)} repeats ${JSON.stringify(earlier)} (keywords match in any letter case)`,
      );
      continue;
    }
    spelled.set(name, key);
    canonical[name] = value;
  }
  return canonical;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A short rendering of a JSON value for messages; long values are cut at 60 characters. */
function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  const text = JSON.stringify(value) ?? String(value);
  const shown = text.length > 60 ? `${text.slice(0, 57)}...` : text;
  const kind = Array.isArray(value) ? 'array' : typeof value;
  return `${kind} ${shown}`;
}

/** Escapes one JSON Pointer reference token (RFC 6901). */
function pointerToken(key: string): string {
  return key.replace(/~/g, '~0').replace(/\//g, '~1');
}
