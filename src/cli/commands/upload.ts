import { UploadFileDocument } from '../../sdk/client';
import { formatBytes } from '../../sdk/progress';
import { CSV_INGEST_OPTIONS, CSV_READ_OPTIONS, csvIngestOptions, csvReadOptions, ExitCode, requireString, UsageError, type Command } from '../command';
import { reportFileOutcome, SHOWN_ROW_ERRORS } from '../file-outcome';
import { sendFile } from '../send-file';
import { watchJob } from '../watch-job';

export const upload: Command = {
  name: ['upload'],
  summary: 'Upload a CSV for a state program and spec, then follow its job',
  args: '<file.csv>',
  options: {
    program: { type: 'string', arg: '<program>', description: 'Program name (lower-case identifier); names the output folders. Required' },
    spec: { type: 'string', arg: '<spec>', description: 'Spec name. Required' },
    ...CSV_INGEST_OPTIONS,
    ...CSV_READ_OPTIONS,
    'idempotency-key': { type: 'string', arg: '<key>', description: 'Retrying with the same key returns the first upload and its job' },
    'no-wait': { type: 'boolean', description: 'Print the file and job ids and exit once the upload is stored' },
  },
  help: `
The file streams from disk (memory stays flat). On a terminal a progress bar shows the upload and
then the job (rows, rows per second); otherwise plain lines. When the job ends, the counts and the
first ${SHOWN_ROW_ERRORS} row errors are printed; the full error report is at GET /files/<file-id>/errors.csv.

Exit code: 0 every row valid, 2 some rows invalid (reported), 1 the file or job failed.

Example:
  sluice upload attendance.csv --program attendance --spec attendance`,
  async run(ctx, positionals, options) {
    const [filePath, ...extra] = positionals;
    if (!filePath || extra.length) throw new UsageError('give exactly one file');
    const variables = {
      program: requireString(options, 'program'),
      spec: requireString(options, 'spec'),
      ...csvIngestOptions(options),
      ...csvReadOptions(options),
      idempotencyKey: options['idempotency-key'] as string | undefined,
      file: null,
    };
    const { uploadFile } = await sendFile(ctx, UploadFileDocument, filePath, variables);
    const { file, job } = uploadFile;
    ctx.stderr.write(
      `${uploadFile.created ? 'Stored' : 'Already uploaded with this idempotency key:'} file ${file.id} (${formatBytes(file.size)}, sha256 ${file.sha256}); job ${job.id}\n`,
    );
    if (options['no-wait']) {
      if (ctx.json) ctx.stdout.write(`${JSON.stringify(uploadFile)}\n`);
      else ctx.stdout.write(`file ${file.id}\njob ${job.id}\n`);
      return ExitCode.OK;
    }

    const watched = await watchJob(ctx, job.id, { label: file.fileName });
    return reportFileOutcome(ctx, file.id, watched);
  },
};
