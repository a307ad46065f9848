import { CsvDelimiterEnum, CsvEncodingEnum, dialectOptions } from '../files/dialect.type';
import { GraphQLUpload, type FileUpload } from 'graphql-upload-minimal';
import { Arg, Authorized, Ctx, FieldResolver, ID, Int, Mutation, Query, Resolver, Root } from 'type-graphql';
import type { Context } from '../../server/context';
import { requireViewer } from '../../server/authorize';
import { Role } from '../../shared/roles';
import { JobState } from '../../jobs/state';
import { toJobType } from '../jobs/jobs.mapper';
import type { Job } from '../jobs/jobs.service';
import { BulkKind } from './directory.columns';
import { LocationType, OrganisationStatus, UserType } from './rules';
import type { BulkProcess } from './directory.service';
import {
  type BulkOperation,
  BulkProcessStatus,
  BulkRowResultConnection,
  BulkUploadResult,
  BulkUploadStatusType,
  DirectoryUserConnection,
  LocationConnection,
  OrganisationConnection,
} from './directory.type';

const STATUS: Record<JobState, BulkProcessStatus> = {
  [JobState.QUEUED]: BulkProcessStatus.NOT_STARTED,
  [JobState.RUNNING]: BulkProcessStatus.IN_PROGRESS,
  [JobState.SUCCEEDED]: BulkProcessStatus.COMPLETED,
  [JobState.SUCCEEDED_WITH_ERRORS]: BulkProcessStatus.COMPLETED,
  [JobState.FAILED]: BulkProcessStatus.FAILED,
  [JobState.CANCELLED]: BulkProcessStatus.FAILED,
};

const MESSAGE: Record<BulkProcessStatus, string> = {
  NOT_STARTED: 'Operation is not started.',
  IN_PROGRESS: 'Operation is in progress.',
  COMPLETED: 'Operation is completed.',
  FAILED: 'Operation failed.',
};

function toStatus(p: BulkProcess, job: Job, counts: { succeeded: number; failed: number }): BulkUploadStatusType {
  const status = STATUS[job.state];
  const message =
    job.state === JobState.CANCELLED
      ? 'Operation was cancelled; rows already applied stay applied.'
      : status === BulkProcessStatus.FAILED && job.error
        ? job.error.message
        : MESSAGE[status];
  return {
    processId: p.id,
    objectType: p.kind,
    locationType: p.locationType,
    status,
    message,
    fileName: p.fileName,
    size: p.size,
    sha256: p.sha256,
    counts: { total: p.totalRows, processed: counts.succeeded + counts.failed, ...counts },
    job: toJobType(job),
    createdBy: p.createdBy,
    createdAt: p.createdAt,
    process: p,
  };
}

@Resolver(() => BulkUploadStatusType)
export class DirectoryResolver {
  @Authorized(Role.INGESTOR)
  @Mutation(() => BulkUploadResult, {
    description:
      'Bulk upload of locations, organisations or users from a Sunbird-style CSV (multipart; send the apollo-require-preflight header). The file is stored and its header checked at once (a wrong header fails here, listing the valid columns), then a job applies the rows; follow it with uploadStatus or jobUpdated.',
  })
  async bulkUpload(
    @Arg('kind', () => BulkKind, { description: 'LOCATION, ORGANISATION or USER.' }) kind: BulkKind,
    @Arg('file', () => GraphQLUpload, { description: 'The CSV.' }) file: Promise<FileUpload>,
    @Arg('locationType', () => LocationType, {
      nullable: true,
      description: 'LOCATION only: the type of every row (a `type` column may give each row its own instead).',
    })
    locationType: LocationType | null,
    @Arg('idempotencyKey', () => String, { nullable: true, description: 'Retries with the same key get the same process.' }) idempotencyKey: string | null,
    @Arg('encoding', () => CsvEncodingEnum, { nullable: true, description: 'Encoding of the CSV; detected (UTF-8, or UTF-16 by its BOM) when omitted.' })
    encoding: CsvEncodingEnum | null,
    @Arg('delimiter', () => CsvDelimiterEnum, { nullable: true, description: 'Cell delimiter; detected from the header line when omitted.' })
    delimiter: CsvDelimiterEnum | null,
    @Ctx() ctx: Context,
  ): Promise<BulkUploadResult> {
    const dialect = dialectOptions(encoding, delimiter);
    const res = await ctx.services.directory.bulkUpload(requireViewer(ctx), { kind, file, locationType, idempotencyKey, dialect });
    const counts = await ctx.services.directory.counts(res.process);
    return { processId: res.process.id, created: res.created, status: toStatus(res.process, res.job, counts) };
  }

  @Authorized(Role.VIEWER)
  @Query(() => BulkUploadStatusType, { description: 'A bulk upload process: status, counts and per-row results. Your own processes; any for ADMIN.' })
  async uploadStatus(
    @Arg('processId', () => ID, { description: 'Process id returned by bulkUpload.' }) processId: string,
    @Ctx() ctx: Context,
  ): Promise<BulkUploadStatusType> {
    const viewer = requireViewer(ctx);
    const p = await ctx.services.directory.process(viewer, processId);
    const job = await ctx.services.jobs.get(viewer, p.jobId!);
    return toStatus(p, job, await ctx.services.directory.counts(p));
  }

  private async rows(ctx: Context, s: BulkUploadStatusType, ok: boolean, first: number, after: string | null): Promise<BulkRowResultConnection> {
    const page = await ctx.services.directory.results(requireViewer(ctx), s.process, ok, first, after);
    return {
      nodes: page.nodes.map((r) => ({
        line: r.line,
        operation: r.operation as BulkOperation | null,
        id: r.entityId,
        errorCode: r.errorCode as never,
        errorColumn: r.errorColumn,
        errorMessage: r.errorMessage,
        data: r.data,
      })),
      pageInfo: page.pageInfo,
      totalCount: page.totalCount,
    };
  }

  @FieldResolver(() => BulkRowResultConnection, { description: 'Rows created or updated, by line.' })
  successResult(
    @Root() s: BulkUploadStatusType,
    @Arg('first', () => Int, { defaultValue: 100, description: 'Page size, 1-1000.' }) first: number,
    @Arg('after', () => String, { nullable: true, description: 'endCursor of the previous page.' }) after: string | null,
    @Ctx() ctx: Context,
  ): Promise<BulkRowResultConnection> {
    return this.rows(ctx, s, true, first, after);
  }

  @FieldResolver(() => BulkRowResultConnection, { description: 'Rows that failed, by line, with error code and message.' })
  failureResult(
    @Root() s: BulkUploadStatusType,
    @Arg('first', () => Int, { defaultValue: 100, description: 'Page size, 1-1000.' }) first: number,
    @Arg('after', () => String, { nullable: true, description: 'endCursor of the previous page.' }) after: string | null,
    @Ctx() ctx: Context,
  ): Promise<BulkRowResultConnection> {
    return this.rows(ctx, s, false, first, after);
  }

  @Authorized(Role.VIEWER)
  @Query(() => LocationConnection, { description: 'Locations by code; filter by type and parent code.' })
  async locations(
    @Arg('type', () => LocationType, { nullable: true, description: 'Only this level.' }) type: LocationType | null,
    @Arg('parentCode', () => String, { nullable: true, description: 'Only children of the location with this code.' }) parentCode: string | null,
    @Arg('first', () => Int, { defaultValue: 50, description: 'Page size, 1-500.' }) first: number,
    @Arg('after', () => String, { nullable: true, description: 'endCursor of the previous page.' }) after: string | null,
    @Ctx() ctx: Context,
  ): Promise<LocationConnection> {
    requireViewer(ctx);
    const page = await ctx.services.directory.locations({ type, parentCode }, first, after);
    return page;
  }

  @Authorized(Role.VIEWER)
  @Query(() => OrganisationConnection, { description: 'Organisations by name; filter by block code, status or external id.' })
  async organisations(
    @Arg('locationCode', () => String, { nullable: true, description: 'Only organisations of the block with this code.' }) locationCode: string | null,
    @Arg('status', () => OrganisationStatus, { nullable: true, description: 'Only this status.' }) status: OrganisationStatus | null,
    @Arg('externalId', () => String, { nullable: true, description: 'Only the organisation with this external id.' }) externalId: string | null,
    @Arg('first', () => Int, { defaultValue: 50, description: 'Page size, 1-500.' }) first: number,
    @Arg('after', () => String, { nullable: true, description: 'endCursor of the previous page.' }) after: string | null,
    @Ctx() ctx: Context,
  ): Promise<OrganisationConnection> {
    requireViewer(ctx);
    const page = await ctx.services.directory.organisations({ locationCode, status, externalId }, first, after);
    return page;
  }

  @Authorized(Role.VIEWER)
  @Query(() => DirectoryUserConnection, { description: 'Users by name; phone and email masked unless the viewer is ADMIN.' })
  async users(
    @Arg('organisationId', () => String, { nullable: true, description: 'Only users of this organisation id.' }) organisationId: string | null,
    @Arg('organisationExternalId', () => String, { nullable: true, description: 'Only users of the organisation with this external id.' })
    organisationExternalId: string | null,
    @Arg('userType', () => UserType, { nullable: true, description: 'Only this user type.' }) userType: UserType | null,
    @Arg('role', () => String, { nullable: true, description: 'Only users holding this role.' }) role: string | null,
    @Arg('first', () => Int, { defaultValue: 50, description: 'Page size, 1-500.' }) first: number,
    @Arg('after', () => String, { nullable: true, description: 'endCursor of the previous page.' }) after: string | null,
    @Ctx() ctx: Context,
  ): Promise<DirectoryUserConnection> {
    const page = await ctx.services.directory.users(requireViewer(ctx), { organisationId, organisationExternalId, userType, role }, first, after);
    return page;
  }
}
