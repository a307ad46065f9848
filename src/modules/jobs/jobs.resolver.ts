import { Arg, Authorized, Ctx, FieldResolver, ID, Int, Mutation, Query, Resolver, Root, Subscription } from 'type-graphql';
import type { Context } from '../../server/context';
import { requireViewer } from '../../server/authorize';
import { BadInputError } from '../../shared/errors';
import { Role } from '../../shared/roles';
import { DIAGNOSTIC_JOB, parseDiagnosticInput } from '../../jobs/diagnostic.job';
import { JobFailure } from '../../jobs/errors';
import { DiagnosticJobInput, JobFilter } from './jobs.inputs';
import { toJobEventType, toJobType } from './jobs.mapper';
import type { Job } from './jobs.service';
import type { JobUpdate } from './jobs.service';
import { JobConnection, JobEventType, JobType } from './jobs.type';

const filterOf = (f?: JobFilter | null) => ({ types: f?.types ?? undefined, states: f?.states ?? undefined });

@Resolver(() => JobType)
export class JobsResolver {
  @Authorized(Role.VIEWER)
  @Query(() => JobType, { description: 'One job: yours, or any for ADMIN. NOT_FOUND otherwise.' })
  async job(@Arg('id', () => ID, { description: 'Job id.' }) id: string, @Ctx() ctx: Context): Promise<JobType> {
    return toJobType(await ctx.services.jobs.get(requireViewer(ctx), id));
  }

  @Authorized(Role.VIEWER)
  @Query(() => JobConnection, { description: 'Your jobs (all jobs for ADMIN), newest first, with cursor pagination.' })
  async jobs(
    @Arg('filter', () => JobFilter, { nullable: true, description: 'Types and states to include.' }) filter: JobFilter | null,
    @Arg('first', () => Int, { defaultValue: 20, description: 'Page size, 1-100.' }) first: number,
    @Arg('after', () => String, { nullable: true, description: 'endCursor of the previous page.' }) after: string | null,
    @Ctx() ctx: Context,
  ): Promise<JobConnection> {
    const page = await ctx.services.jobs.list(requireViewer(ctx), filterOf(filter), first, after);
    return { ...page, nodes: page.nodes.map(toJobType) };
  }

  @FieldResolver(() => [JobEventType], { description: 'Stored events after afterSeq, oldest first.' })
  async events(
    @Root() job: JobType,
    @Arg('afterSeq', () => Int, { defaultValue: 0, description: 'Only events with a larger seq.' }) afterSeq: number,
    @Arg('first', () => Int, { defaultValue: 100, description: 'At most this many, 1-1000.' }) first: number,
    @Ctx() ctx: Context,
  ): Promise<JobEventType[]> {
    if (first < 1 || first > 1000) throw new BadInputError('first must be 1-1000', { field: 'first' });
    return (await ctx.services.jobs.events(job.id, afterSeq, first)).map(toJobEventType);
  }

  @Authorized(Role.INGESTOR)
  @Mutation(() => JobType, { description: 'Cancels a job. QUEUED: at once. RUNNING: it stops at its next checkpoint and nothing it half-wrote stays visible.' })
  async cancelJob(@Arg('id', () => ID, { description: 'Job id.' }) id: string, @Ctx() ctx: Context): Promise<JobType> {
    return toJobType(await ctx.services.jobs.cancel(requireViewer(ctx), id));
  }

  @Authorized(Role.INGESTOR)
  @Mutation(() => JobType, { description: 'Queues a FAILED job again with the same id and input.' })
  async retryJob(@Arg('id', () => ID, { description: 'Job id.' }) id: string, @Ctx() ctx: Context): Promise<JobType> {
    return toJobType(await ctx.services.jobs.retry(requireViewer(ctx), id));
  }

  @Authorized(Role.ADMIN)
  @Mutation(() => JobType, { description: 'Starts a diagnostic counting job (ADMIN): checks workers, progress events, cancel and retry end to end.' })
  async runDiagnosticJob(
    @Arg('input', () => DiagnosticJobInput, { description: 'What to count.' }) input: DiagnosticJobInput,
    @Ctx() ctx: Context,
  ): Promise<JobType> {
    const { idempotencyKey, ...rest } = input;
    try {
      parseDiagnosticInput(rest);
    } catch (err) {
      if (err instanceof JobFailure) throw new BadInputError(err.message);
      throw err;
    }
    const { job } = await ctx.services.jobs.submit(requireViewer(ctx), DIAGNOSTIC_JOB, rest, { idempotencyKey });
    return toJobType(job);
  }

  @Subscription(() => JobEventType, {
    description:
      'Events of one job: first those after afterSeq (or a SNAPSHOT of the current state when afterSeq is omitted or current), then live ones in order; completes after the terminal event.',
    subscribe: async ({ args, context }) => {
      const { id, afterSeq } = args as { id: string; afterSeq?: number | null };
      return (context as Context).services.jobs.watch(requireViewer(context as Context, Role.VIEWER), id, afterSeq);
    },
  })
  jobUpdated(
    @Root() update: JobUpdate,
    @Arg('id', () => ID, { description: 'Job id.' }) _id: string,
    @Arg('afterSeq', () => Int, { nullable: true, description: 'Last seq the client saw; events after it are replayed.' }) _afterSeq: number | null,
  ): JobEventType {
    return toJobEventType(update);
  }

  @Subscription(() => JobType, {
    name: 'jobs',
    description: 'Every change to your jobs (all jobs for ADMIN) matching the filter, as the job’s current state.',
    subscribe: ({ args, context }) => {
      const { filter } = args as { filter?: JobFilter | null };
      return (context as Context).services.jobs.watchAll(requireViewer(context as Context, Role.VIEWER), filterOf(filter));
    },
  })
  jobsChanged(
    @Root() job: Job,
    @Arg('filter', () => JobFilter, { nullable: true, description: 'Types and states to include.' }) _filter: JobFilter | null,
  ): JobType {
    return toJobType(job);
  }
}
