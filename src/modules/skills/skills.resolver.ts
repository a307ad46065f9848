import { Arg, Authorized, Ctx, FieldResolver, ID, Int, Mutation, Query, Resolver, Root } from 'type-graphql';
import type { Context } from '../../server/context';
import { requireViewer } from '../../server/authorize';
import { Role } from '../../shared/roles';
import { toJobType } from '../jobs/jobs.mapper';
import { JobType } from '../jobs/jobs.type';
import { SkillFilter } from './skills.inputs';
import { skillLoader } from './skills.loader';
import { DEFAULT_SKILLS_LIMIT, MAX_SKILLS_PAGE } from './skills.service';
import type { SkillRecord } from './skills.service';
import type { CompetencyDetails } from './ctdl';
import { SkillAlignment, SkillConnection, SkillOccupation, SkillType } from './skills.type';

export function toSkillType(s: SkillRecord): SkillType {
  return {
    ...s,
    uuid: s.id,
    framework: s.frameworkCtid ? { ctid: s.frameworkCtid, name: s.frameworkName, uri: s.frameworkUri } : null,
    removedUpstream: s.removedAt !== null,
  };
}

/** Read from the stored source node, so a field always says exactly what the source published. */
function details(s: SkillType, ctx: Context): CompetencyDetails {
  return ctx.services.skills.details(s.raw);
}

async function load(ctx: Context, ids: string[]): Promise<SkillType[]> {
  const found = await skillLoader(ctx).loadMany(ids);
  return found.filter((s): s is SkillRecord => s !== null && !(s instanceof Error)).map(toSkillType);
}

@Resolver(() => SkillType)
export class SkillsResolver {
  @Authorized(Role.INGESTOR)
  @Mutation(() => JobType, {
    description:
      'Imports Credential Engine competency frameworks into skills. Each entry is a CTID (ce-<uuid>) or a /resources/<ctid> or /graph/<ctid> URL on the configured registry; anything else refuses the whole call, naming the bad entry. Returns the queued job at once; follow it with jobUpdated.',
  })
  async importCredentialEngine(
    @Arg('competencyFrameworks', () => [String], { description: 'Framework CTIDs or registry URLs.' }) competencyFrameworks: string[],
    @Ctx() ctx: Context,
  ): Promise<JobType> {
    return toJobType(await ctx.services.skills.importCredentialEngine(requireViewer(ctx), competencyFrameworks));
  }

  @Authorized(Role.VIEWER)
  @Query(() => [SkillType], {
    description: `Skills newest first with offset pagination, as the replaced skill service served them. limit is capped at ${MAX_SKILLS_PAGE}; skills removed upstream are left out.`,
  })
  async skills(
    @Arg('skip', () => Int, { defaultValue: 0, description: 'Skills to skip, 0 or more.' }) skip: number,
    @Arg('limit', () => Int, { defaultValue: DEFAULT_SKILLS_LIMIT, description: `Skills to return, 1 or more (at most ${MAX_SKILLS_PAGE} are returned).` })
    limit: number,
    @Arg('sourceName', () => String, { nullable: true, description: 'Only skills from this source, e.g. credential_engine.' }) sourceName: string | null,
    @Ctx() ctx: Context,
  ): Promise<SkillType[]> {
    requireViewer(ctx);
    return (await ctx.services.skills.page(skip, limit, { sourceName })).map(toSkillType);
  }

  @Authorized(Role.VIEWER)
  @Query(() => SkillConnection, { description: 'Skills newest first with cursor pagination, filters and a total count.' })
  async skillsConnection(
    @Arg('first', () => Int, { defaultValue: 20, description: `Page size, 1-${MAX_SKILLS_PAGE}.` }) first: number,
    @Arg('after', () => String, { nullable: true, description: 'endCursor of the previous page.' }) after: string | null,
    @Arg('filter', () => SkillFilter, { nullable: true, description: 'Framework, text search, source.' }) filter: SkillFilter | null,
    @Ctx() ctx: Context,
  ): Promise<SkillConnection> {
    requireViewer(ctx);
    const page = await ctx.services.skills.connection(first, after, filter ?? {});
    return { ...page, nodes: page.nodes.map(toSkillType) };
  }

  @Authorized(Role.VIEWER)
  @Query(() => SkillType, { description: 'One skill by id. NOT_FOUND when there is none.' })
  async skill(@Arg('id', () => ID, { description: 'Skill id.' }) id: string, @Ctx() ctx: Context): Promise<SkillType> {
    requireViewer(ctx);
    return toSkillType(await ctx.services.skills.get(id));
  }

  @FieldResolver(() => [String], { description: 'Every competency category (ceasn:competencyCategory), in the preferred language.' })
  categories(@Root() s: SkillType, @Ctx() ctx: Context): string[] {
    return details(s, ctx).categories;
  }

  @FieldResolver(() => [String], { description: 'Authors as published (ceasn:author); empty where the source names none.' })
  author(@Root() s: SkillType, @Ctx() ctx: Context): string[] {
    return details(s, ctx).authors;
  }

  @FieldResolver(() => [String], { description: 'Creators, as agent URIs (ceasn:creator); empty where the source names none.' })
  creator(@Root() s: SkillType, @Ctx() ctx: Context): string[] {
    return details(s, ctx).creators;
  }

  @FieldResolver(() => [SkillAlignment], {
    description:
      'Alignments to other competencies (ceasn:exactAlignment, broadAlignment, narrowAlignment, majorAlignment, minorAlignment, prerequisiteAlignment).',
  })
  alignments(@Root() s: SkillType, @Ctx() ctx: Context): SkillAlignment[] {
    return details(s, ctx).alignments as SkillAlignment[];
  }

  @FieldResolver(() => [SkillOccupation], {
    description: 'Occupations the skill is aligned to (ceterms:occupationType), e.g. O*NET codes; empty where the source gives none.',
  })
  occupations(@Root() s: SkillType, @Ctx() ctx: Context): SkillOccupation[] {
    return details(s, ctx).occupations;
  }

  @FieldResolver(() => SkillType, { nullable: true, description: 'The first parent skill; null at the top of the tree.' })
  async parent(@Root() s: SkillType, @Ctx() ctx: Context): Promise<SkillType | null> {
    return (await load(ctx, s.parentNodes.slice(0, 1)))[0] ?? null;
  }

  @FieldResolver(() => [SkillType], { description: 'All parent skills (a competency may sit under several).' })
  async parents(@Root() s: SkillType, @Ctx() ctx: Context): Promise<SkillType[]> {
    return load(ctx, s.parentNodes);
  }

  @FieldResolver(() => [SkillType], { description: 'Child skills in document order.' })
  async children(@Root() s: SkillType, @Ctx() ctx: Context): Promise<SkillType[]> {
    return (await load(ctx, s.childNodes)).sort((a, b) => a.position - b.position);
  }
}
