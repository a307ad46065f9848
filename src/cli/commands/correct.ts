import { UploadCorrectionsDocument } from '../../sdk/client';
import { formatBytes } from '../../sdk/progress';
import { UsageError, type Command } from '../command';
import { reportFileOutcome } from '../file-outcome';
import { sendFile } from '../send-file';
import { watchJob } from '../watch-job';

export const correct: Command = {
  name: ['correct'],
  summary: 'Send a corrected error report back to its file (uploadCorrections), then follow its job',
  args: '<file-id> <report.csv>',
  options: {
    'idempotency-key': { type: 'string', arg: '<key>', description: 'Retrying with the same key returns the first corrections upload and its job' },
  },
  help: `
Download the report with \`sluice errors <file-id> -o report.csv\`, fix cells (keep the _line
column; error_description is ignored), then send it back. Rows now valid join the file's rows at
their original lines; still-invalid ones are reported as the corrections file's row errors (its
own report is the next round). A line is applied once: sent again, it is skipped (ALREADY_CORRECTED).

Exit code: 0 every row applied, 2 some rows still invalid or skipped, 1 nothing applied or the job failed.

Example:
  sluice correct 0b5c...e1 report.csv`,
  async run(ctx, positionals, options) {
    const [fileId, filePath, ...extra] = positionals;
    if (!fileId || !filePath || extra.length) throw new UsageError('give a file id and the corrected report');
    const variables = { fileId, idempotencyKey: options['idempotency-key'] as string | undefined, file: null };
    const { uploadCorrections } = await sendFile(ctx, UploadCorrectionsDocument, filePath, variables);
    const { file, job } = uploadCorrections;
    ctx.stderr.write(
      `${uploadCorrections.created ? 'Stored' : 'Already uploaded with this idempotency key:'} corrections ${file.id} for file ${fileId} (${formatBytes(file.size)}); job ${job.id}\n`,
    );
    const watched = await watchJob(ctx, job.id, { label: file.fileName });
    return reportFileOutcome(ctx, file.id, watched);
  },
};
