import { SpecsDocument } from '../../sdk/client';
import { ExitCode, type Command } from '../command';
import { printTable } from '../table';

export const specsList: Command = {
  name: ['specs', 'list'],
  summary: 'List the latest version of every spec, or every version of one',
  options: {
    name: { type: 'string', arg: '<name>', description: 'Only this spec, all its versions' },
  },
  async run(ctx, _positionals, options) {
    const { specs } = await ctx.client().request(SpecsDocument, { name: options['name'] as string | undefined });
    if (ctx.json) {
      ctx.stdout.write(`${JSON.stringify(specs)}\n`);
      return ExitCode.OK;
    }
    const rows = [
      ['NAME', 'VERSION', 'KIND', 'PROGRAM', 'COLUMNS', 'CREATED'],
      ...specs.map((s) => [s.name, String(s.version), s.kind, s.program, String(s.columns.length), s.createdAt]),
    ];
    printTable(ctx.stdout, rows);
    return ExitCode.OK;
  },
};
