import { Field, InputType } from 'type-graphql';

@InputType({ description: 'Which skills to list.' })
export class SkillFilter {
  @Field(() => String, { nullable: true, description: 'Only skills of this framework (CTID, ce-<uuid>).' })
  framework?: string | null;

  @Field(() => String, {
    nullable: true,
    description: 'Case-insensitive text to find in name, description or referenceId (at most 200 characters; % and _ are literal).',
  })
  search?: string | null;

  @Field(() => String, { nullable: true, description: 'Only skills from this source, e.g. credential_engine.' })
  sourceName?: string | null;

  @Field(() => Boolean, { nullable: true, defaultValue: false, description: 'Include skills removed upstream (default false).' })
  includeRemoved?: boolean | null;
}
