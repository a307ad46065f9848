import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The folder holding Sluice's package.json. Why a search instead of a fixed `../..`: the same
 * module runs from `src/shared/` (tsx) and from the bundle in `dist/` (npm run build), at
 * different depths; drizzle/ and web/dist/ sit beside package.json in both cases.
 */
function findPackageRoot(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'drizzle'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`Sluice's package.json (beside drizzle/) not found above ${from}`);
  }
}

export const PACKAGE_ROOT = findPackageRoot(path.dirname(fileURLToPath(import.meta.url)));
