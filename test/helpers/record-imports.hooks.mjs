// Loader hooks of record-imports.mjs (they run on the loader thread).
import fs from 'node:fs';

export async function resolve(specifier, context, nextResolve) {
  const resolved = await nextResolve(specifier, context);
  if (process.env.SLUICE_TEST_IMPORT_LOG) fs.appendFileSync(process.env.SLUICE_TEST_IMPORT_LOG, `${resolved.url}\n`);
  return resolved;
}
