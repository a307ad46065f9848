#!/usr/bin/env node
// Builds web/dist (the jobs page and GraphiQL) with Vite when it is missing or older than its
// sources, so `npm start` and `npm test` work from a fresh clone and stay fast afterwards.
// `--force` always builds. Without Vite (an install without dev dependencies) an existing
// web/dist is kept as it is; a missing one is reported and the service serves a 503 there.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { newestMtime as newest } from '../scripts/dist-state.mjs';

const webDir = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.dirname(webDir);
const dist = path.join(webDir, 'dist');
const stamp = path.join(dist, '.build-stamp');
const inputs = [
  path.join(webDir, 'src'),
  path.join(webDir, 'public'),
  path.join(webDir, 'index.html'),
  path.join(webDir, 'graphiql.html'),
  path.join(webDir, 'vite.config.ts'),
  path.join(repoRoot, 'src/sdk'),
  path.join(repoRoot, 'package-lock.json'),
];

const force = process.argv.includes('--force');
const built = fs.existsSync(stamp) ? fs.statSync(stamp).mtimeMs : 0;
if (!force && built >= Math.max(...inputs.map(newest))) {
  console.log('web: web/dist is up to date');
  process.exit(0);
}

let vite;
try {
  vite = await import('vite');
} catch {
  console.warn(
    `web: Vite is not installed (dev dependencies omitted); ${fs.existsSync(dist) ? 'keeping the existing web/dist' : 'the jobs page and GraphiQL are not built'}`,
  );
  process.exit(0);
}
const started = Date.now();
const seconds = () => ((Date.now() - started) / 1000).toFixed(1);
// Why the progress lines: the first build takes several seconds, and a silent `npm start` looks hung.
console.log(
  `web: building the jobs page and GraphiQL into web/dist with Vite (${force ? '--force' : built ? 'sources changed' : 'first build'}; a few seconds)`,
);
let modules = 0;
const ticker = setInterval(() => console.log(`web: still building (${seconds()} s, ${modules} modules)`), 2000);
/** Counts transformed modules and reports each phase (a tiny Vite plugin). */
const progress = {
  name: 'sluice-build-progress',
  transform() {
    modules++;
    return null;
  },
  buildEnd() {
    console.log(`web: ${modules} modules bundled (${seconds()} s); writing files`);
  },
};
try {
  await vite.build({ configFile: path.join(webDir, 'vite.config.ts'), logLevel: 'warn', plugins: [progress] });
} finally {
  clearInterval(ticker);
}
fs.writeFileSync(stamp, `${new Date().toISOString()}\n`);
console.log(`web: built web/dist in ${seconds()} s`);
