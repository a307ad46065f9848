import { GraphQLJSON } from 'graphql-scalars';
import { Field, GraphQLISODateTime, ID, Int, ObjectType } from 'type-graphql';
import { PageInfo } from '../jobs/jobs.type';

@ObjectType({ description: 'The competency framework a skill was imported from.' })
export class SkillFramework {
  @Field(() => String, { description: 'Framework CTID (ce-<uuid>).' })
  ctid!: string;

  @Field(() => String, { nullable: true, description: 'Framework name in the preferred language.' })
  name!: string | null;

  @Field(() => String, { nullable: true, description: 'Framework URI on the registry.' })
  uri!: string | null;
}

@ObjectType('Skill', { description: 'A skill (competency) with its place in its framework’s tree.' })
export class SkillType {
  @Field(() => ID, { description: 'Skill id (UUID); stable across re-imports.' })
  id!: string;

  @Field(() => String, { description: 'The same UUID as id, under the name the replaced skill service used.' })
  uuid!: string;

  @Field(() => String, { description: 'Competency label, else a short form of its text.' })
  name!: string;

  @Field(() => String, { description: 'Competency text.' })
  description!: string;

  @Field(() => String, { description: 'codedNotation, else the CTID.' })
  referenceId!: string;

  @Field(() => String, { nullable: true, description: 'Credential Engine CTID (ce-<uuid>); re-imports update the skill with the same CTID.' })
  ctid!: string | null;

  @Field(() => [ID], { description: 'Ids of parent skills (empty at the top of a framework).' })
  parentNodes!: string[];

  @Field(() => [ID], { description: 'Ids of child skills.' })
  childNodes!: string[];

  @Field(() => SkillFramework, { nullable: true, description: 'The framework it belongs to.' })
  framework!: SkillFramework | null;

  @Field(() => String, { description: 'URI of the competency at its source.' })
  sourceUri!: string;

  @Field(() => String, { description: 'Where it came from, e.g. credential_engine.' })
  sourceName!: string;

  @Field(() => [String], { description: 'Concept keywords.' })
  keywords!: string[];

  @Field(() => String, { nullable: true, description: 'Competency category.' })
  category!: string | null;

  @Field(() => GraphQLJSON, { description: 'The source node exactly as fetched.' })
  raw!: unknown;

  @Field(() => Int, { description: 'Position of the node in its source document.' })
  position!: number;

  @Field(() => Boolean, { description: 'True when a re-import no longer found it in its framework; kept, not deleted.' })
  removedUpstream!: boolean;

  @Field(() => GraphQLISODateTime, { nullable: true, description: 'When it was found removed upstream.' })
  removedAt!: Date | null;

  @Field(() => ID, { nullable: true, description: 'The import job that last wrote it.' })
  importJobId!: string | null;

  @Field(() => GraphQLISODateTime, { description: 'When it was first imported.' })
  createdAt!: Date;

  @Field(() => GraphQLISODateTime, { description: 'When it was last written.' })
  updatedAt!: Date;
}

@ObjectType({ description: 'A page of skills, newest first.' })
export class SkillConnection {
  @Field(() => [SkillType], { description: 'The skills on this page.' })
  nodes!: SkillType[];

  @Field(() => PageInfo, { description: 'Where the page ends.' })
  pageInfo!: PageInfo;

  @Field(() => Int, { description: 'Skills matching the filter, on all pages.' })
  totalCount!: number;
}
