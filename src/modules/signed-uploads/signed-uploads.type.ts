import { Field, GraphQLISODateTime, ID, ObjectType, registerEnumType } from 'type-graphql';
import { JobType } from '../jobs/jobs.type';
import { FileType, UploadOutcome } from '../files/files.type';

export enum ImportModeEnum {
  SYNC = 'SYNC',
  ASYNC = 'ASYNC',
}
registerEnumType(ImportModeEnum, {
  name: 'ImportMode',
  description: 'ASYNC: return as soon as the job is queued. SYNC: wait for the job to finish, up to a bound, then return (finished tells which).',
  valuesConfig: {
    ASYNC: { description: 'Return as soon as the job is queued.' },
    SYNC: { description: 'Wait for the job to finish, up to a bound, then return (finished tells which).' },
  },
});

@ObjectType({ description: 'One HTTP header the upload must send, exactly as given.' })
export class HttpHeader {
  @Field(() => String, { description: 'Header name (lower case).' })
  name!: string;

  @Field(() => String, { description: 'Header value.' })
  value!: string;
}

@ObjectType({ description: 'Where and how to upload the bytes of a requested file.' })
export class UploadUrlType {
  @Field(() => ID, { description: 'The file id: pass it to importFile after the upload.' })
  fileId!: string;

  @Field(() => String, { description: 'Absolute URL for one PUT of the bytes: an S3 presigned URL, or Sluice’s own /uploads/<fileId>?token=… .' })
  url!: string;

  @Field(() => String, { description: 'Always PUT.' })
  method!: string;

  @Field(() => [HttpHeader], { description: 'Headers the PUT must send (they are signed). Content-Length must be the declared size.' })
  headers!: HttpHeader[];

  @Field(() => GraphQLISODateTime, { description: 'The URL accepts no upload after this instant.' })
  expiresAt!: Date;

  @Field(() => FileType, { description: 'The file record (state PENDING_UPLOAD).' })
  file!: FileType;

  @Field(() => Boolean, { description: 'False when the idempotency key returned an earlier request (same file, same expiry).' })
  created!: boolean;
}

@ObjectType({ description: 'An imported file and the job ingesting it.' })
export class ImportResult {
  @Field(() => FileType, { description: 'The file (for SYNC, with its outcome once finished).' })
  file!: FileType;

  @Field(() => JobType, { description: 'The ingestion job; watch it with jobUpdated.' })
  job!: JobType;

  @Field(() => Boolean, {
    description: 'False when the file had been imported before (the first import’s job is returned), or onDuplicateContent: SKIP returned an earlier file.',
  })
  created!: boolean;

  @Field(() => UploadOutcome, { description: 'Why this file and job were returned.' })
  outcome!: UploadOutcome;

  @Field(() => FileType, {
    nullable: true,
    description:
      'With outcome DUPLICATE_CONTENT: the earlier file whose content matched (the same as `file`); the imported file is then EXPIRED with error DUPLICATE_CONTENT and `duplicateOf` set, its object deleted.',
  })
  duplicateOf!: FileType | null;

  @Field(() => Boolean, { description: 'True when the job reached a final state (SYNC within its wait, or already finished).' })
  finished!: boolean;
}
