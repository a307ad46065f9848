import type { CliEnv } from '../env';
import type { SluiceClient } from '../sdk/client';
import type { CliConfigStore } from './config';
import type { Terminal } from './terminal';

/**
 * What the process exit code tells a script. Closed: every command ends with one of these.
 * SUCCEEDED_WITH_ERRORS is its own code so a pipeline can tell "done, but look at the row errors".
 */
export enum ExitCode {
  /** Done; every row or item succeeded. */
  OK = 0,
  /** Failed: the job failed or was cancelled, the request was refused, or the command was misused. */
  FAILURE = 1,
  /** Done, but some rows or items failed and were reported (job state SUCCEEDED_WITH_ERRORS). */
  SUCCEEDED_WITH_ERRORS = 2,
}

/** A mistake in how the command was called; main prints it with the command's usage. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** A failure to report as one line, without a stack trace (not logged in, file missing, ...). */
export class CliError extends Error {
  override name = 'CliError';
}

export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  /** Shown in help: what it does and its default. */
  description: string;
  /** Placeholder in help, e.g. "<name>". */
  arg?: string;
}

export type OptionValues = Record<string, string | boolean | string[] | undefined>;

export interface CliContext {
  env: CliEnv;
  /** Base URL of the service (no /graphql): --url, SLUICE_URL, the server of the last login, or http://localhost:4000. */
  url: string;
  /** --json: results as one JSON document on stdout; progress stays on stderr. */
  json: boolean;
  /** Results and summaries. */
  stdout: Terminal;
  /** Progress bars, status lines and errors. */
  stderr: Terminal;
  config: CliConfigStore;
  /** A client with the token for `url` (SLUICE_TOKEN, or the one `login` cached); throws CliError when there is none. */
  client(): SluiceClient;
  /** A client without a token (issueToken). */
  anonymous(): SluiceClient;
  /** Standard input, for `login --client-secret-stdin`. */
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
}

/**
 * One CLI command, one file in src/cli/commands/. `main` picks it by its `name` words, parses its
 * options (plus the global ones) strictly, and turns what `run` returns, or throws, into the exit code.
 */
export interface Command {
  /** The words that select it: ['upload'], ['specs', 'register']. */
  name: string[];
  /** One line for the command list. */
  summary: string;
  /** Positional arguments for help, e.g. "<file.csv>". */
  args?: string;
  options?: Record<string, OptionSpec>;
  /** Longer help: rules, examples. */
  help?: string;
  run(ctx: CliContext, positionals: string[], options: OptionValues): Promise<ExitCode>;
}

/** Reads a string option that must be set. */
export function requireString(options: OptionValues, name: string): string {
  const v = options[name];
  if (typeof v !== 'string' || v.trim() === '') throw new UsageError(`--${name} is required`);
  return v;
}

/** Reads an optional integer option. */
export function optionalInt(options: OptionValues, name: string): number | undefined {
  const v = options[name];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (typeof v !== 'string' || !Number.isInteger(n)) throw new UsageError(`--${name} must be an integer, got ${JSON.stringify(v)}`);
  return n;
}

/** `--limit`: a page size from 1 to 100, 20 when not given. */
export function pageSize(options: OptionValues): number {
  const n = optionalInt(options, 'limit') ?? 20;
  if (n < 1 || n > 100) throw new UsageError(`--limit must be from 1 to 100, got ${n}`);
  return n;
}

/** Reads an option that must be one of `allowed` (case-insensitive); returns it upper-cased. */
export function optionalEnum<T extends string>(options: OptionValues, name: string, allowed: readonly T[]): T | undefined {
  const v = options[name];
  if (v === undefined) return undefined;
  const up = String(v).toUpperCase() as T;
  if (!allowed.includes(up)) throw new UsageError(`--${name} must be one of ${allowed.join(', ')}, got ${JSON.stringify(v)}`);
  return up;
}

/** How every command that ingests a CSV names its options. */
export const CSV_INGEST_OPTIONS: Record<'spec-version' | 'on-invalid-rows', OptionSpec> = {
  'spec-version': { type: 'string', arg: '<n>', description: 'Spec version (default: the latest)' },
  'on-invalid-rows': {
    type: 'string',
    arg: 'SKIP|FAIL',
    description: 'SKIP keeps valid rows and reports invalid ones (default); FAIL keeps none if any is invalid',
  },
};

/** How the CSV is read: its dialect and header handling (the same arguments the API takes). */
export const CSV_READ_OPTIONS: Record<'encoding' | 'delimiter' | 'on-unknown-columns' | 'column-map', OptionSpec> = {
  encoding: {
    type: 'string',
    arg: '<encoding>',
    description: 'UTF_8, UTF_16LE, UTF_16BE, WINDOWS_1252, ISO_8859_1, ISO_8859_15, WINDOWS_1250, WINDOWS_1251 (default: detected)',
  },
  delimiter: { type: 'string', arg: 'COMMA|SEMICOLON|TAB|PIPE', description: 'Cell delimiter (default: detected from the header line)' },
  'on-unknown-columns': {
    type: 'string',
    arg: 'REJECT|IGNORE',
    description: "Header cells naming no spec column: refuse the file, or drop them with a warning (default: the spec's, else REJECT)",
  },
  'column-map': { type: 'string', arg: '<json>', description: 'CSV header -> spec column, as JSON: \'{"School Id":"school_id"}\'' },
};

const ENCODINGS = ['UTF_8', 'UTF_16LE', 'UTF_16BE', 'WINDOWS_1252', 'ISO_8859_1', 'ISO_8859_15', 'WINDOWS_1250', 'WINDOWS_1251'] as const;
const DELIMITERS = ['COMMA', 'SEMICOLON', 'TAB', 'PIPE'] as const;

/** The values of CSV_INGEST_OPTIONS, checked. */
export function csvIngestOptions(options: OptionValues): { specVersion: number | undefined; onInvalidRows: 'SKIP' | 'FAIL' | undefined } {
  return { specVersion: optionalInt(options, 'spec-version'), onInvalidRows: optionalEnum(options, 'on-invalid-rows', ['SKIP', 'FAIL'] as const) };
}

/** The values of CSV_READ_OPTIONS, checked; absent ones are left out. */
export function csvReadOptions(options: OptionValues): {
  encoding?: (typeof ENCODINGS)[number];
  delimiter?: (typeof DELIMITERS)[number];
  onUnknownColumns?: 'REJECT' | 'IGNORE';
  columnMap?: unknown;
} {
  const out: ReturnType<typeof csvReadOptions> = {};
  const encoding = optionalEnum(options, 'encoding', ENCODINGS);
  if (encoding) out.encoding = encoding;
  const delimiter = optionalEnum(options, 'delimiter', DELIMITERS);
  if (delimiter) out.delimiter = delimiter;
  const policy = optionalEnum(options, 'on-unknown-columns', ['REJECT', 'IGNORE'] as const);
  if (policy) out.onUnknownColumns = policy;
  const map = options['column-map'];
  if (map !== undefined) {
    try {
      out.columnMap = JSON.parse(String(map));
    } catch {
      throw new UsageError(`--column-map must be JSON such as '{"School Id":"school_id"}', got ${JSON.stringify(map)}`);
    }
  }
  return out;
}
