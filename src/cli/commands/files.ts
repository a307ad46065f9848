import { FilesDocument } from '../../sdk/client';
import { formatBytes, formatCount } from '../../sdk/progress';
import { ExitCode, pageSize, type Command } from '../command';
import { printTable } from '../table';

export const files: Command = {
  name: ['files'],
  summary: 'List recent files (newest first) with their state and row counts',
  options: {
    program: { type: 'string', arg: '<program>', description: 'Only files of this program' },
    spec: { type: 'string', arg: '<spec>', description: 'Only files of this spec' },
    'file-name': { type: 'string', arg: '<name>', description: 'Only files with this name' },
    limit: { type: 'string', arg: '<n>', description: 'How many (1-100, default 20)' },
  },
  help: `
Example:
  sluice files --spec attendance --limit 5`,
  async run(ctx, _positionals, options) {
    const { files: page } = await ctx.client().request(FilesDocument, {
      program: options['program'] as string | undefined,
      spec: options['spec'] as string | undefined,
      fileName: options['file-name'] as string | undefined,
      first: pageSize(options),
    });
    if (ctx.json) {
      ctx.stdout.write(`${JSON.stringify(page)}\n`);
      return ExitCode.OK;
    }
    const rows = [
      ['ID', 'NAME', 'SPEC', 'STATE', 'SIZE', 'ROWS', 'INVALID', 'CREATED'],
      ...page.nodes.map((f) => [
        f.id,
        f.fileName,
        f.spec ? `${f.spec.name} v${f.spec.version}` : '-',
        f.state,
        formatBytes(f.size),
        f.rows.total === null ? '-' : formatCount(f.rows.total),
        f.rows.invalid === null ? '-' : formatCount(f.rows.invalid),
        f.createdAt,
      ]),
    ];
    printTable(ctx.stdout, rows);
    ctx.stderr.write(`${page.nodes.length} of ${formatCount(page.totalCount)} files\n`);
    return ExitCode.OK;
  },
};
