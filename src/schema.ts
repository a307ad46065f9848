import 'reflect-metadata';
import { lexicographicSortSchema, printSchema, type GraphQLSchema } from 'graphql';
import { createPubSub } from '@graphql-yoga/subscription';
import { buildSchema } from 'type-graphql';
import { authChecker } from './server/authorize';
import { ClientsResolver } from './modules/clients/clients.resolver';
import { SystemResolver } from './modules/system/system.resolver';
import { JobsResolver } from './modules/jobs/jobs.resolver';
import { FilesResolver } from './modules/files/files.resolver';
import { SkillsResolver } from './modules/skills/skills.resolver';
import { SignedUploadsResolver } from './modules/signed-uploads/signed-uploads.resolver';
import { SpecsResolver } from './modules/specs/specs.resolver';
import { DirectoryResolver } from './modules/directory/directory.resolver';
import { WebhooksResolver } from './modules/webhooks/webhooks.resolver';

export const resolvers = [
  ClientsResolver,
  DirectoryResolver,
  FilesResolver,
  JobsResolver,
  SignedUploadsResolver,
  SkillsResolver,
  SpecsResolver,
  SystemResolver,
  WebhooksResolver,
] as const;

let built: Promise<GraphQLSchema> | undefined;

/** Builds the executable schema once per process (type-graphql metadata is global). */
export function createSchema(): Promise<GraphQLSchema> {
  built ??= buildSchema({
    resolvers: [...resolvers],
    authChecker,
    authMode: 'error',
    validate: false,
    // Required by type-graphql for @Subscription; Sluice's subscriptions use their own `subscribe`
    // functions backed by PostgreSQL LISTEN/NOTIFY, so nothing is published through it.
    pubSub: createPubSub(),
  });
  return built;
}

/** The SDL committed as schema/schema.graphql: sorted so diffs show real changes only. */
export async function printSortedSchema(): Promise<string> {
  return `${printSchema(lexicographicSortSchema(await createSchema()))}\n`;
}
