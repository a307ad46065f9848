import type { Viewer } from '../../shared/auth';
import { BadInputError, NotFoundError } from '../../shared/errors';
import type { Logger } from '../../shared/logger';
import { compileSpec } from './spec.compile';
import { IDENTIFIER_PATTERN } from './spec.identifier';
import type { SpecKind, SpecProblem } from './spec.model';
import type { SpecRecord, SpecsStore } from './specs.store';

/** Spec registry rules: compile and check, version, look up. */
export class SpecsService {
  constructor(
    private readonly store: SpecsStore,
    private readonly log: Logger,
  ) {}

  async register(viewer: Viewer, input: { name?: string | null; kind: SpecKind; spec: unknown }): Promise<{ spec: SpecRecord; warnings: SpecProblem[] }> {
    const rawProgram = (input.spec as { program?: unknown } | null)?.program;
    const name = input.name ?? (typeof rawProgram === 'string' ? rawProgram : '');
    const compiled = compileSpec(input.spec, { name, kind: input.kind });
    if (!compiled.ok) {
      const lines = compiled.problems.map((p) => `${p.path || '(spec)'}: ${p.message}`);
      throw new BadInputError(`The spec is invalid (${compiled.problems.length} problem${compiled.problems.length === 1 ? '' : 's'}): ${lines.join('; ')}`, {
        problems: compiled.problems,
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

  getById(id: string): Promise<SpecRecord | undefined> {
    return this.store.getById(id);
  }

  list(opts: { name?: string | null; allVersions?: boolean }): Promise<SpecRecord[]> {
    return this.store.list(opts);
  }
}
