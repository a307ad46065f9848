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
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/helpers/global-setup.ts'],
    setupFiles: ['test/helpers/setup.ts'],
    pool: 'forks',
    // Why two: most of a test file's time is spent waiting on PostgreSQL, child processes and
    // sockets, so two files at once use a 2-core machine fully (one at a time took ~10 minutes).
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Why no retry: a flaky test is a bug to fix, not to hide.
    retry: 0,
    // Under CI a JSON report is written too; .ci/run prints its "N passed, N failed" line.
    reporters: process.env['CI'] ? ['default', 'json'] : ['default'],
    outputFile: { json: 'test-results/vitest.json' },
  },
});
