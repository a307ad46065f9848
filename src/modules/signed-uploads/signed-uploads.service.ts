import type { CsvDialectOptions } from '../../ingest/csv-dialect';
import type { Readable } from 'node:stream';
import type { Viewer } from '../../shared/auth';
import type { Logger } from '../../shared/logger';
import type { Metrics } from '../../shared/metrics';
import type { ObjectStorage } from '../../storage/storage';
import type { Job } from '../../jobs/store';
import type { JobsService } from '../jobs/jobs.service';
import type { SpecsService } from '../specs/specs.service';
import type { FilesService } from '../files/files.service';
import type { FileRecord, FilesStore, OnDuplicateContent } from '../files/files.store';
import type { HeaderPolicy } from '../files/header-policy';
import type { IngestMode } from '../files/ingest-mode';
import { FileImporter, type ImportMode } from './import-file';
import { refreshUploadState, UploadReceiver } from './receive-upload';
import { UploadUrlIssuer, type RequestUploadInput, type UploadUrl } from './request-upload';
import type { SignedUploadsStore } from './signed-uploads.store';
import { UploadSweeper } from './upload-sweeps';
import { UploadUrlSigner } from './upload-token';
import type { SignedUploadsConfig } from './signed-uploads.config';

export type { SignedUploadsConfig } from './signed-uploads.config';

/**
 * The signed-URL flow (replacing the "appfile" system): requestUploadUrl hands out a URL for one
 * PUT (an S3 presigned URL, or Sluice's own HMAC-signed URL), importFile checks the object against
 * the declared size and SHA-256 and queues the same ingestion job as a direct upload, and the
 * sweeps expire files that were never imported and delete upload objects no file refers to.
 */
export class SignedUploadsService {
  private readonly issuer: UploadUrlIssuer;
  private readonly receiver: UploadReceiver;
  private readonly importer: FileImporter;
  private readonly sweeper: UploadSweeper;

  constructor(
    private readonly store: SignedUploadsStore,
    files: FilesService,
    private readonly filesStore: FilesStore,
    specs: SpecsService,
    jobs: JobsService,
    private readonly storage: ObjectStorage,
    log: Logger,
    config: SignedUploadsConfig,
    secret: string,
    metrics?: Metrics,
  ) {
    const signer = new UploadUrlSigner(secret);
    this.issuer = new UploadUrlIssuer(store, filesStore, specs, storage, log, config, signer);
    this.receiver = new UploadReceiver(store, filesStore, storage, log, config, signer);
    this.importer = new FileImporter(store, files, filesStore, specs, jobs, storage, log, config, metrics);
    this.sweeper = new UploadSweeper(store, storage, log, config);
  }

  /** The address the HTTP server listens on, used for Sluice's own URLs when SLUICE_PUBLIC_URL is unset. */
  useListenUrl(url: string): void {
    this.issuer.useListenUrl(url);
  }

  /** See UploadUrlIssuer.requestUploadUrl (request-upload.ts). */
  requestUploadUrl(viewer: Viewer, input: RequestUploadInput): Promise<UploadUrl> {
    return this.issuer.requestUploadUrl(viewer, input);
  }

  /** `PUT /uploads/<fileId>?token=...`: see UploadReceiver.receiveUpload (receive-upload.ts). */
  receiveUpload(fileId: string, token: string | undefined, body: Readable, contentLength: number | undefined, remoteAddress?: string): Promise<FileRecord> {
    return this.receiver.receiveUpload(fileId, token, body, contentLength, remoteAddress);
  }

  /**
   * For `file(id)`: a file waiting for a presigned S3 PUT shows UPLOADED once its object exists
   * (S3 does not tell Sluice when a PUT completes).
   */
  refresh(f: FileRecord): Promise<FileRecord> {
    return refreshUploadState({ store: this.store, filesStore: this.filesStore, storage: this.storage }, f);
  }

  /** See FileImporter.importFile (import-file.ts). */
  importFile(
    viewer: Viewer,
    fileId: string,
    mode: ImportMode,
    waitMs?: number | null,
    onDuplicateContent?: OnDuplicateContent,
    headers?: HeaderPolicy,
    ingest?: { mode?: IngestMode | null; deleteMissing?: boolean | null },
    dialect?: CsvDialectOptions,
  ): Promise<{ file: FileRecord; job: Job; created: boolean; finished: boolean; duplicateOf?: FileRecord }> {
    return this.importer.importFile(viewer, fileId, mode, waitMs, onDuplicateContent, headers, ingest, dialect);
  }

  /** Expires files whose URL ran out more than the grace period ago without an import; deletes their objects. */
  sweepExpired(): Promise<number> {
    return this.sweeper.sweepExpired();
  }

  /** See UploadSweeper.sweepLeftovers (upload-sweeps.ts). */
  sweepLeftovers(): Promise<{ tempFiles: number; folders: number }> {
    return this.sweeper.sweepLeftovers();
  }

  /** Deletes objects under uploads/ that no file refers to; see UploadSweeper.sweepOrphans (upload-sweeps.ts). */
  sweepOrphans(): Promise<number> {
    return this.sweeper.sweepOrphans();
  }
}
