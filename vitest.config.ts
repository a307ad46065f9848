import { createRequire } from 'node:module';
import { defineConfig } from 'vitest/config';

const require = createRequire(import.meta.url);

export default defineConfig({
  resolve: {
    // Why: Node resolves `graphql` to its CommonJS build for every dependency (type-graphql,
    // graphql-ws, Apollo); Vite would pick the .mjs build for our own files, and graphql-js
    // refuses to mix the two ("Cannot use GraphQLObjectType from another module or realm").
    alias: [{ find: /^graphql$/, replacement: require.resolve('graphql') }],
  },
  test: {},
});
