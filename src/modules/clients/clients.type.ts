import '../shared/role.enum';
import { Field, GraphQLISODateTime, ID, ObjectType } from 'type-graphql';
import { Role } from '../../shared/roles';

@ObjectType({ description: 'A machine identity that exchanges its id and secret for a token.' })
export class ApiClient {
  @Field(() => ID, { description: 'Internal id.' })
  id!: string;

  @Field(() => String, { description: 'The id used with issueToken.' })
  clientId!: string;

  @Field(() => String, { description: 'Human-readable name.' })
  name!: string;

  @Field(() => [Role], { description: 'Roles granted to tokens of this client.' })
  roles!: Role[];

  @Field(() => String, { nullable: true, description: 'clientId of the admin that created it; null for the bootstrap admin.' })
  createdBy!: string | null;

  @Field(() => GraphQLISODateTime, { description: 'When the client was created.' })
  createdAt!: Date;

  @Field(() => GraphQLISODateTime, { nullable: true, description: 'When the client was revoked; its tokens stop working at once.' })
  revokedAt!: Date | null;
}

@ObjectType({ description: 'A newly created client and its secret, shown only this once.' })
export class CreatedClient {
  @Field(() => ApiClient, { description: 'The client.' })
  client!: ApiClient;

  @Field(() => String, { description: 'The secret. Store it now: Sluice keeps only a scrypt hash.' })
  clientSecret!: string;
}

@ObjectType('IssuedToken', { description: 'A bearer token for the Authorization header or graphql-ws connectionParams.' })
export class IssuedTokenType {
  @Field(() => String, { description: 'The JWT (HS256).' })
  accessToken!: string;

  @Field(() => String, { description: 'Always "Bearer".' })
  tokenType!: string;

  @Field(() => GraphQLISODateTime, { description: 'When the token stops working.' })
  expiresAt!: Date;

  @Field(() => [Role], { description: 'Roles carried by the token.' })
  roles!: Role[];
}

@ObjectType('Viewer', { description: 'The caller, as identified by its token.' })
export class ViewerType {
  @Field(() => String, { description: 'clientId of the caller.' })
  clientId!: string;

  @Field(() => [Role], { description: 'Roles of the caller.' })
  roles!: Role[];

  @Field(() => GraphQLISODateTime, { description: 'When the caller’s token expires.' })
  tokenExpiresAt!: Date;
}
