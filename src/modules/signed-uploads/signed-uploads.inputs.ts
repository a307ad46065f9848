import { GraphQLJSON, GraphQLSafeInt } from 'graphql-scalars';
import { Field, InputType, Int } from 'type-graphql';
import { FileKindEnum, OnInvalidRowsEnum } from '../files/files.type';

@InputType({ description: 'A file to upload through a signed URL: what it is and what it must be (size, SHA-256).' })
export class RequestUploadUrlInput {
  @Field(() => String, { description: 'Name of the file (1-255 characters); kept on the file and used in its storage key.' })
  fileName!: string;

  @Field(() => FileKindEnum, { defaultValue: FileKindEnum.CSV, description: 'CSV (needs program and spec) or a national program ZIP (neither).' })
  kind!: FileKindEnum;

  @Field(() => String, { nullable: true, description: 'Program name (lower-case identifier); names the output folders. CSV only.' })
  program!: string | null;

  @Field(() => String, { nullable: true, description: 'Spec name. CSV only.' })
  spec!: string | null;

  @Field(() => Int, { nullable: true, description: 'Spec version; latest when omitted.' })
  specVersion!: number | null;

  @Field(() => String, { nullable: true, description: 'MIME type the PUT must send; default text/csv (application/zip for ZIP).' })
  contentType!: string | null;

  @Field(() => GraphQLSafeInt, { description: 'Exact size in bytes; at most SLUICE_MAX_FILE_SIZE_BYTES. The upload and the import refuse any other size.' })
  size!: number;

  @Field(() => String, { description: 'SHA-256 of the file, 64 hex characters. The upload and the import refuse any other content.' })
  sha256!: string;

  @Field(() => String, {
    nullable: true,
    description: 'Logical folder, e.g. `2025/district` (storage-key characters). A label for listing; where the bytes are stored does not depend on it.',
  })
  folder!: string | null;

  @Field(() => [String], { nullable: true, description: 'Up to 20 tags of A-Z a-z 0-9 _ . : - (1-64 characters).' })
  tags!: string[] | null;

  @Field(() => GraphQLJSON, { nullable: true, description: 'A JSON object of your own, at most 4096 bytes as JSON.' })
  metadata!: unknown;

  @Field(() => String, { nullable: true, description: 'Retries with the same key get the same file (and URL, while it waits for its bytes).' })
  idempotencyKey!: string | null;

  @Field(() => OnInvalidRowsEnum, { defaultValue: OnInvalidRowsEnum.SKIP, description: 'What invalid rows do to the file.' })
  onInvalidRows!: OnInvalidRowsEnum;
}
