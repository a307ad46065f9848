import { SpecsDocument } from '../../sdk/client';
import { ExitCode, type Command } from '../command';

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
    const rows = [['NAME', 'VERSION', 'KIND', 'PROGRAM', 'COLUMNS', 'CREATED'], ...specs.map((s) => [s.name, String(s.version), s.kind, s.program, String(s.columns.length), s.createdAt])];
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
    for (const r of rows) ctx.stdout.write(`${r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()}\n`);
    return ExitCode.OK;
  },
};
