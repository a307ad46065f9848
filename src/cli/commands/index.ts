import type { Command } from '../command';
import { bulk } from './bulk';
import { correct } from './correct';
import { credentialEngineImport } from './credential-engine-import';
import { errors } from './errors';
import { files } from './files';
import { importUrl } from './import-url';
import { jobWatch } from './job-watch';
import { jobs } from './jobs';
import { login } from './login';
import { specsList } from './specs-list';
import { specsRegister } from './specs-register';
import { upload } from './upload';
import { whoami } from './whoami';

/**
 * Every CLI command, in the order `sluice --help` lists them. A new command is one file in this
 * folder exporting a `Command`, plus one line here.
 */
export const commands: Command[] = [
  login,
  whoami,
  specsRegister,
  specsList,
  upload,
  importUrl,
  bulk,
  credentialEngineImport,
  files,
  jobs,
  jobWatch,
  errors,
  correct,
];
