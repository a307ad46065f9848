import { GraphQLJSON } from 'graphql-scalars';
import { Arg, Authorized, Ctx, Int, Mutation, Query, Resolver } from 'type-graphql';
import type { Context } from '../../server/context';
import { requireViewer } from '../../server/authorize';
import { Role } from '../../shared/roles';
import type { SpecRecord } from './specs.service';
import { type OnUnknownColumnsEnum, RegisterSpecResult, Spec, SpecKindEnum } from './specs.type';

/**
 * Each spec record's GraphQL value, made once: a version never changes, and the service keeps the
 * records it has read (SpecsService.getById), so a page of files naming the same spec does not map
 * its columns again for every file (measured: most of a `files` read's spec field).
 */
const specTypes = new WeakMap<SpecRecord, Spec>();

export function toSpecType(s: SpecRecord): Spec {
  let t = specTypes.get(s);
  if (!t) {
    t = {
      ...s,
      kind: s.kind as SpecKindEnum,
      columns: s.compiled.columns.map((c) => ({ ...c, enum: c.enum?.map(String) ?? null, aliases: c.aliases ?? [] })),
      uniqueKey: s.compiled.uniqueKey,
      onUnknownColumns: (s.compiled.onUnknownColumns as OnUnknownColumnsEnum | undefined) ?? null,
    };
    specTypes.set(s, t);
  }
  return t;
}

@Resolver(() => Spec)
export class SpecsResolver {
  @Authorized(Role.ADMIN)
  @Mutation(() => RegisterSpecResult, {
    description:
      'Registers a cQube spec JSON as-is (ADMIN). An existing name gets a new version; old versions stay readable. Each version gets its own typed table.',
  })
  async registerSpec(
    @Arg('kind', () => SpecKindEnum, { description: 'EVENT, DIMENSION or DATASET.' }) kind: SpecKindEnum,
    @Arg('spec', () => GraphQLJSON, { description: 'The spec: { program, input: { type, properties, required } }.' }) spec: unknown,
    @Arg('name', () => String, { nullable: true, description: 'Spec name; defaults to the spec’s program (normalised).' }) name: string | null,
    @Ctx() ctx: Context,
  ): Promise<RegisterSpecResult> {
    const res = await ctx.services.specs.register(requireViewer(ctx), { name, kind, spec });
    return { spec: toSpecType(res.spec), warnings: res.warnings };
  }

  @Authorized(Role.VIEWER)
  @Query(() => [Spec], { description: 'Latest version of every spec, or every version of `name`.' })
  async specs(
    @Arg('name', () => String, { nullable: true, description: 'Only this spec, all versions.' }) name: string | null,
    @Ctx() ctx: Context,
  ): Promise<Spec[]> {
    return (await ctx.services.specs.list({ name })).map(toSpecType);
  }

  @Authorized(Role.VIEWER)
  @Query(() => Spec, { description: 'One spec version (the latest unless `version` is given).' })
  async spec(
    @Arg('name', () => String, { description: 'Spec name.' }) name: string,
    @Arg('version', () => Int, { nullable: true, description: 'Version; latest when omitted.' }) version: number | null,
    @Ctx() ctx: Context,
  ): Promise<Spec> {
    return toSpecType(await ctx.services.specs.get(name, version));
  }
}
