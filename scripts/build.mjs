#!/usr/bin/env node
// Compiles the service and the CLI to JavaScript in dist/ with esbuild (the compiler tsx runs on,
// so decorators behave exactly as under `npm run dev` and the tests: experimentalDecorators from
// tsconfig.json, no decorator metadata). Each entry is one ESM bundle of our own code; packages
// stay imports resolved from node_modules at run time.
//
// Builds only when dist/ is missing or older than its inputs (`npm start` runs this first, so
// `npm install && npm start` works on a fresh clone); `--force` always builds. Without esbuild
// an existing dist/ is kept as it is; a missing one is an error. Type errors are
// `npm run typecheck`'s job: esbuild strips types without checking them.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { distState } from './dist-state.mjs';

const repoRoot = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const dist = path.join(repoRoot, 'dist');
/** Entry points, by output name: `dist/<name>.js`. */
const entries = {
  main: 'src/main.ts',
  cli: 'src/cli/main.ts',
  migrate: 'src/tools/migrate.ts',
  // The CSV pipeline's worker thread (src/ingest/pipeline-thread.ts loads it beside the bundle).
  'pipeline-worker': 'src/ingest/pipeline-worker.ts',
  // A load during upload's transaction, which that thread runs over its own connection
  // (src/modules/files/load-session.ts; load-during-upload.ts names it beside the bundle).
  'load-session': 'src/modules/files/load-session.ts',
};

const state = distState(repoRoot);
if (!process.argv.includes('--force') && state.fresh) {
  console.log('build: dist/ is up to date');
  process.exit(0);
}

let esbuild;
try {
  esbuild = await import('esbuild');
} catch {
  if (state.built) {
    console.warn('build: esbuild is not installed; keeping the existing dist/');
    process.exit(0);
  }
  console.error('build: esbuild is not installed and dist/ is missing; run "npm install" first');
  process.exit(1);
}

/**
 * Moves the finished build `next` to `dist`. Two builds racing (two test files, two terminals)
 * both hold complete builds of the same sources: whichever lands last wins, and neither fails.
 */
function swapInto(next, target, old) {
  try {
    fs.renameSync(target, old);
  } catch (err) {
    if (err.code !== 'ENOENT') throw err;
  }
  try {
    fs.renameSync(next, target);
  } catch (err) {
    if (err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST') throw err;
  }
  fs.rmSync(old, { recursive: true, force: true });
}

const started = Date.now();
// Why a side folder and a swap: a CLI or service starting from dist/ during a rebuild must see the
// old build or the new one, never half of one.
const next = path.join(repoRoot, `.dist-next-${process.pid}`);
fs.rmSync(next, { recursive: true, force: true });
try {
  await esbuild.build({
    absWorkingDir: repoRoot,
    entryPoints: entries,
    outdir: next,
    bundle: true,
    packages: 'external',
    platform: 'node',
    format: 'esm',
    target: 'node20',
    tsconfig: 'tsconfig.json',
    sourcemap: true,
    logLevel: 'warning',
  });
  // `sluice --help` is printed from this file by bin/sluice.mjs, without loading the CLI's modules.
  const cli = await import(pathToFileURL(path.join(next, 'cli.js')).href);
  fs.writeFileSync(path.join(next, 'cli-help.txt'), cli.generalHelp());
  fs.writeFileSync(path.join(next, '.build-stamp'), `${new Date().toISOString()}\n`);
  swapInto(next, dist, path.join(repoRoot, `.dist-old-${process.pid}`));
} finally {
  fs.rmSync(next, { recursive: true, force: true });
}
console.log(
  `build: compiled ${Object.keys(entries)
    .map((n) => `dist/${n}.js`)
    .join(', ')} in ${((Date.now() - started) / 1000).toFixed(1)} s`,
);
