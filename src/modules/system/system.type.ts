import { Field, GraphQLISODateTime, Int, ObjectType } from 'type-graphql';

@ObjectType({ description: 'One beat of the heartbeat subscription.' })
export class Heartbeat {
  @Field(() => Int, { description: 'Beat number, from 1.' })
  seq!: number;

  @Field(() => GraphQLISODateTime, { description: 'Server time of the beat.' })
  at!: Date;
}

@ObjectType({ description: 'What this Sluice process is.' })
export class ServiceInfo {
  @Field(() => String, { description: 'Package version.' })
  version!: string;

  @Field(() => String, { description: 'SLUICE_ROLE of the process that answered: all, api or worker.' })
  role!: string;

  @Field(() => [String], { description: 'Every error code a client can receive in extensions.code.' })
  errorCodes!: string[];
}
