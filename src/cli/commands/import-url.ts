import path from 'node:path';
import { ImportFileDocument, RequestUploadUrlDocument, type FileKind, type ImportMode } from '../../sdk/client';
import { formatBytes } from '../../sdk/progress';
import { CSV_INGEST_OPTIONS, CSV_READ_OPTIONS, csvIngestOptions, csvReadOptions, optionalEnum, requireString, UsageError, type Command } from '../command';
import { reportFileOutcome, SHOWN_ROW_ERRORS } from '../file-outcome';
import { fileSize, putFile } from '../send-file';
import { sha256File } from '../upload-stream';
import { watchJob } from '../watch-job';

export const importUrl: Command = {
  name: ['import-url'],
  summary: 'Upload a CSV or national program ZIP through a signed upload URL, import it, then follow its job',
  args: '<file.csv|file.zip>',
  options: {
    program: { type: 'string', arg: '<program>', description: 'Program name (lower-case identifier). Required for a CSV; not for a ZIP' },
    spec: { type: 'string', arg: '<spec>', description: 'Spec name. Required for a CSV; not for a ZIP' },
    ...CSV_INGEST_OPTIONS,
    ...CSV_READ_OPTIONS,
    mode: {
      type: 'string',
      arg: 'ASYNC|SYNC',
      description: 'ASYNC: importFile returns once the job is queued (default); SYNC: it waits for the job (bounded by the service)',
    },
    'idempotency-key': { type: 'string', arg: '<key>', description: 'Retrying with the same key gets the same file and URL while it waits for its bytes' },
  },
  help: `
The three steps of a signed-URL upload: the file's size and SHA-256 are computed locally (streamed),
requestUploadUrl declares them and returns a URL (the service's own, or the object store's), the
bytes are PUT there with the headers it names (streamed, with a progress bar), and importFile
checks them and starts the same ingestion job as upload. A file named *.zip is a national program
ZIP (each CSV inside names its spec: no --program or --spec); anything else is a CSV.

When the job ends, the counts and the first ${SHOWN_ROW_ERRORS} row errors are printed, as for upload.

Exit code: 0 every row valid, 2 some rows invalid (reported), 1 the upload, import or job failed.

Examples:
  sluice import-url attendance.csv --program attendance --spec attendance
  sluice import-url national-programs.zip --mode SYNC`,
  async run(ctx, positionals, options) {
    const [filePath, ...extra] = positionals;
    if (!filePath || extra.length) throw new UsageError('give exactly one file');
    const kind: FileKind = path.extname(filePath).toLowerCase() === '.zip' ? 'ZIP' : 'CSV';
    if (kind === 'ZIP' && (options['program'] !== undefined || options['spec'] !== undefined)) {
      throw new UsageError('a national program ZIP takes neither --program nor --spec: each CSV inside names its spec');
    }
    const target = kind === 'CSV' ? { program: requireString(options, 'program'), spec: requireString(options, 'spec') } : {};
    const { specVersion, onInvalidRows } = csvIngestOptions(options);
    const read = csvReadOptions(options);
    const mode = optionalEnum<ImportMode>(options, 'mode', ['ASYNC', 'SYNC']);

    const size = await fileSize(filePath);
    ctx.stderr.write(`Computing the SHA-256 of ${filePath} (${formatBytes(size)})\n`);
    const sha256 = await sha256File(filePath);
    const client = ctx.client();
    const { requestUploadUrl: u } = await client.request(RequestUploadUrlDocument, {
      input: {
        fileName: path.basename(filePath),
        kind,
        ...target,
        specVersion,
        onInvalidRows,
        idempotencyKey: options['idempotency-key'] as string | undefined,
        size,
        sha256,
      },
    });
    ctx.stderr.write(`${u.created ? 'Declared' : 'Already declared with this idempotency key:'} file ${u.fileId}; upload URL valid until ${u.expiresAt}\n`);
    // putFile sets Content-Length from the file itself; every other signed header goes as given.
    const headers = Object.fromEntries(u.headers.filter((h) => h.name.toLowerCase() !== 'content-length').map((h) => [h.name, h.value]));
    await putFile(ctx, u.url, filePath, headers);

    const { importFile } = await client.request(ImportFileDocument, { fileId: u.fileId, mode, ...read });
    ctx.stderr.write(`Imported file ${u.fileId}; job ${importFile.job.id}\n`);
    const watched = await watchJob(ctx, importFile.job.id, { label: path.basename(filePath) });
    return reportFileOutcome(ctx, u.fileId, watched);
  },
};
