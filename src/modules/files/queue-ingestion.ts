import type postgres from 'postgres';
import type { Viewer } from '../../shared/auth';
import type { Job } from '../../jobs/store';
import type { JobsService } from '../jobs/jobs.service';
import type { FileRecord, FilesStore } from './files.store';
import { policyToJson, type HeaderPolicy } from './header-policy';
import { INGEST_FILE_JOB, INGEST_ZIP_JOB } from './ingestion.job';

/**
 * Queues the ingestion of a stored file, in one transaction: `record` writes the file's row (a
 * direct upload inserts it, a signed-URL import marks it IMPORTED), then the ingestion job is
 * submitted and set on the file, so the row and its job commit together or not at all. Without
 * `headers` (a corrections upload) the job input names the file only. `undefined`, and nothing
 * queued, when `record` wrote no row (another request with the same idempotency key, or another
 * import of the file, came first).
 */
export function queueIngestion(
  deps: { jobs: JobsService; files: FilesStore },
  viewer: Viewer,
  file: { id: string; kind: 'CSV' | 'ZIP'; headers?: HeaderPolicy },
  record: (tx: postgres.TransactionSql) => Promise<FileRecord | undefined>,
): Promise<{ file: FileRecord; job: Job } | undefined> {
  const type = file.kind === 'ZIP' ? INGEST_ZIP_JOB : INGEST_FILE_JOB;
  return deps.jobs.inTransaction(async (tx) => {
    const row = await record(tx);
    if (!row) return undefined;
    const input = file.headers ? { fileId: file.id, headers: policyToJson(file.headers) } : { fileId: file.id };
    const { job } = await deps.jobs.submit(viewer, type, input, { tx });
    await deps.files.setJob(tx, file.id, job.id);
    return { file: { ...row, jobId: job.id }, job };
  });
}
