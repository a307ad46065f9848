import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { FileDocument } from '../../sdk/client';
import { formatBytes } from '../../sdk/progress';
import { formatErrorSummary } from '../error-summary';
import { CliError, ExitCode, UsageError, type Command } from '../command';

export const errors: Command = {
  name: ['errors'],
  summary: "Download a file's error report (its invalid rows with an error_description column)",
  args: '<file-id>',
  options: {
    output: { type: 'string', short: 'o', arg: '<file>', description: 'Write the report to this file (default: standard output)' },
    summary: { type: 'boolean', description: "Print the file's error analytics (counts by code and column, top bad values) instead of the report" },
  },
  help: `
The report streams from the service (GET /files/<file-id>/errors.csv) with the stored token; with
-o it is written to a temporary file beside the target and renamed once complete, so a broken
download never leaves a truncated report.

With --summary, prints the file's error summary instead (with --json, the summary as JSON).

Examples:
  sluice errors 0b5c...e1 -o attendance_errors.csv
  sluice errors 0b5c...e1 --summary`,
  async run(ctx, positionals, options) {
    const [id, ...extra] = positionals;
    if (!id || extra.length) throw new UsageError('give exactly one file id');
    const client = ctx.client();
    if (options['summary']) {
      const { file } = await client.request(FileDocument, { id });
      if (ctx.json) {
        ctx.stdout.write(`${JSON.stringify(file.errorSummary)}\n`);
        return ExitCode.OK;
      }
      if (!file.errorSummary)
        throw new CliError(
          `File ${id} has no error summary (not processed yet, or it failed before its rows were read${file.error ? `: ${file.error.code}` : ''})`,
        );
      for (const line of formatErrorSummary(file.errorSummary)) ctx.stdout.write(`${line}\n`);
      return ExitCode.OK;
    }
    const res = await fetch(`${ctx.url}/files/${encodeURIComponent(id)}/errors.csv`, {
      headers: client.options.token ? { authorization: `Bearer ${client.options.token}` } : {},
    });
    if (!res.ok || !res.body) {
      let message = `HTTP ${res.status}`;
      try {
        const body = (await res.json()) as { errors?: Array<{ message?: string; extensions?: { code?: string } }> };
        const e = body.errors?.[0];
        if (e) message = `${e.extensions?.code ?? 'ERROR'}: ${e.message}`;
      } catch {
        // not JSON: the status says enough
      }
      throw new CliError(`No error report for file ${id}: ${message}`);
    }
    const body = Readable.fromWeb(res.body as unknown as WebReadableStream);
    const target = options['output'] as string | undefined;
    if (!target) {
      const text = new TextDecoder();
      for await (const chunk of body) ctx.stdout.write(text.decode(chunk as Buffer, { stream: true }));
      ctx.stdout.write(text.decode());
      return ExitCode.OK;
    }
    const tmp = path.join(path.dirname(path.resolve(target)), `.${path.basename(target)}.${process.pid}.part`);
    try {
      await pipeline(body, fs.createWriteStream(tmp, { flags: 'wx' }));
      await fs.promises.rename(tmp, target);
    } catch (err) {
      await fs.promises.rm(tmp, { force: true });
      throw new CliError(`Could not write ${target}: ${(err as Error).message}`);
    }
    const { size } = await fs.promises.stat(target);
    ctx.stderr.write(`Wrote ${target} (${formatBytes(size)})\n`);
    return ExitCode.OK;
  },
};
