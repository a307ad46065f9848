import { JobErrorCode, JobFailure, JobStopped } from '../../jobs/errors';
import type { JobHandler, JobOutcome } from '../../jobs/handler';
import { JobState } from '../../jobs/state';
import { CodedError } from './coded-error';
import { CTID_PATTERN, parseFrameworkDocument, type CompetencyProblem } from './ctdl';
import type { RegistryClient } from './registry-client';
import type { ImportInput } from './skills.service';
import type { SkillsStore } from './skills.store';

export const IMPORT_CREDENTIAL_ENGINE_JOB = 'skills.import-credential-engine';

export interface ImportDeps {
  store: SkillsStore;
  registry: RegistryClient;
  /** Language preference for language maps; any language after these. */
  languages: readonly string[];
}

/** A framework that could not be stored (database error); details go to the log, not the result. */
const STORE_FAILED = 'STORE_FAILED';
/** Problems listed per framework in the job result; the count is always complete. */
const MAX_PROBLEMS_SHOWN = 100;

export interface FrameworkResult {
  ctid: string;
  source: string;
  state: 'SUCCEEDED' | 'SUCCEEDED_WITH_ERRORS' | 'FAILED';
  name?: string | null;
  competencies?: number;
  created?: number;
  updated?: number;
  removed?: number;
  /** Competencies skipped (problems with `skipped`). */
  invalidCompetencies?: number;
  /** Every problem, skipped or not; `problems` lists the first MAX_PROBLEMS_SHOWN. */
  problemCount?: number;
  problems?: CompetencyProblem[];
  error?: { code: string; message: string };
}

function parseImportInput(raw: unknown): ImportInput {
  const list = (raw as { frameworks?: unknown } | null)?.frameworks;
  if (!Array.isArray(list) || list.length === 0) throw new JobFailure(JobErrorCode.INVALID_INPUT, 'input.frameworks must be a non-empty array');
  return {
    frameworks: list.map((f, i) => {
      const ctid = (f as { ctid?: unknown } | null)?.ctid;
      const source = (f as { source?: unknown } | null)?.source;
      if (typeof ctid !== 'string' || !CTID_PATTERN.test(ctid)) throw new JobFailure(JobErrorCode.INVALID_INPUT, `input.frameworks[${i}].ctid is not a CTID`);
      return { ctid: ctid.toLowerCase(), source: typeof source === 'string' ? source : ctid };
    }),
  };
}

/**
 * Imports Credential Engine competency frameworks: for each, fetch `<registry>/graph/<ctid>`,
 * parse it, and write the framework and its skills in one fenced transaction. A framework that
 * fails (404, timeout, bad JSON, not a framework) fails alone and is reported; the job is
 * SUCCEEDED only when every framework and competency made it. Progress counts items: each
 * framework and each of its competencies.
 */
export function importCredentialEngineJob(deps: ImportDeps): JobHandler<ImportInput> {
  return {
    type: IMPORT_CREDENTIAL_ENGINE_JOB,
    parseInput: parseImportInput,
    async run(ctx) {
      const frameworks = ctx.input.frameworks;
      const c = { total: frameworks.length, processed: 0, succeeded: 0, failed: 0 };
      ctx.progress({ ...c });
      const results: FrameworkResult[] = [];
      for (const ref of frameworks) {
        await ctx.checkpoint();
        try {
          const doc = await deps.registry.getJson(`/graph/${ref.ctid}`, ctx.signal);
          const fw = parseFrameworkDocument(doc, ref.ctid, deps.languages);
          const skipped = fw.problems.filter((p) => p.skipped).length;
          const items = fw.competencies.length + skipped;
          c.total += items;
          ctx.progress({ total: c.total });
          await ctx.checkpoint();
          const w = await ctx.fenced((tx) => deps.store.writeFramework(tx, fw, ctx.jobId));
          c.processed += 1 + items;
          c.succeeded += 1 + fw.competencies.length;
          c.failed += skipped;
          results.push({
            ctid: ref.ctid,
            source: ref.source,
            state: skipped ? 'SUCCEEDED_WITH_ERRORS' : 'SUCCEEDED',
            name: fw.name,
            competencies: fw.competencies.length,
            ...w,
            invalidCompetencies: skipped,
            problemCount: fw.problems.length,
            problems: fw.problems.slice(0, MAX_PROBLEMS_SHOWN),
          });
          ctx.log.info(
            { framework: ref.ctid, competencies: fw.competencies.length, ...w, invalid: skipped, problems: fw.problems.length },
            'framework imported',
          );
        } catch (err) {
          if (err instanceof JobStopped || ctx.signal.aborted) throw err;
          let error: { code: string; message: string };
          if (err instanceof CodedError) {
            error = { code: err.code, message: err.message };
          } else {
            ctx.log.error({ err, framework: ref.ctid }, 'framework could not be stored');
            error = { code: STORE_FAILED, message: `Framework ${ref.ctid} could not be stored; the server log has details` };
          }
          c.processed += 1;
          c.failed += 1;
          results.push({ ctid: ref.ctid, source: ref.source, state: 'FAILED', error });
          ctx.log.warn({ framework: ref.ctid, code: error.code }, 'framework import failed');
        }
        ctx.progress({ processed: c.processed, succeeded: c.succeeded, failed: c.failed });
      }
      return outcome(results, c);
    },
  };
}

function outcome(results: FrameworkResult[], counters: JobOutcome['counters']): JobOutcome {
  const failed = results.filter((r) => r.state === 'FAILED');
  const ok = results.filter((r) => r.state !== 'FAILED');
  const sum = (k: 'competencies' | 'created' | 'updated' | 'removed' | 'invalidCompetencies' | 'problemCount') => ok.reduce((n, r) => n + (r[k] ?? 0), 0);
  const result = {
    frameworks: results,
    totals: {
      frameworks: results.length,
      frameworksFailed: failed.length,
      competencies: sum('competencies'),
      created: sum('created'),
      updated: sum('updated'),
      removed: sum('removed'),
      invalidCompetencies: sum('invalidCompetencies'),
      /** Every problem, including dropped tree links of kept competencies. */
      problems: sum('problemCount'),
    },
  };
  const firstFailure = failed[0] && `${failed[0].ctid}: ${failed[0].error!.code}: ${failed[0].error!.message}`;
  if (failed.length === results.length) {
    const message = results.length === 1 ? `Framework ${firstFailure}` : `All ${results.length} frameworks failed; first: ${firstFailure}`;
    return { state: JobState.FAILED, error: { code: JobErrorCode.SOME_FRAMEWORKS_FAILED, message }, result, counters };
  }
  if (failed.length) {
    return {
      state: JobState.SUCCEEDED_WITH_ERRORS,
      error: { code: JobErrorCode.SOME_FRAMEWORKS_FAILED, message: `${failed.length} of ${results.length} frameworks failed; first: ${firstFailure}` },
      result,
      counters,
    };
  }
  if (result.totals.invalidCompetencies) {
    return {
      state: JobState.SUCCEEDED_WITH_ERRORS,
      error: {
        code: JobErrorCode.SOME_COMPETENCIES_INVALID,
        message: `${result.totals.invalidCompetencies} competencies were invalid and skipped; see result.frameworks[].problems`,
      },
      result,
      counters,
    };
  }
  return { state: JobState.SUCCEEDED, result, counters };
}
