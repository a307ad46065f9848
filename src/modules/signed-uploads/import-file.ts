import type { CsvDialectOptions } from '../../ingest/csv-dialect';
import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Viewer } from '../../shared/auth';
import { BadInputError, ErrorCode } from '../../shared/errors';
import type { Logger } from '../../shared/logger';
import type { Metrics } from '../../shared/metrics';
import { isPresigning, type ObjectStorage } from '../../storage/storage';
import type { FilesService } from '../files/files.service';
import type { FileRecord, FilesStore, OnDuplicateContent } from '../files/files.store';
import { checkPolicyAgainst, DEFAULT_HEADER_POLICY, type HeaderPolicy } from '../files/header-policy';
import { uploadMode, type IngestMode } from '../files/ingest-mode';
import { queueIngestion } from '../files/queue-ingestion';
import { isTerminal } from '../../jobs/state';
import type { Job } from '../../jobs/store';
import type { JobsService } from '../jobs/jobs.service';
import type { SpecsService } from '../specs/specs.service';
import type { SignedUploadsConfig } from './signed-uploads.config';
import type { SignedUploadsStore } from './signed-uploads.store';
import { uploadError, UploadErrorReason } from './upload-errors';

export type ImportMode = 'SYNC' | 'ASYNC';

/** Step 3 of a signed-URL upload: the stored object is checked, then queued for ingestion. */
export class FileImporter {
  constructor(
    private readonly store: SignedUploadsStore,
    private readonly files: FilesService,
    private readonly filesStore: FilesStore,
    private readonly specs: SpecsService,
    private readonly jobs: JobsService,
    private readonly storage: ObjectStorage,
    private readonly log: Logger,
    private readonly config: SignedUploadsConfig,
    private readonly metrics?: Metrics,
  ) {}

  /**
   * Checks the uploaded object against the declared size and SHA-256, then queues the ingestion
   * job (the same one a direct upload gets) in the transaction that marks the file IMPORTED. A
   * second import returns the first one's job. SYNC then waits for the job to finish, at most
   * `waitMs` (capped by SLUICE_IMPORT_SYNC_MAX_WAIT_MS).
   */
  async importFile(
    viewer: Viewer,
    fileId: string,
    mode: ImportMode,
    waitMs?: number | null,
    onDuplicateContent: OnDuplicateContent = 'INGEST',
    headers: HeaderPolicy = DEFAULT_HEADER_POLICY,
    ingest: { mode?: IngestMode | null; deleteMissing?: boolean | null } = {},
    dialect: CsvDialectOptions = {},
  ): Promise<{ file: FileRecord; job: Job; created: boolean; finished: boolean; duplicateOf?: FileRecord }> {
    if (waitMs != null && (!Number.isInteger(waitMs) || waitMs < 0))
      throw new BadInputError('waitSeconds must be a non-negative whole number', { field: 'waitSeconds' });
    const f = await this.files.get(viewer, fileId);
    let job: Job;
    let created = false;
    let duplicateOf: FileRecord | undefined;
    if (f.duplicateOf) {
      // Imported before with SKIP and found to be a duplicate: the same answer again.
      duplicateOf = await this.files.get(viewer, f.duplicateOf);
      job = await this.jobs.get(viewer, duplicateOf.jobId!);
    } else if (f.uploadState === 'IMPORTED') {
      job = await this.jobs.get(viewer, f.jobId!);
    } else {
      const spec = f.specId ? await this.specs.getById(f.specId) : undefined;
      const compiled = spec ? { ...spec.compiled, name: spec.name } : null;
      if (compiled) checkPolicyAgainst(compiled, headers);
      const res = await this.verifyAndQueue(viewer, f, onDuplicateContent, headers, uploadMode(compiled, ingest.mode, ingest.deleteMissing), dialect);
      job = res.job;
      created = res.created;
      duplicateOf = res.duplicateOf;
    }
    if (duplicateOf) return { file: duplicateOf, job, created: false, finished: isTerminal(job.state), duplicateOf };
    if (mode === 'SYNC' && !isTerminal(job.state)) {
      job = await this.waitForJob(viewer, job, Math.min(waitMs ?? this.config.syncMaxWaitMs, this.config.syncMaxWaitMs));
    }
    return { file: (await this.filesStore.get(f.id))!, job, created, finished: isTerminal(job.state) };
  }

  private async verifyAndQueue(
    viewer: Viewer,
    f: FileRecord,
    onDuplicateContent: OnDuplicateContent,
    headers: HeaderPolicy,
    ingest: { mode: IngestMode | null; deleteMissing: boolean },
    dialect: CsvDialectOptions,
  ): Promise<{ job: Job; created: boolean; duplicateOf?: FileRecord }> {
    switch (f.uploadState) {
      case null:
        throw uploadError(
          ErrorCode.CONFLICT,
          UploadErrorReason.NOT_A_SIGNED_UPLOAD,
          `File ${f.id} was uploaded directly and is imported already; see its job`,
          { jobId: f.jobId },
        );
      case 'EXPIRED':
        throw uploadError(ErrorCode.CONFLICT, UploadErrorReason.UPLOAD_URL_EXPIRED, `File ${f.id} expired before it was imported; request a new upload URL`);
      case 'UPLOADING':
        throw uploadError(
          ErrorCode.CONFLICT,
          UploadErrorReason.UPLOAD_IN_PROGRESS,
          `File ${f.id} is still being uploaded; import it when the PUT has finished`,
        );
      default:
        break;
    }
    const key = f.storageKey!;
    const head = await this.storage.head(key);
    if (!head) {
      throw uploadError(
        ErrorCode.CONFLICT,
        UploadErrorReason.NOT_UPLOADED,
        `File ${f.id} has not been uploaded yet: PUT its bytes to the URL from requestUploadUrl (valid until ${f.uploadExpiresAt!.toISOString()}), then import it`,
        { expiresAt: f.uploadExpiresAt!.toISOString() },
      );
    }
    if (head.size !== f.declaredSize) {
      const message = `The uploaded object has ${head.size} bytes, but ${f.declaredSize} bytes were declared; it was deleted: upload the right file to the same URL before it expires, or request a new URL`;
      await this.refuseObject(f, { code: UploadErrorReason.SIZE_MISMATCH, message });
      throw uploadError(ErrorCode.BAD_USER_INPUT, UploadErrorReason.SIZE_MISMATCH, message, { size: head.size, declaredSize: f.declaredSize });
    }
    const sha256 = await this.sha256Of(f, key);
    if (sha256 !== f.declaredSha256) {
      const message = `The uploaded object's SHA-256 is ${sha256}, but ${f.declaredSha256} was declared; it was deleted: upload the right file to the same URL before it expires, or request a new URL`;
      await this.refuseObject(f, { code: UploadErrorReason.CHECKSUM_MISMATCH, message });
      throw uploadError(ErrorCode.BAD_USER_INPUT, UploadErrorReason.CHECKSUM_MISMATCH, message, { sha256, declaredSha256: f.declaredSha256 });
    }
    if (onDuplicateContent === 'SKIP') {
      const dup = await this.filesStore.findIngestedDuplicate({
        createdBy: f.createdBy,
        sha256,
        kind: f.kind,
        specId: f.specId,
        program: f.program,
        excludeId: f.id,
      });
      if (dup && (await this.filesStore.markDuplicate(f.id, dup.id, { size: head.size, sha256 }))) {
        await this.storage.delete(key);
        this.log.info({ fileId: f.id, duplicateOf: dup.id, by: viewer.clientId }, 'duplicate signed upload skipped');
        return { job: await this.jobs.get(viewer, dup.jobId!), created: false, duplicateOf: await this.files.get(viewer, dup.id) };
      }
    }
    const queued = await queueIngestion({ jobs: this.jobs, files: this.filesStore }, viewer, { id: f.id, kind: f.kind, headers }, async (tx) => {
      const imported = await this.store.markImported(tx, f.id, { size: head.size, sha256, ingestMode: ingest.mode, deleteMissing: ingest.deleteMissing });
      if (imported) await this.filesStore.setRequestedDialect(tx, f.id, dialect);
      return imported;
    });
    const job = queued?.job;
    if (job) {
      this.metrics?.observeUpload('signed_url', head.size);
      this.log.info({ fileId: f.id, jobId: job.id, by: viewer.clientId }, 'signed upload imported');
      return { job, created: true };
    }
    // A concurrent import (or the expiry sweep) changed the file between our read and our update.
    const now = (await this.filesStore.get(f.id))!;
    if (now.uploadState === 'IMPORTED') return { job: await this.jobs.get(viewer, now.jobId!), created: false };
    if (now.duplicateOf) {
      const dup = await this.files.get(viewer, now.duplicateOf);
      return { job: await this.jobs.get(viewer, dup.jobId!), created: false, duplicateOf: dup };
    }
    return this.verifyAndQueue(viewer, now, onDuplicateContent, headers, ingest, dialect);
  }

  /**
   * A wrong object is deleted, so the file reads PENDING_UPLOAD (with the reason in `error`) until
   * the right bytes arrive, and nothing unverified lingers in storage.
   */
  private async refuseObject(f: FileRecord, error: { code: string; message: string }): Promise<void> {
    await this.store.recordMismatch(f.id, error);
    await this.storage.delete(f.storageKey!);
    this.log.info({ fileId: f.id, reason: error.code }, 'uploaded object refused');
  }

  /**
   * Sluice's own URL verified the SHA-256 while the bytes arrived (UPLOADED with a sha256); an S3
   * checksum verified by the service is trusted; anything else is read back and hashed (memory
   * stays flat; one extra read of the object).
   */
  private async sha256Of(f: FileRecord, key: string): Promise<string> {
    if (f.uploadState === 'UPLOADED' && f.sha256 && !isPresigning(this.storage)) return f.sha256;
    const verified = isPresigning(this.storage) ? await this.storage.verifiedSha256(key) : undefined;
    if (verified) return verified;
    const hash = createHash('sha256');
    await pipeline(
      await this.storage.get(key),
      new Writable({
        write(chunk: Buffer, _enc, cb) {
          hash.update(chunk);
          cb();
        },
      }),
    );
    return hash.digest('hex');
  }

  private async waitForJob(viewer: Viewer, job: Job, waitMs: number): Promise<Job> {
    if (waitMs <= 0) return job;
    const updates = await this.jobs.watch(viewer, job.id, null);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, waitMs);
    });
    try {
      const finished = (async () => {
        for await (const u of updates) if (isTerminal(u.state)) return;
      })();
      await Promise.race([finished, timeout]);
    } finally {
      clearTimeout(timer);
      await updates.return?.();
    }
    return this.jobs.get(viewer, job.id);
  }
}
