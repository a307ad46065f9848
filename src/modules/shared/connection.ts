import { Field, Int, ObjectType, type ClassType } from 'type-graphql';

@ObjectType({ description: 'Cursor pagination details.' })
export class PageInfo {
  @Field(() => Boolean, { description: 'More items follow endCursor.' })
  hasNextPage!: boolean;

  @Field(() => String, { nullable: true, description: 'Pass as `after` to get the next page.' })
  endCursor!: string | null;
}

/** The descriptions of one connection type (every GraphQL field has one). */
export interface ConnectionDescriptions {
  /** Of the type, e.g. 'A page of jobs, newest first.' */
  description: string;
  /** Of `nodes`, e.g. 'The jobs on this page.' */
  nodes: string;
  /** Of `totalCount`, e.g. 'Jobs matching the filter, on all pages.' */
  totalCount: string;
}

/** The shape of every connection: what paginate() returns, with nodes mapped to their GraphQL type. */
export interface ConnectionShape<T> {
  nodes: T[];
  pageInfo: PageInfo;
  totalCount: number;
}

/**
 * A `<name>` GraphQL object type `{ nodes: [node!]!, pageInfo: PageInfo!, totalCount: Int! }`.
 * Use as `export const JobConnection = Connection(JobType, 'JobConnection', {...})` plus
 * `export type JobConnection = InstanceType<typeof JobConnection>`.
 */
export function Connection<T extends object>(node: ClassType<T>, name: string, d: ConnectionDescriptions): ClassType<ConnectionShape<T>> {
  @ObjectType(name, { description: d.description })
  class ConnectionType implements ConnectionShape<T> {
    @Field(() => [node], { description: d.nodes })
    nodes!: T[];

    @Field(() => PageInfo, { description: 'Where the page ends.' })
    pageInfo!: PageInfo;

    @Field(() => Int, { description: d.totalCount })
    totalCount!: number;
  }
  return ConnectionType;
}
