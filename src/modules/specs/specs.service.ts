import type { Viewer } from '../../shared/auth';
import { BoundedMap } from '../../shared/bounded-map';
import { BadInputError, NotFoundError } from '../../shared/errors';
import type { Logger } from '../../shared/logger';
import { MAX_PROBLEMS_LISTED } from '../../ingest/row-validator';
import { problemsMessage } from '../../ingest/csv-pipeline';
import { compileSpec } from './spec.compile';
import { IDENTIFIER_PATTERN } from '../../ingest/identifier';
import type { SpecKind } from '../../ingest/contract';
import type { SpecProblem } from './spec.problems';
import type { SpecRecord, SpecsStore } from './specs.store';
export type { SpecRecord } from './specs.store';

/** Spec versions SpecsService.getById keeps; the oldest is dropped first. */
const MAX_CACHED_SPECS = 1024;

/** Spec registry rules: compile and check, version, look up. */
export class SpecsService {
  private readonly byId = new BoundedMap<string, SpecRecord>(MAX_CACHED_SPECS);

  constructor(
    private readonly store: SpecsStore,
    private readonly log: Logger,
  ) {}

  async register(viewer: Viewer, input: { name?: string | null; kind: SpecKind; spec: unknown }): Promise<{ spec: SpecRecord; warnings: SpecProblem[] }> {
    const rawProgram = (input.spec as { program?: unknown } | null)?.program;
    const name = input.name ?? (typeof rawProgram === 'string' ? rawProgram : '');
    const nul = nulProblems(input.spec);
    const compiled = nul.length > 0 ? { ok: false as const, problems: nul } : compileSpec(input.spec, { name, kind: input.kind });
    if (!compiled.ok) {
      // Bounded: a spec with 100,000 bad properties gets the first problems and their count.
      const all = compiled.problems;
      const problems = all.slice(0, MAX_PROBLEMS_LISTED);
      const lines = problems.map((p) => `${p.path || '(spec)'}: ${p.message}`);
      throw new BadInputError(problemsMessage(`The spec is invalid (${all.length} problem${all.length === 1 ? '' : 's'})`, lines, all.length), {
        problems,
        problemCount: all.length,
      });
    }
    const spec = await this.store.insertVersion({
      name: compiled.spec.name,
      kind: input.kind,
      program: compiled.spec.program,
      raw: input.spec,
      compiled: compiled.spec,
      createdBy: viewer.clientId,
    });
    this.log.info({ spec: spec.name, version: spec.version, table: spec.tableName, by: viewer.clientId }, 'spec registered');
    return { spec, warnings: compiled.warnings };
  }

  /** The named spec (latest version unless one is given); NOT_FOUND names what was asked for. */
  async get(name: string, version?: number | null): Promise<SpecRecord> {
    if (!IDENTIFIER_PATTERN.test(name)) {
      throw new BadInputError(`spec ${JSON.stringify(name)} is not a valid spec name (${IDENTIFIER_PATTERN.source})`, { field: 'spec' });
    }
    if (version != null && (!Number.isInteger(version) || version < 1)) throw new BadInputError('version must be a positive integer', { field: 'version' });
    const spec = await this.store.get(name, version);
    if (!spec) throw new NotFoundError('Spec', version ? `${name} v${version}` : name);
    return spec;
  }

  /**
   * A spec version by id. Versions are never updated or deleted (a change is a new version), so
   * each one found is kept (at most MAX_CACHED_SPECS): a page of files names its specs without a
   * query per file.
   */
  async getById(id: string): Promise<SpecRecord | undefined> {
    const cached = this.byId.get(id);
    if (cached) return cached;
    const spec = await this.store.getById(id);
    if (spec) {
      this.byId.set(id, spec);
    }
    return spec;
  }

  list(opts: { name?: string | null; allVersions?: boolean }): Promise<SpecRecord[]> {
    return this.store.list(opts);
  }
}

/**
 * Every key or string of the spec holding a NUL (PostgreSQL text and jsonb cannot store one), as
 * problems with their JSON Pointer; the first MAX_PROBLEMS_LISTED + 1 at most are collected.
 */
function nulProblems(raw: unknown): SpecProblem[] {
  const out: SpecProblem[] = [];
  const token = (k: string) =>
    k
      .replace(/\u0000/g, '\\u0000')
      .replace(/~/g, '~0')
      .replace(/\//g, '~1');
  const walk = (value: unknown, path: string, depth: number) => {
    if (out.length > MAX_PROBLEMS_LISTED || depth > 64) return;
    if (typeof value === 'string') {
      if (value.includes('\u0000'))
        out.push({ path, code: 'INVALID_CHARACTER', message: 'the string holds a NUL character (\\u0000), which cannot be stored' });
    } else if (Array.isArray(value)) {
      for (const [i, v] of value.entries()) walk(v, `${path}/${i}`, depth + 1);
    } else if (value !== null && typeof value === 'object') {
      for (const [k, v] of Object.entries(value)) {
        if (k.includes('\u0000'))
          out.push({ path: `${path}/${token(k)}`, code: 'INVALID_CHARACTER', message: 'the key holds a NUL character (\\u0000), which cannot be stored' });
        walk(v, `${path}/${token(k)}`, depth + 1);
      }
    }
  };
  walk(raw, '', 0);
  return out;
}
