import { GraphQLUpload, type FileUpload } from 'graphql-upload-minimal';
import { Arg, Authorized, Ctx, FieldResolver, ID, Int, Mutation, Query, Resolver, Root } from 'type-graphql';
import type { Context } from '../../server/context';
import { requireViewer } from '../../shared/authorize';
import { Role } from '../../shared/roles';
import { isTerminal, JobState } from '../jobs/job-state';
import { toJobType } from '../jobs/jobs.mapper';
import { JobType } from '../jobs/jobs.type';
import { toSpecType } from '../specs/specs.resolver';
import { Spec } from '../specs/specs.type';
import type { FileRecord } from './files.store';
import { CsvDelimiterEnum, CsvEncodingEnum, dialectOptions, toFileDialectType } from './dialect.type';
import { FileConnection, FileKindEnum, FileState, FileType, OnInvalidRowsEnum, RowErrorConnection, UploadResult, ValidationReportType } from './files.type';

/**
 * A CSV inside a ZIP has no job of its own: its state comes from its outcome. A child its ZIP's
 * job left unfinished gets an error too (see settleChildren in ingest.job.ts), `CANCELLED` when
 * the job was cancelled.
 */
function childState(f: FileRecord): FileState {
  if (f.error) return f.error.code === FileState.CANCELLED ? FileState.CANCELLED : FileState.FAILED;
  if (f.totalRows === null) return FileState.RUNNING;
  return (f.invalidRows ?? 0) > 0 ? FileState.SUCCEEDED_WITH_ERRORS : FileState.SUCCEEDED;
}

/** A signed-URL upload before its import has no job: its state is its upload phase. */
function uploadPhase(f: FileRecord): FileState | undefined {
  switch (f.uploadState) {
    case 'PENDING_UPLOAD':
      return FileState.PENDING_UPLOAD;
    case 'UPLOADING':
      return FileState.UPLOADING;
    case 'UPLOADED':
      return FileState.UPLOADED;
    case 'EXPIRED':
      return FileState.EXPIRED;
    default:
      return undefined;
  }
}

export function toFileType(f: FileRecord, jobState?: JobState): FileType {
  return {
    ...f,
    tags: f.tags ?? [],
    kind: f.kind as FileKindEnum,
    onInvalidRows: f.onInvalidRows as OnInvalidRowsEnum,
    state: f.parentId ? childState(f) : (uploadPhase(f) ?? (jobState as FileState | undefined) ?? FileState.QUEUED),
    rows: { total: f.totalRows, valid: f.validRows, invalid: f.invalidRows },
    outputs: { raw: f.storageKey, valid: f.validOutputKey, errors: f.errorOutputKey },
    error: f.error ? { code: f.error.code, message: f.error.message, problems: f.error.problems ?? null } : null,
    dialect: toFileDialectType(f.dialect?.detected),
  };
}

@Resolver(() => FileType)
export class FilesResolver {
  private async withState(ctx: Context, record: FileRecord): Promise<FileType> {
    const f = await ctx.services.signedUploads.refresh(record);
    if (f.parentId || !f.jobId) return toFileType(f);
    const job = await ctx.services.jobsStore.get(f.jobId);
    return toFileType(f, job?.state);
  }

  @Authorized(Role.INGESTOR)
  @Mutation(() => UploadResult, {
    description:
      'Uploads a CSV for a state program (multipart; send the apollo-require-preflight header). The raw file is stored first (size and sha256 recorded), then a job is queued; both return at once. The same idempotencyKey returns the first upload and its job.',
  })
  async uploadFile(
    @Arg('program', () => String, { description: 'Program name (lower-case identifier); names the output folders.' }) program: string,
    @Arg('spec', () => String, { description: 'Spec name.' }) spec: string,
    @Arg('file', () => GraphQLUpload, { description: 'The CSV.' }) file: Promise<FileUpload>,
    @Arg('specVersion', () => Int, { nullable: true, description: 'Spec version; latest when omitted.' }) specVersion: number | null,
    @Arg('idempotencyKey', () => String, { nullable: true, description: 'Retries with the same key get the same file and job.' }) idempotencyKey: string | null,
    @Arg('onInvalidRows', () => OnInvalidRowsEnum, { defaultValue: OnInvalidRowsEnum.SKIP, description: 'What invalid rows do to the file.' }) onInvalidRows: OnInvalidRowsEnum,
    @Arg('encoding', () => CsvEncodingEnum, { nullable: true, description: 'Encoding of the CSV; detected (UTF-8, or UTF-16 by its BOM) when omitted.' }) encoding: CsvEncodingEnum | null,
    @Arg('delimiter', () => CsvDelimiterEnum, { nullable: true, description: 'Cell delimiter; detected from the header line when omitted.' }) delimiter: CsvDelimiterEnum | null,
    @Ctx() ctx: Context,
  ): Promise<UploadResult> {
    const dialect = dialectOptions(encoding, delimiter);
    const res = await ctx.services.files.upload(requireViewer(ctx), { kind: 'CSV', program, spec, specVersion, file, idempotencyKey, onInvalidRows, dialect });
    return { file: toFileType(res.file, res.job.state), job: toJobType(res.job), created: res.created };
  }

  @Authorized(Role.INGESTOR)
  @Mutation(() => UploadResult, {
    description:
      'Uploads a national program ZIP. Each CSV inside is ingested with the spec of the same name (`<program>.zip` containing `<program>.csv`); outputs go to emission/ and emission-error/. Unsafe archives are refused.',
  })
  async uploadNationalProgram(
    @Arg('file', () => GraphQLUpload, { description: 'The ZIP.' }) file: Promise<FileUpload>,
    @Arg('idempotencyKey', () => String, { nullable: true, description: 'Retries with the same key get the same file and job.' }) idempotencyKey: string | null,
    @Arg('onInvalidRows', () => OnInvalidRowsEnum, { defaultValue: OnInvalidRowsEnum.SKIP, description: 'What invalid rows do to each CSV.' }) onInvalidRows: OnInvalidRowsEnum,
    @Arg('encoding', () => CsvEncodingEnum, { nullable: true, description: 'Encoding of every CSV in the ZIP; detected per CSV when omitted.' }) encoding: CsvEncodingEnum | null,
    @Arg('delimiter', () => CsvDelimiterEnum, { nullable: true, description: 'Cell delimiter of every CSV in the ZIP; detected per CSV when omitted.' }) delimiter: CsvDelimiterEnum | null,
    @Ctx() ctx: Context,
  ): Promise<UploadResult> {
    const dialect = dialectOptions(encoding, delimiter);
    const res = await ctx.services.files.upload(requireViewer(ctx), { kind: 'ZIP', program: null, spec: null, file, idempotencyKey, onInvalidRows, dialect });
    return { file: toFileType(res.file, res.job.state), job: toJobType(res.job), created: res.created };
  }

  @Authorized(Role.VIEWER)
  @Mutation(() => ValidationReportType, { description: 'Dry run: the same header and row checks as an upload; nothing is stored. Returns the counts and the first maxErrors errors.' })
  async validateFile(
    @Arg('spec', () => String, { description: 'Spec name.' }) spec: string,
    @Arg('file', () => GraphQLUpload, { description: 'The CSV.' }) file: Promise<FileUpload>,
    @Arg('specVersion', () => Int, { nullable: true, description: 'Spec version; latest when omitted.' }) specVersion: number | null,
    @Arg('maxErrors', () => Int, { defaultValue: 100, description: 'Row errors to return, 0-1000.' }) maxErrors: number,
    @Arg('encoding', () => CsvEncodingEnum, { nullable: true, description: 'Encoding of the CSV; detected (UTF-8, or UTF-16 by its BOM) when omitted.' }) encoding: CsvEncodingEnum | null,
    @Arg('delimiter', () => CsvDelimiterEnum, { nullable: true, description: 'Cell delimiter; detected from the header line when omitted.' }) delimiter: CsvDelimiterEnum | null,
    @Ctx() ctx: Context,
  ): Promise<ValidationReportType> {
    const dialect = dialectOptions(encoding, delimiter);
    const report = await ctx.services.files.validate(requireViewer(ctx), { spec, specVersion, file, maxErrors, dialect });
    return { ...report, dialect: toFileDialectType(report.dialect) };
  }

  @Authorized(Role.VIEWER)
  @Query(() => FileType, { description: 'One file: yours, or any for ADMIN.' })
  async file(@Arg('id', () => ID, { description: 'File id.' }) id: string, @Ctx() ctx: Context): Promise<FileType> {
    return this.withState(ctx, await ctx.services.files.get(requireViewer(ctx), id));
  }

  @Authorized(Role.VIEWER)
  @Query(() => FileConnection, { description: 'Your files (all for ADMIN), newest first. Filter by program, spec or file name (for users coming from cQube).' })
  async files(
    @Arg('program', () => String, { nullable: true, description: 'Only this program.' }) program: string | null,
    @Arg('spec', () => String, { nullable: true, description: 'Only this spec (any version).' }) spec: string | null,
    @Arg('fileName', () => String, { nullable: true, description: 'Only files uploaded under this exact name.' }) fileName: string | null,
    @Arg('first', () => Int, { defaultValue: 20, description: 'Page size, 1-100.' }) first: number,
    @Arg('after', () => String, { nullable: true, description: 'endCursor of the previous page.' }) after: string | null,
    @Ctx() ctx: Context,
  ): Promise<FileConnection> {
    const page = await ctx.services.files.list(requireViewer(ctx), { program, spec, fileName }, first, after);
    return {
      nodes: await Promise.all(page.files.map((f) => this.withState(ctx, f))),
      pageInfo: { hasNextPage: page.hasNextPage, endCursor: page.endCursor },
      totalCount: page.totalCount,
    };
  }

  @FieldResolver(() => Spec, { nullable: true, description: 'The spec version used.' })
  async spec(@Root() f: FileType, @Ctx() ctx: Context): Promise<Spec | null> {
    const s = f.specId ? await ctx.services.specs.getById(f.specId) : undefined;
    return s ? toSpecType(s) : null;
  }

  @FieldResolver(() => JobType, { nullable: true, description: 'The job that processed it (for a CSV inside a ZIP, the ZIP’s job).' })
  async job(@Root() f: FileType, @Ctx() ctx: Context): Promise<JobType | null> {
    const j = f.jobId ? await ctx.services.jobsStore.get(f.jobId) : undefined;
    return j ? toJobType(j) : null;
  }

  @FieldResolver(() => [FileType], { description: 'CSV files of a ZIP.' })
  async children(@Root() f: FileType, @Ctx() ctx: Context): Promise<FileType[]> {
    if (f.kind !== FileKindEnum.ZIP) return [];
    const { files } = await ctx.services.files.list(requireViewer(ctx), {}, 100, null, f.id);
    return files.map((c) => toFileType(c));
  }

  @FieldResolver(() => RowErrorConnection, { description: 'Invalid rows, by line.' })
  async rowErrors(
    @Root() f: FileType,
    @Arg('first', () => Int, { defaultValue: 100, description: 'Page size, 1-1000.' }) first: number,
    @Arg('after', () => String, { nullable: true, description: 'endCursor of the previous page.' }) after: string | null,
    @Ctx() ctx: Context,
  ): Promise<RowErrorConnection> {
    const page = await ctx.services.files.rowErrors(f as unknown as FileRecord, first, after);
    return { nodes: page.errors, pageInfo: { hasNextPage: page.hasNextPage, endCursor: page.endCursor }, totalCount: page.totalCount };
  }

  @FieldResolver(() => Boolean, { description: 'True once the file reached a final state.' })
  finished(@Root() f: FileType): boolean {
    return f.state === FileState.EXPIRED || (f.state in JobState && isTerminal(f.state as unknown as JobState));
  }
}
