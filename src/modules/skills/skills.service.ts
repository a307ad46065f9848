import type { Viewer } from '../../shared/auth';
import { decodeTimeCursor, encodeTimeCursor, isUuid, paginate } from '../../shared/cursor';
import { BadInputError, NotFoundError } from '../../shared/errors';
import type { Logger } from '../../shared/logger';
import type { Job } from '../../jobs/store';
import type { JobsService } from '../jobs/jobs.service';
import { competencyDetails, CTID_PATTERN, type CompetencyDetails } from './ctdl';
import { parseFrameworkRefs } from './framework-ref';
import { IMPORT_CREDENTIAL_ENGINE_JOB } from './import.job';
import type { SkillFilter, SkillRecord, SkillsStore } from './skills.store';
export type { SkillRecord } from './skills.store';

/** Largest page of `skills` and `skillsConnection`; larger `limit`s are capped to it. */
export const MAX_SKILLS_PAGE = 100;
/** `skills(limit)` when omitted, as in the replaced skill service. */
export const DEFAULT_SKILLS_LIMIT = 10;
const MAX_SEARCH = 200;
const SOURCE_NAME = /^[a-z0-9_.-]{1,64}$/;

export interface ImportInput {
  frameworks: Array<{ ctid: string; source: string }>;
}

export interface SkillsFilterInput {
  framework?: string | null;
  search?: string | null;
  sourceName?: string | null;
  includeRemoved?: boolean | null;
}

const shown = (v: string) => JSON.stringify(v.length > 200 ? `${v.slice(0, 200)}…` : v);

/** Skills rules: what an import accepts, how skills are paged and filtered. */
export class SkillsService {
  constructor(
    private readonly store: SkillsStore,
    private readonly jobs: JobsService,
    private readonly log: Logger,
    private readonly opts: { registryOrigin: string; maxFrameworks: number; languages: string[] },
  ) {}

  /** Competency details of a stored source node, in the configured languages (cached per node). */
  details(raw: unknown): CompetencyDetails {
    if (typeof raw !== 'object' || raw === null) return competencyDetails(raw, this.opts.languages);
    let d = this.detailsCache.get(raw);
    if (!d) this.detailsCache.set(raw, (d = competencyDetails(raw, this.opts.languages)));
    return d;
  }

  private readonly detailsCache = new WeakMap<object, CompetencyDetails>();

  /** Skills by id, for DataLoader batches: one query however many ids. */
  byIds(ids: readonly string[]): Promise<SkillRecord[]> {
    return this.store.byIds(ids);
  }

  /**
   * Checks every entry before anything is created, then queues one job for all of them. A bad
   * entry refuses the whole call, naming each bad entry (no job, nothing fetched).
   */
  async importCredentialEngine(viewer: Viewer, entries: readonly string[]): Promise<Job> {
    if (entries.length === 0) throw new BadInputError('competencyFrameworks must name at least one framework', { field: 'competencyFrameworks' });
    if (entries.length > this.opts.maxFrameworks) {
      throw new BadInputError(`competencyFrameworks has ${entries.length} entries; the limit is ${this.opts.maxFrameworks} per call`, {
        field: 'competencyFrameworks',
        limit: this.opts.maxFrameworks,
      });
    }
    const { refs, problems } = parseFrameworkRefs(entries, this.opts.registryOrigin);
    if (problems.length) {
      throw new BadInputError(problems.map((p) => p.message).join('; '), { field: 'competencyFrameworks', problems });
    }
    const input: ImportInput = { frameworks: refs };
    const { job } = await this.jobs.submit(viewer, IMPORT_CREDENTIAL_ENGINE_JOB, input);
    this.log.info({ jobId: job.id, frameworks: refs.map((r) => r.ctid), by: viewer.clientId }, 'credential engine import queued');
    return job;
  }

  async get(id: string): Promise<SkillRecord> {
    if (!isUuid(id)) throw new NotFoundError('Skill', id);
    const s = await this.store.get(id);
    if (!s) throw new NotFoundError('Skill', id);
    return s;
  }

  private filterOf(f: SkillsFilterInput): SkillFilter {
    const out: SkillFilter = { includeRemoved: Boolean(f.includeRemoved) };
    if (f.framework != null) {
      if (!CTID_PATTERN.test(f.framework)) throw new BadInputError(`framework ${shown(f.framework)} is not a CTID (ce-<uuid>)`, { field: 'framework' });
      out.frameworkCtid = f.framework.toLowerCase();
    }
    if (f.sourceName != null) {
      if (!SOURCE_NAME.test(f.sourceName)) throw new BadInputError(`sourceName ${shown(f.sourceName)} must be 1-64 of a-z 0-9 _ . -`, { field: 'sourceName' });
      out.sourceName = f.sourceName;
    }
    if (f.search != null) {
      const q = f.search.trim();
      if (q.length > MAX_SEARCH) throw new BadInputError(`search is ${q.length} characters; the limit is ${MAX_SEARCH}`, { field: 'search' });
      // Why escape: % and _ typed by a user are text to find, not LIKE wildcards.
      if (q) out.searchPattern = `%${q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    }
    return out;
  }

  /**
   * Offset pagination as the replaced skill service had it: newest first, `skip` >= 0,
   * `limit` >= 1 and capped at MAX_SKILLS_PAGE.
   */
  async page(skip: number, limit: number, filter: SkillsFilterInput = {}): Promise<SkillRecord[]> {
    if (!Number.isInteger(skip) || skip < 0) throw new BadInputError(`Invalid value passed to "skip": ${skip}; it must be 0 or more`, { field: 'skip' });
    if (!Number.isInteger(limit) || limit < 1) throw new BadInputError(`Invalid value passed to "limit": ${limit}; it must be 1 or more`, { field: 'limit' });
    return this.store.page(this.filterOf(filter), skip, Math.min(limit, MAX_SKILLS_PAGE));
  }

  /** Cursor pagination with a total count. */
  async connection(first: number, after: string | null | undefined, filter: SkillsFilterInput = {}) {
    if (!Number.isInteger(first) || first < 1 || first > MAX_SKILLS_PAGE) {
      throw new BadInputError(`first must be 1-${MAX_SKILLS_PAGE}, got ${first}`, { field: 'first' });
    }
    const f = this.filterOf(filter);
    return paginate({
      first,
      after: after ? decodeTimeCursor(after) : undefined,
      fetch: (limit, cursor) => this.store.list(f, limit, cursor),
      count: () => this.store.count(f),
      cursorOf: encodeTimeCursor,
    });
  }
}
