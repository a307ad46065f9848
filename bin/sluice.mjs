#!/usr/bin/env node
// `npx sluice ...`: the CLI is TypeScript run through tsx, as the service is (no build step).
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
