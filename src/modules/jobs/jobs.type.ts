import { GraphQLJSON, GraphQLSafeInt } from 'graphql-scalars';
import { Field, Float, GraphQLISODateTime, ID, Int, ObjectType, registerEnumType } from 'type-graphql';
import { Connection } from '../shared/connection';
import { JobErrorCode } from '../../jobs/errors';
import { JobState } from '../../jobs/state';
import './jobs.enums';

export enum JobEventKind {
  STATE = 'STATE',
  PROGRESS = 'PROGRESS',
  SNAPSHOT = 'SNAPSHOT',
}

registerEnumType(JobEventKind, {
  name: 'JobEventKind',
  description: 'STATE: a transition. PROGRESS: counters moved. SNAPSHOT: the current state, sent first when there is nothing to replay.',
  valuesConfig: {
    STATE: { description: 'A state transition.' },
    PROGRESS: { description: 'The progress counters moved.' },
    SNAPSHOT: { description: 'The current state, sent first when there is nothing to replay.' },
  },
});

@ObjectType({ description: 'Progress counters. Rows for file ingestion, items (frameworks, competencies) for imports.' })
export class JobProgress {
  @Field(() => GraphQLSafeInt, { nullable: true, description: 'Total rows or items, when known.' })
  total!: number | null;

  @Field(() => GraphQLSafeInt, { description: 'Rows or items processed so far.' })
  processed!: number;

  @Field(() => GraphQLSafeInt, { description: 'Rows or items that succeeded.' })
  succeeded!: number;

  @Field(() => GraphQLSafeInt, { description: 'Rows or items that failed.' })
  failed!: number;

  @Field(() => GraphQLSafeInt, { nullable: true, description: 'Input size in bytes, when known.' })
  bytesTotal!: number | null;

  @Field(() => GraphQLSafeInt, { description: 'Input bytes read so far.' })
  bytesProcessed!: number;

  @Field(() => Float, { nullable: true, description: 'processed / total (or bytes) as 0-100, when a total is known.' })
  percent!: number | null;
}

@ObjectType({ description: 'Why a job failed, or a summary of its errors.' })
export class JobErrorInfo {
  @Field(() => JobErrorCode, { description: 'Stable code.' })
  code!: JobErrorCode;

  @Field(() => String, { description: 'Human-readable explanation, safe to show.' })
  message!: string;
}

@ObjectType('Job', { description: 'A unit of background work: an ingestion, an import, a bulk upload.' })
export class JobType {
  @Field(() => ID, { description: 'Job id (UUID).' })
  id!: string;

  @Field(() => String, { description: 'Job type, e.g. cqube.ingest-file.' })
  type!: string;

  @Field(() => JobState, { description: 'Current state.' })
  state!: JobState;

  @Field(() => Int, { description: 'Attempts started so far (a lost worker or a retry starts another).' })
  attempt!: number;

  @Field(() => Int, { description: 'Attempts allowed before a lost worker fails the job.' })
  maxAttempts!: number;

  @Field(() => JobProgress, { description: 'Counters as of the newest event.' })
  progress!: JobProgress;

  @Field(() => JobErrorInfo, { nullable: true, description: 'Failure reason or error summary.' })
  error!: JobErrorInfo | null;

  @Field(() => GraphQLJSON, { description: 'The input the job was submitted with.' })
  input!: unknown;

  @Field(() => GraphQLJSON, { nullable: true, description: 'Result summary of a finished job.' })
  result!: unknown;

  @Field(() => String, { description: 'clientId that submitted it.' })
  createdBy!: string;

  @Field(() => Boolean, { description: 'Cancellation was requested and the job has not stopped yet.' })
  cancelRequested!: boolean;

  @Field(() => Int, { description: 'Sequence number of its newest event; pass it as afterSeq to resume jobUpdated.' })
  lastSeq!: number;

  @Field(() => GraphQLISODateTime, { description: 'When it was submitted.' })
  createdAt!: Date;

  @Field(() => GraphQLISODateTime, { nullable: true, description: 'When a worker first started it.' })
  startedAt!: Date | null;

  @Field(() => GraphQLISODateTime, { nullable: true, description: 'When it reached a terminal state.' })
  finishedAt!: Date | null;

  @Field(() => GraphQLISODateTime, { description: 'When it last changed.' })
  updatedAt!: Date;
}

@ObjectType('JobEvent', { description: 'One numbered event of a job (seq strictly increasing per job).' })
export class JobEventType {
  @Field(() => ID, { description: 'The job.' })
  jobId!: string;

  @Field(() => Int, { description: 'Sequence number, from 1.' })
  seq!: number;

  @Field(() => JobEventKind, { description: 'What happened.' })
  kind!: JobEventKind;

  @Field(() => JobState, { description: 'State after the event.' })
  state!: JobState;

  @Field(() => Int, { description: 'Attempt the event belongs to.' })
  attempt!: number;

  @Field(() => GraphQLISODateTime, { description: 'When it was stored.' })
  at!: Date;

  @Field(() => JobProgress, { description: 'Counters as of the event.' })
  progress!: JobProgress;

  @Field(() => JobErrorInfo, { nullable: true, description: 'Error as of the event.' })
  error!: JobErrorInfo | null;

  @Field(() => Boolean, { description: 'True for the last event a job will ever have.' })
  terminal!: boolean;
}

export const JobConnection = Connection(JobType, 'JobConnection', {
  description: 'A page of jobs, newest first.',
  nodes: 'The jobs on this page.',
  totalCount: 'Jobs matching the filter, on all pages.',
});
export type JobConnection = InstanceType<typeof JobConnection>;
