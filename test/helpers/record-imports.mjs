// `node --import ./test/helpers/record-imports.mjs ...`: appends the URL of every module the
// program resolves through the ESM loader to the file named by SLUICE_TEST_IMPORT_LOG, so a
// test can assert what a command loads (e.g. that `sluice --version` loads no package).
import { register } from 'node:module';

register('./record-imports.hooks.mjs', import.meta.url);
