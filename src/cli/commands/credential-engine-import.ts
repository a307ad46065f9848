import type { FrameworkResult } from '../../modules/skills/import.job';
import { ImportCredentialEngineDocument } from '../../sdk/client';
import { formatCount } from '../../sdk/progress';
import { type ExitCode, UsageError, type Command } from '../command';
import { summariseJob, watchJob } from '../watch-job';

/** Competency problems printed per framework; the job result holds up to 100 of them. */
const SHOWN_PROBLEMS = 3;

/** One line per framework, then its first problems. */
function frameworkLines(f: FrameworkResult): string[] {
  if (f.error) return [`  ${f.ctid}: ${f.state}: ${f.error.code}: ${f.error.message}`];
  const counts = `${formatCount(f.competencies ?? 0)} competencies (${formatCount(f.created ?? 0)} created, ${formatCount(f.updated ?? 0)} updated, ${formatCount(f.removed ?? 0)} removed)`;
  const invalid = f.invalidCompetencies ? `, ${formatCount(f.invalidCompetencies)} invalid skipped` : '';
  const lines = [`  ${f.ctid}${f.name ? ` "${f.name}"` : ''}: ${f.state}: ${counts}${invalid}`];
  for (const p of (f.problems ?? []).slice(0, SHOWN_PROBLEMS)) lines.push(`    ${p.ctid ?? '(no ctid)'}: ${p.code}: ${p.message}`);
  const more = (f.invalidCompetencies ?? 0) - Math.min(SHOWN_PROBLEMS, f.problems?.length ?? 0);
  if (more > 0) lines.push(`    … and ${formatCount(more)} more (job result)`);
  return lines;
}

export const credentialEngineImport: Command = {
  name: ['credential-engine', 'import'],
  summary: 'Import Credential Engine competency frameworks as skills, then follow the job',
  args: '<ctid-or-url...>',
  help: `
Each argument is a framework CTID (ce-<uuid>) or a /resources/<ctid> or /graph/<ctid> URL on the
registry the service is configured with (SLUICE_CE_REGISTRY_URL). The service refuses the whole
call if any entry is bad, naming it. A framework that cannot be fetched or read fails alone; when
the job ends, one line per framework gives its counts or its error.

Exit code: 0 every framework and competency imported, 2 some frameworks failed or competencies
were invalid (reported), 1 every framework failed or the request was refused.

Example:
  sluice credential-engine import ce-5b2f0c71-3d4e-4a9b-9c1d-2e7f8a6b4c10 \\
    https://credentialengineregistry.org/resources/ce-6fdd56d3-0214-4a67-b0c4-bb4c16ce9a13`,
  async run(ctx, positionals) {
    if (positionals.length === 0) throw new UsageError('give at least one framework CTID or registry URL');
    const { importCredentialEngine: queued } = await ctx.client().request(ImportCredentialEngineDocument, { competencyFrameworks: positionals });
    ctx.stderr.write(`Queued job ${queued.id} for ${formatCount(positionals.length)} framework${positionals.length === 1 ? '' : 's'}\n`);
    const { job, exitCode } = await watchJob(ctx, queued.id, { label: 'credential-engine' });
    if (ctx.json) {
      ctx.stdout.write(`${JSON.stringify(job)}\n`);
      return exitCode;
    }
    ctx.stdout.write(`${summariseJob(ctx, job)}\n`);
    const frameworks = (job.result as { frameworks?: FrameworkResult[] } | null)?.frameworks ?? [];
    for (const f of frameworks) ctx.stdout.write(`${frameworkLines(f).join('\n')}\n`);
    return exitCode satisfies ExitCode;
  },
};
