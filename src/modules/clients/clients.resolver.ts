import { Arg, Authorized, Ctx, Mutation, Query, Resolver } from 'type-graphql';
import type { Context } from '../../server/context';
import { UnauthenticatedError } from '../../shared/errors';
import { Role } from '../../shared/roles';
import { CreateClientInput } from './clients.inputs';
import { ApiClient, CreatedClient, IssuedTokenType, ViewerType } from './clients.type';

@Resolver()
export class ClientsResolver {
  @Mutation(() => IssuedTokenType, {
    description:
      'Exchanges client credentials for a bearer token. Needs no token. Failed calls are limited per client id and per address (RATE_LIMITED with extensions.retryAfterSeconds).',
  })
  async issueToken(
    @Arg('clientId', () => String, { description: 'The client id.' }) clientId: string,
    @Arg('clientSecret', () => String, { description: 'The client secret.' }) clientSecret: string,
    @Ctx() ctx: Context,
  ): Promise<IssuedTokenType> {
    const issued = await ctx.services.clients.issueToken(clientId, clientSecret, ctx.remoteAddress);
    return { ...issued, tokenType: 'Bearer' };
  }

  @Authorized()
  @Query(() => ViewerType, { description: 'Who the token belongs to.' })
  me(@Ctx() ctx: Context): ViewerType {
    if (!ctx.viewer) throw new UnauthenticatedError();
    return { clientId: ctx.viewer.clientId, roles: ctx.viewer.roles, tokenExpiresAt: new Date(ctx.viewer.exp * 1000) };
  }

  @Authorized(Role.ADMIN)
  @Query(() => [ApiClient], { description: 'All clients, oldest first (ADMIN).' })
  clients(
    @Arg('includeRevoked', () => Boolean, { defaultValue: false, description: 'Also list revoked clients.' }) includeRevoked: boolean,
    @Ctx() ctx: Context,
  ): Promise<ApiClient[]> {
    return ctx.services.clients.list(includeRevoked) as Promise<ApiClient[]>;
  }

  @Authorized(Role.ADMIN)
  @Mutation(() => CreatedClient, { description: 'Creates a client and returns its secret once (ADMIN).' })
  createClient(
    @Arg('input', () => CreateClientInput, { description: 'The client to create.' }) input: CreateClientInput,
    @Ctx() ctx: Context,
  ): Promise<CreatedClient> {
    return ctx.services.clients.createClient(ctx.viewer, input) as Promise<CreatedClient>;
  }

  @Authorized(Role.ADMIN)
  @Mutation(() => ApiClient, { description: 'Revokes a client; its tokens stop working at once (ADMIN). The last active ADMIN cannot be revoked.' })
  revokeClient(@Arg('clientId', () => String, { description: 'The client to revoke.' }) clientId: string, @Ctx() ctx: Context): Promise<ApiClient> {
    if (!ctx.viewer) throw new UnauthenticatedError();
    return ctx.services.clients.revokeClient(ctx.viewer, clientId) as Promise<ApiClient>;
  }
}
