import { Field, ObjectType } from 'type-graphql';

@ObjectType({ description: 'Cursor pagination details.' })
export class PageInfo {
  @Field(() => Boolean, { description: 'More items follow endCursor.' })
  hasNextPage!: boolean;

  @Field(() => String, { nullable: true, description: 'Pass as `after` to get the next page.' })
  endCursor!: string | null;
}
