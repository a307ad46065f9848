import { BulkUploadDocument, BulkUploadSummaryDocument, type BulkUploadKind, type LocationType } from '../../sdk/client';
import { formatBytes, formatCount } from '../../sdk/progress';
import { type ExitCode, optionalEnum, UsageError, type Command } from '../command';
import { sendFile } from '../send-file';
import { summariseJob, watchJob } from '../watch-job';

const KINDS: readonly BulkUploadKind[] = ['LOCATION', 'ORGANISATION', 'USER'];
const LOCATION_TYPES: readonly LocationType[] = ['STATE', 'DISTRICT', 'BLOCK', 'CLUSTER', 'SCHOOL'];
/** Failed rows printed when the job ends; the rest are in uploadStatus. */
const SHOWN_FAILURES = 5;

export const bulk: Command = {
  name: ['bulk'],
  summary: 'Bulk upload locations, organisations or users from a Sunbird-style CSV, then follow its job',
  args: '<LOCATION|ORGANISATION|USER> <file.csv>',
  options: {
    'location-type': {
      type: 'string',
      arg: '<type>',
      description: `LOCATION only: the type of every row (${LOCATION_TYPES.join(', ')}); or a type column per row`,
    },
    'idempotency-key': { type: 'string', arg: '<key>', description: 'Retrying with the same key returns the first upload and its process' },
  },
  help: `
The file streams from disk with a progress bar; the service checks the header at once (a wrong
header is refused, listing the valid columns), then a job applies the rows one by one. When it
ends, the process status and counts and the first ${SHOWN_FAILURES} failed rows (line, column, code,
message) are printed; every row's result is in the uploadStatus query (processId printed).

Exit code: 0 every row applied, 2 some rows failed (reported), 1 the upload or job failed.

Examples:
  sluice bulk LOCATION states.csv --location-type STATE
  sluice bulk ORGANISATION schools.csv
  sluice bulk USER teachers.csv --idempotency-key teachers-2025-06`,
  async run(ctx, positionals, options) {
    const [kindArg, filePath, ...extra] = positionals;
    if (!kindArg || !filePath || extra.length) throw new UsageError('give the kind (LOCATION, ORGANISATION or USER) and exactly one file');
    const kind = KINDS.find((k) => k === kindArg.toUpperCase());
    if (!kind) throw new UsageError(`the kind must be one of ${KINDS.join(', ')}, got ${JSON.stringify(kindArg)}`);
    const locationType = optionalEnum(options, 'location-type', LOCATION_TYPES);
    if (locationType && kind !== 'LOCATION') throw new UsageError(`--location-type applies to LOCATION uploads only, not ${kind}`);
    const variables = { kind, locationType, idempotencyKey: options['idempotency-key'] as string | undefined, file: null };
    const { bulkUpload } = await sendFile(ctx, BulkUploadDocument, filePath, variables);
    const s = bulkUpload.status;
    ctx.stderr.write(
      `${bulkUpload.created ? 'Stored' : 'Already uploaded with this idempotency key:'} ${s.objectType} upload ${bulkUpload.processId} ` +
        `(${formatBytes(s.size)}, ${formatCount(s.counts.total)} rows); job ${s.job.id}\n`,
    );

    const watched = await watchJob(ctx, s.job.id, { label: s.fileName });
    const { uploadStatus: done } = await ctx.client().request(BulkUploadSummaryDocument, { processId: bulkUpload.processId, firstFailures: SHOWN_FAILURES });
    if (ctx.json) {
      const { failureResult, ...status } = done;
      ctx.stdout.write(`${JSON.stringify({ status, job: watched.job, failures: failureResult.nodes, failureCount: failureResult.totalCount })}\n`);
      return watched.exitCode;
    }
    ctx.stdout.write(`${summariseJob(ctx, watched.job)}\n`);
    const c = done.counts;
    const what = `${done.objectType}${done.locationType ? ` ${done.locationType}` : ''}`;
    ctx.stdout.write(
      `Upload ${done.processId} (${what}) ${done.status}: ${done.message} ` +
        `${formatCount(c.total)} rows, ${formatCount(c.succeeded)} succeeded, ${formatCount(c.failed)} failed\n`,
    );
    const failures = done.failureResult;
    for (const f of failures.nodes)
      ctx.stdout.write(`  line ${f.line}${f.errorColumn ? ` ${f.errorColumn}` : ''}: ${f.errorCode ?? 'ERROR'}: ${f.errorMessage ?? ''}\n`);
    if (failures.totalCount > failures.nodes.length) {
      ctx.stdout.write(`  … and ${formatCount(failures.totalCount - failures.nodes.length)} more (query uploadStatus(processId: "${done.processId}"))\n`);
    }
    return watched.exitCode satisfies ExitCode;
  },
};
