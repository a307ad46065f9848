import { type ExitCode, UsageError, type Command } from '../command';
import { summariseJob, watchJob } from '../watch-job';

export const jobWatch: Command = {
  name: ['job', 'watch'],
  summary: 'Follow a job live until it ends; the exit code tells how it ended',
  args: '<job-id>',
  async run(ctx, positionals) {
    const [id, ...extra] = positionals;
    if (!id || extra.length) throw new UsageError('give exactly one job id');
    const { job, exitCode } = await watchJob(ctx, id);
    if (ctx.json) ctx.stdout.write(`${JSON.stringify(job)}\n`);
    else ctx.stdout.write(`${summariseJob(ctx, job)}\n`);
    return exitCode satisfies ExitCode;
  },
};
