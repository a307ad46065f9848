import { createRequire } from 'node:module';
import path from 'node:path';
import { PACKAGE_ROOT } from './shared/paths';

const require = createRequire(import.meta.url);
export const VERSION: string = (require(path.join(PACKAGE_ROOT, 'package.json')) as { version: string }).version;
