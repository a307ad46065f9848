// Whether dist/ (scripts/build.mjs) is built, and built from the current sources. Shared by the
// build script and bin/sluice.mjs, so the CLI never runs a bundle older than the code beside it.
import fs from 'node:fs';
import path from 'node:path';

/** What dist/ is compiled from, relative to the package root. */
export const DIST_INPUTS = ['src', 'package.json', 'package-lock.json', 'tsconfig.json', 'scripts/build.mjs', 'scripts/dist-state.mjs'];

/** Newest modification time (ms) of `p` or anything under it; 0 when it does not exist. */
export function newestMtime(p) {
  let st;
  try {
    st = fs.statSync(p);
  } catch {
    return 0;
  }
  if (!st.isDirectory()) return st.mtimeMs;
  return Math.max(st.mtimeMs, ...fs.readdirSync(p).map((n) => newestMtime(path.join(p, n))));
}

/**
 * `built`: dist/ holds a complete build (its stamp is written last). `fresh`: no input is newer
 * than that build; an install without src/ (a container image) counts as fresh.
 */
export function distState(root) {
  const stamp = path.join(root, 'dist', '.build-stamp');
  const builtAt = fs.existsSync(stamp) ? fs.statSync(stamp).mtimeMs : 0;
  if (!builtAt) return { built: false, fresh: false };
  if (!fs.existsSync(path.join(root, 'src'))) return { built: true, fresh: true };
  return { built: true, fresh: builtAt >= Math.max(...DIST_INPUTS.map((p) => newestMtime(path.join(root, p)))) };
}
