import { CsvDelimiterEnum, CsvEncodingEnum, dialectOptions } from '../files/dialect.type';
import { Arg, Authorized, Ctx, ID, Int, Mutation, Resolver } from 'type-graphql';
import type { Context } from '../../server/context';
import { requireViewer } from '../../server/authorize';
import { Role } from '../../shared/roles';
import { toJobType } from '../jobs/jobs.mapper';
import { GraphQLJSON } from 'graphql-scalars';
import { COLUMN_MAP_ARG, ON_UNKNOWN_COLUMNS_ARG, toFileType, uploadOutcome } from '../files/files.resolver';
import { IngestModeEnum, OnDuplicateContentEnum, OnUnknownColumnsEnum } from '../files/files.type';
import { headerPolicyOf } from '../files/header-policy';
import { RequestUploadUrlInput } from './signed-uploads.inputs';
import { ImportModeEnum, ImportResult, UploadUrlType } from './signed-uploads.type';

@Resolver()
export class SignedUploadsResolver {
  @Authorized(Role.INGESTOR)
  @Mutation(() => UploadUrlType, {
    description:
      'Step 1 of a signed-URL upload: declares the file (size, SHA-256) and returns a URL for one PUT of its bytes, valid for SLUICE_UPLOAD_URL_TTL_SECONDS. Then PUT the bytes (step 2) and call importFile (step 3). Errors carry extensions.reason (see the README).',
  })
  async requestUploadUrl(
    @Arg('input', () => RequestUploadUrlInput, { description: 'The file to upload.' }) input: RequestUploadUrlInput,
    @Ctx() ctx: Context,
  ): Promise<UploadUrlType> {
    const res = await ctx.services.signedUploads.requestUploadUrl(requireViewer(ctx), {
      ...input,
      kind: input.kind,
      onInvalidRows: input.onInvalidRows,
    });
    return {
      fileId: res.file.id,
      url: res.url,
      method: res.method,
      headers: Object.entries(res.headers).map(([name, value]) => ({ name, value })),
      expiresAt: res.expiresAt,
      file: toFileType(res.file),
      created: res.created,
    };
  }

  @Authorized(Role.INGESTOR)
  @Mutation(() => ImportResult, {
    description:
      'Step 3 of a signed-URL upload: checks that the object exists with the declared size and SHA-256, then runs the same ingestion job as uploadFile. Importing again returns the first import’s job.',
  })
  async importFile(
    @Arg('fileId', () => ID, { description: 'fileId from requestUploadUrl.' }) fileId: string,
    @Arg('mode', () => ImportModeEnum, {
      defaultValue: ImportModeEnum.ASYNC,
      description: 'ASYNC returns at once; SYNC waits for the job to finish (up to waitSeconds).',
    })
    mode: ImportModeEnum,
    @Arg('waitSeconds', () => Int, {
      nullable: true,
      description: 'SYNC only: longest wait, in seconds; capped by SLUICE_IMPORT_SYNC_MAX_WAIT_MS, which is also the default.',
    })
    waitSeconds: number | null,
    @Arg('onDuplicateContent', () => OnDuplicateContentEnum, {
      defaultValue: OnDuplicateContentEnum.INGEST,
      description:
        'SKIP: if an earlier file of yours with the same SHA-256 (same kind, spec version and program) ended SUCCEEDED or SUCCEEDED_WITH_ERRORS, return it instead of ingesting again.',
    })
    onDuplicateContent: OnDuplicateContentEnum,
    @Arg('onUnknownColumns', () => OnUnknownColumnsEnum, ON_UNKNOWN_COLUMNS_ARG) onUnknownColumns: OnUnknownColumnsEnum | null,
    @Arg('columnMap', () => GraphQLJSON, COLUMN_MAP_ARG) columnMap: unknown,
    @Arg('ingestMode', () => IngestModeEnum, {
      nullable: true,
      description: 'MERGE or APPEND, as `mode` of uploadFile (for a ZIP, of uploadNationalProgram); named apart from the SYNC/ASYNC mode.',
    })
    ingestMode: IngestModeEnum | null,
    @Arg('deleteMissing', () => Boolean, { defaultValue: false, description: 'MERGE only: the file is a full snapshot (see uploadFile).' })
    deleteMissing: boolean,
    @Arg('encoding', () => CsvEncodingEnum, {
      nullable: true,
      description: 'Encoding of the CSV (of every CSV of a ZIP); detected (UTF-8, or UTF-16 by its BOM) when omitted. Only the first import counts.',
    })
    encoding: CsvEncodingEnum | null,
    @Arg('delimiter', () => CsvDelimiterEnum, {
      nullable: true,
      description: 'Cell delimiter; detected from the header line when omitted. Only the first import counts.',
    })
    delimiter: CsvDelimiterEnum | null,
    @Ctx() ctx: Context,
  ): Promise<ImportResult> {
    const headers = headerPolicyOf(onUnknownColumns, columnMap);
    const dialect = dialectOptions(encoding, delimiter);
    const res = await ctx.services.signedUploads.importFile(
      requireViewer(ctx),
      fileId,
      mode,
      waitSeconds == null ? null : waitSeconds * 1000,
      onDuplicateContent,
      headers,
      { mode: ingestMode, deleteMissing },
      dialect,
    );
    const file = toFileType(res.file, res.job.state);
    return {
      file,
      job: toJobType(res.job),
      created: res.created,
      outcome: uploadOutcome(res),
      duplicateOf: res.duplicateOf ? file : null,
      finished: res.finished,
    };
  }
}
