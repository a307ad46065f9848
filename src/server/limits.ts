import { ApolloArmor } from '@escape.tech/graphql-armor';
import { NoSchemaIntrospectionCustomRule, type ValidationRule } from 'graphql';
import type { Env } from '../env';

/** Depth, alias, cost and token limits, built once and applied to HTTP and WebSocket alike. */
export function createLimits(env: Env) {
  const armor = new ApolloArmor({
    maxDepth: { n: env.SLUICE_MAX_DEPTH },
    maxAliases: { n: env.SLUICE_MAX_ALIASES },
    // Why flattenFragments: a fragment spread adds no depth to the response, so a selection costs the
    // same written inline or through a fragment (unflattened, the SDK's own UploadStatus cost 6x more).
    costLimit: { maxCost: env.SLUICE_MAX_COST, flattenFragments: true },
    // Token limits go through graphql-js's own parser option (Apollo parseOptions, ws parse()) so
    // syntax errors keep their GRAPHQL_PARSE_FAILED code; armor's version reports them as validation.
    maxTokens: { enabled: false },
    maxDirectives: { n: 50 },
    // Field suggestions leak the schema when introspection is off.
    blockFieldSuggestion: { enabled: !env.SLUICE_INTROSPECTION },
  });
  const protection = armor.protect();
  const validationRules: ValidationRule[] = [...protection.validationRules];
  if (!env.SLUICE_INTROSPECTION) validationRules.push(NoSchemaIntrospectionCustomRule);
  return { plugins: protection.plugins, validationRules, maxTokens: env.SLUICE_MAX_TOKENS };
}

export type Limits = ReturnType<typeof createLimits>;
