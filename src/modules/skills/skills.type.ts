import { GraphQLJSON } from 'graphql-scalars';
import { Field, GraphQLISODateTime, ID, Int, ObjectType, registerEnumType } from 'type-graphql';
import { Connection } from '../shared/connection';

@ObjectType({ description: 'The competency framework a skill was imported from.' })
export class SkillFramework {
  @Field(() => String, { description: 'Framework CTID (ce-<uuid>).' })
  ctid!: string;

  @Field(() => String, { nullable: true, description: 'Framework name in the preferred language.' })
  name!: string | null;

  @Field(() => String, { nullable: true, description: 'Framework URI on the registry.' })
  uri!: string | null;
}

/** How a competency is aligned to another resource; one value per CTDL-ASN alignment property. */
export enum AlignmentKind {
  EXACT = 'EXACT',
  BROAD = 'BROAD',
  NARROW = 'NARROW',
  MAJOR = 'MAJOR',
  MINOR = 'MINOR',
  PREREQUISITE = 'PREREQUISITE',
}
registerEnumType(AlignmentKind, {
  name: 'AlignmentKind',
  description: 'The CTDL-ASN alignment property a link comes from.',
  valuesConfig: {
    EXACT: { description: 'ceasn:exactAlignment: the same competency elsewhere.' },
    BROAD: { description: 'ceasn:broadAlignment: the target is broader.' },
    NARROW: { description: 'ceasn:narrowAlignment: the target is narrower.' },
    MAJOR: { description: 'ceasn:majorAlignment: a major overlap.' },
    MINOR: { description: 'ceasn:minorAlignment: a minor overlap.' },
    PREREQUISITE: { description: 'ceasn:prerequisiteAlignment: the target is a prerequisite.' },
  },
});

@ObjectType({ description: 'A link from a skill to another competency or resource, as its source published it.' })
export class SkillAlignment {
  @Field(() => AlignmentKind, { description: 'Which alignment property the link comes from.' })
  kind!: AlignmentKind;

  @Field(() => String, { description: 'URI of the aligned resource.' })
  uri!: string;

  @Field(() => String, { nullable: true, description: 'Name of the aligned resource; null where the source document does not name it.' })
  name!: string | null;
}

@ObjectType({ description: 'An occupation a skill is aligned to (ceterms:occupationType), for example an O*NET-SOC code.' })
export class SkillOccupation {
  @Field(() => String, { nullable: true, description: 'The occupation code (ceterms:codedNotation), e.g. 15-1252.00.' })
  code!: string | null;

  @Field(() => String, { nullable: true, description: 'The occupation name (ceterms:targetNodeName).' })
  name!: string | null;

  @Field(() => String, { nullable: true, description: 'The coding framework (ceterms:frameworkName), e.g. O*NET.' })
  framework!: string | null;

  @Field(() => String, { nullable: true, description: 'URI of the occupation (ceterms:targetNode).' })
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

  @Field(() => String, { nullable: true, description: 'Competency category (the first, where ceasn:competencyCategory lists several).' })
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

export const SkillConnection = Connection(SkillType, 'SkillConnection', {
  description: 'A page of skills, newest first.',
  nodes: 'The skills on this page.',
  totalCount: 'Skills matching the filter, on all pages.',
});
export type SkillConnection = InstanceType<typeof SkillConnection>;
