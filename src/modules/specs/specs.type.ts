import { GraphQLJSON } from 'graphql-scalars';
import { Field, Float, GraphQLISODateTime, ID, Int, ObjectType, registerEnumType } from 'type-graphql';
import { registerCodeEnum } from '../shared/code-enum';
import { SPEC_PROBLEM_CODES, type SpecProblemCode } from './spec.problems';

const SpecProblemCodeEnum = registerCodeEnum(
  SPEC_PROBLEM_CODES,
  'SpecProblemCode',
  'Why a spec was rejected, or what a warning about it says. Stable: clients branch on these.',
);

export enum SpecKindEnum {
  EVENT = 'EVENT',
  DIMENSION = 'DIMENSION',
  DATASET = 'DATASET',
}
registerEnumType(SpecKindEnum, {
  name: 'SpecKind',
  description: 'cQube spec kinds.',
  valuesConfig: {
    EVENT: { description: 'A cQube event spec; its uploads always append.' },
    DIMENSION: { description: 'A cQube dimension spec; with a unique key, uploads merge into its current table by default.' },
    DATASET: { description: 'A cQube dataset spec; its uploads always append.' },
  },
});

/** Defined here (not in files.type.ts, which imports this module) because a spec carries a default. */
export enum OnUnknownColumnsEnum {
  REJECT = 'REJECT',
  IGNORE = 'IGNORE',
}

registerEnumType(OnUnknownColumnsEnum, {
  name: 'OnUnknownColumns',
  description:
    'What header cells that name no spec column (nor an alias, nor a columnMap entry) do to a file. REJECT: a header problem UNKNOWN_COLUMN; the file fails HEADER_INVALID. IGNORE: those columns are not loaded and are listed in the file’s warnings (IGNORED_COLUMNS); required columns are still required.',
  valuesConfig: {
    REJECT: { description: 'A header problem UNKNOWN_COLUMN; the file fails HEADER_INVALID.' },
    IGNORE: { description: 'Those columns are not loaded and are listed in the file’s warnings (IGNORED_COLUMNS); required columns are still required.' },
  },
});

@ObjectType({ description: 'One column of a spec, as compiled.' })
export class SpecColumn {
  @Field(() => String, { description: 'SQL-safe column name in the spec’s table.' })
  column!: string;

  @Field(() => String, { description: 'Name as written in the spec; CSV headers match it (or column) case-insensitively.' })
  sourceName!: string;

  @Field(() => String, { description: 'string, number, integer, boolean or date.' })
  type!: string;

  @Field(() => Boolean, { description: 'Empty values allowed (not shouldNotNull).' })
  nullable!: boolean;

  @Field(() => Boolean, { description: 'The column must be present in the CSV header.' })
  required!: boolean;

  @Field(() => Boolean, { description: 'Part of the spec’s unique key.' })
  unique!: boolean;

  @Field(() => String, { nullable: true, description: 'Date format for date columns.' })
  dateFormat!: string | null;

  @Field(() => [String], { nullable: true, description: 'Allowed values.' })
  enum!: string[] | null;

  @Field(() => Float, { nullable: true, description: 'Smallest allowed number.' })
  minimum!: number | null;

  @Field(() => Float, { nullable: true, description: 'Largest allowed number.' })
  maximum!: number | null;

  @Field(() => Int, { nullable: true, description: 'Shortest allowed string.' })
  minLength!: number | null;

  @Field(() => Int, { nullable: true, description: 'Longest allowed string.' })
  maxLength!: number | null;

  @Field(() => String, { nullable: true, description: 'Regular expression a string must match.' })
  pattern!: string | null;

  @Field(() => [String], {
    description: 'Other header names the column is read from (the spec’s `aliases`, a Sluice extension); matched trimmed, in any letter case.',
  })
  aliases!: string[];
}

@ObjectType({ description: 'A registered dataset schema version.' })
export class Spec {
  @Field(() => ID, { description: 'Spec version id.' })
  id!: string;

  @Field(() => String, { description: 'Spec name (normalised identifier).' })
  name!: string;

  @Field(() => Int, { description: 'Version, from 1; registering the same name again adds one.' })
  version!: number;

  @Field(() => SpecKindEnum, { description: 'EVENT, DIMENSION or DATASET.' })
  kind!: SpecKindEnum;

  @Field(() => String, { description: 'The spec’s `program`.' })
  program!: string;

  @Field(() => [SpecColumn], { description: 'Columns in order.' })
  columns!: SpecColumn[];

  @Field(() => [String], { description: 'Columns whose values together must be unique within a file.' })
  uniqueKey!: string[];

  @Field(() => OnUnknownColumnsEnum, {
    nullable: true,
    description:
      'The spec’s `onUnknownColumns` (REJECT or IGNORE, a Sluice extension): the default for uploads that do not pass onUnknownColumns. Null: REJECT.',
  })
  onUnknownColumns!: OnUnknownColumnsEnum | null;

  @Field(() => String, { description: 'PostgreSQL table holding this version’s valid rows.' })
  tableName!: string;

  @Field(() => String, {
    nullable: true,
    description:
      'DIMENSION specs with unique columns: the PostgreSQL table of current rows (one per key, the values of the file that last merged it; _file_id, _line, _updated_at say which). Null otherwise.',
  })
  currentTableName!: string | null;

  @Field(() => GraphQLJSON, { description: 'The spec JSON as registered.' })
  raw!: unknown;

  @Field(() => String, { description: 'clientId that registered it.' })
  createdBy!: string;

  @Field(() => GraphQLISODateTime, { description: 'When it was registered.' })
  createdAt!: Date;
}

@ObjectType({ description: 'A problem found in a spec.' })
export class SpecProblemType {
  @Field(() => String, { description: 'Where: a JSON path into the spec.' })
  path!: string;

  @Field(() => SpecProblemCodeEnum, { description: 'Stable code, e.g. REQUIRED_NOT_IN_PROPERTIES.' })
  code!: SpecProblemCode;

  @Field(() => String, { description: 'What is wrong, naming the value and the limit.' })
  message!: string;
}

@ObjectType({ description: 'A registered spec and the warnings (renamed columns) to read.' })
export class RegisterSpecResult {
  @Field(() => Spec, { description: 'The new version.' })
  spec!: Spec;

  @Field(() => [SpecProblemType], { description: 'Non-fatal notes, e.g. a column name that was normalised.' })
  warnings!: SpecProblemType[];
}
