import fs from 'node:fs/promises';
import path from 'node:path';
import { RegisterSpecDocument, type SpecKind } from '../../sdk/client';
import { CliError, ExitCode, optionalEnum, UsageError, type Command } from '../command';
import { paint } from '../terminal';

const KINDS: readonly SpecKind[] = ['EVENT', 'DIMENSION', 'DATASET'];

/** cQube names spec files `<kind>.<name>.json` (event.teacherspresent.json). */
function kindFromFileName(file: string): SpecKind | undefined {
  const prefix = path.basename(file).split('.')[0]?.toUpperCase();
  return KINDS.find((k) => k === prefix);
}

export const specsRegister: Command = {
  name: ['specs', 'register'],
  summary: 'Register a cQube spec JSON (ADMIN); an existing name gets a new version',
  args: '<file.json>',
  options: {
    kind: { type: 'string', arg: '<kind>', description: 'EVENT, DIMENSION or DATASET (default: from a file named <kind>.<name>.json)' },
    name: { type: 'string', arg: '<name>', description: "Spec name (default: the spec's program)" },
  },
  async run(ctx, positionals, options) {
    const [file, ...extra] = positionals;
    if (!file || extra.length) throw new UsageError('give exactly one spec file');
    const kind = optionalEnum(options, 'kind', KINDS) ?? kindFromFileName(file);
    if (!kind) throw new UsageError(`--kind is required (${KINDS.join(', ')}): the file name ${path.basename(file)} does not start with one`);
    let spec: unknown;
    try {
      spec = JSON.parse(await fs.readFile(file, 'utf8'));
    } catch (err) {
      throw new CliError(`Cannot read ${file}: ${(err as Error).message}`);
    }
    const { registerSpec } = await ctx.client().request(RegisterSpecDocument, { kind, spec, name: options['name'] as string | undefined });
    const s = registerSpec.spec;
    if (ctx.json) {
      ctx.stdout.write(`${JSON.stringify(registerSpec)}\n`);
      return ExitCode.OK;
    }
    ctx.stdout.write(`Registered ${s.name} v${s.version} (${s.kind}, program ${s.program}): table ${s.tableName}, ${s.columns.length} columns\n`);
    for (const w of registerSpec.warnings) ctx.stderr.write(`${paint(ctx.stderr, 'yellow', 'warning:')} ${w.path}: ${w.message} (${w.code})\n`);
    return ExitCode.OK;
  },
};
