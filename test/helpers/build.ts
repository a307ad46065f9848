import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from './process';

/**
 * Runs the production build (scripts/build.mjs, what `npm run build` and `npm start` run) and
 * resolves when dist/ holds a build of the current sources; an up-to-date dist/ is reused.
 */
export async function ensureBuild(): Promise<string> {
  const { stdout } = await promisify(execFile)(process.execPath, [path.join(repoRoot, 'scripts/build.mjs')], { cwd: repoRoot, timeout: 120_000 });
  return stdout;
}
