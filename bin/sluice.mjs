#!/usr/bin/env node
// `sluice ...`: runs the compiled CLI (dist/cli.js, `npm run build`) when it is built from the
// current sources, else the TypeScript through tsx (a checkout being edited, or never built).
// `--version` and `--help` are answered from files, before any of the CLI's modules load.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { distState } from '../scripts/dist-state.mjs';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const args = process.argv.slice(2);
const only = args.length === 1 ? args[0] : undefined;

if (only === '--version' || only === '-V') {
  process.stdout.write(`${JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).version}\n`);
} else {
  const dist = distState(root);
  const helpFile = path.join(root, 'dist', 'cli-help.txt');
  if ((only === '--help' || only === '-h' || only === 'help') && dist.fresh && fs.existsSync(helpFile)) {
    process.stdout.write(fs.readFileSync(helpFile, 'utf8'));
  } else {
    let cli;
    if (dist.fresh) {
      cli = await import(pathToFileURL(path.join(root, 'dist', 'cli.js')).href);
    } else {
      const { register } = await import('tsx/esm/api');
      register();
      cli = await import('../src/cli/main.ts');
    }
    process.exitCode = await cli.main(args);
  }
}
