import '../shared/role.enum';
import { Field, InputType } from 'type-graphql';
import { Role } from '../../shared/roles';

@InputType({ description: 'A client to create.' })
export class CreateClientInput {
  @Field(() => String, { nullable: true, description: 'Wanted id (3-64 of A-Z a-z 0-9 _ . -); generated when omitted.' })
  clientId?: string | null;

  @Field(() => String, { description: 'Human-readable name, 1-200 characters.' })
  name!: string;

  @Field(() => [Role], { description: 'Roles for its tokens; at least one.' })
  roles!: Role[];
}
