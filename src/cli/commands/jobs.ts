import { JobsDocument, type JobState } from '../../sdk/client';
import { formatCount, formatDuration } from '../../sdk/progress';
import { ExitCode, pageSize, UsageError, type Command } from '../command';
import { printTable } from '../table';

const STATES: ReadonlySet<string> = new Set<JobState>(['QUEUED', 'RUNNING', 'SUCCEEDED', 'SUCCEEDED_WITH_ERRORS', 'FAILED', 'CANCELLED']);

export const jobs: Command = {
  name: ['jobs'],
  summary: 'List recent jobs (newest first) of every type, with state, counts and duration',
  options: {
    state: {
      type: 'string',
      arg: '<state[,state]>',
      description: 'Only jobs in these states (QUEUED, RUNNING, SUCCEEDED, SUCCEEDED_WITH_ERRORS, FAILED, CANCELLED)',
    },
    type: {
      type: 'string',
      arg: '<type[,type]>',
      description: 'Only these job types (cqube.ingest-file, cqube.ingest-national-zip, directory.bulk-upload, skills.import-credential-engine)',
    },
    limit: { type: 'string', arg: '<n>', description: 'How many (1-100, default 20)' },
  },
  help: `
Example:
  sluice jobs --state RUNNING,QUEUED`,
  async run(ctx, _positionals, options) {
    const list = (name: string) =>
      (options[name] as string | undefined)
        ?.split(',')
        .map((s) => s.trim())
        .filter(Boolean);
    const states = list('state')?.map((s) => s.toUpperCase());
    const bad = states?.filter((s) => !STATES.has(s));
    if (bad?.length) throw new UsageError(`unknown state ${bad.join(', ')}; states are ${[...STATES].join(', ')}`);
    const { jobs: page } = await ctx.client().request(JobsDocument, {
      filter: { states: states as JobState[] | undefined, types: list('type') },
      first: pageSize(options),
    });
    if (ctx.json) {
      ctx.stdout.write(`${JSON.stringify(page)}\n`);
      return ExitCode.OK;
    }
    const rows = [
      ['ID', 'TYPE', 'STATE', 'PROCESSED', 'OK', 'FAILED', 'TOOK', 'CREATED'],
      ...page.nodes.map((j) => [
        j.id,
        j.type,
        j.state,
        formatCount(j.progress.processed),
        formatCount(j.progress.succeeded),
        formatCount(j.progress.failed),
        j.startedAt && j.finishedAt ? formatDuration(Date.parse(j.finishedAt) - Date.parse(j.startedAt)) : '-',
        j.createdAt,
      ]),
    ];
    printTable(ctx.stdout, rows);
    ctx.stderr.write(`${page.nodes.length} of ${formatCount(page.totalCount)} jobs\n`);
    return ExitCode.OK;
  },
};
