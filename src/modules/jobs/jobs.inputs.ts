import { Field, InputType, Int } from 'type-graphql';
import { JobState } from '../../jobs/state';
import './jobs.enums';

@InputType({ description: 'Which jobs to list or watch.' })
export class JobFilter {
  @Field(() => [String], { nullable: true, description: 'Only these job types.' })
  types?: string[] | null;

  @Field(() => [JobState], { nullable: true, description: 'Only jobs in these states.' })
  states?: JobState[] | null;
}

@InputType({ description: 'A diagnostic job that counts to `to`, one step every `stepMs`: checks that workers run, report progress and stop on cancel.' })
export class DiagnosticJobInput {
  @Field(() => Int, { description: 'Steps to count, 1-100000.' })
  to!: number;

  @Field(() => Int, { defaultValue: 0, description: 'Milliseconds per step, 0-10000.' })
  stepMs!: number;

  @Field(() => Int, { nullable: true, description: 'Fail on purpose at this step (to test failure handling and retryJob).' })
  failAt?: number | null;

  @Field(() => Int, { nullable: true, description: 'Steps that count as failed items: every n-th step (ends SUCCEEDED_WITH_ERRORS).' })
  failEvery?: number | null;

  @Field(() => String, { nullable: true, description: 'Same key from the same client returns the same job.' })
  idempotencyKey?: string | null;
}
