import type { CsvDialect, CsvDialectOptions } from '../../ingest/csv-dialect';
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import type { FileUpload } from 'graphql-upload-minimal';
import type { Viewer } from '../../shared/auth';
import { decodeTimeCursor, encodeTimeCursor, isUuid, pageOf, paginate, type Page } from '../../shared/cursor';
import {
  BadInputError,
  ConflictError,
  ErrorCode,
  NotFoundError,
  SluiceError,
  PayloadTooLargeError,
  sluiceErrorIn,
  StorageFullError,
  withHttpStatus,
} from '../../shared/errors';
import type { Logger } from '../../shared/logger';
import type { Metrics } from '../../shared/metrics';
import { checkIdempotencyKey } from '../../shared/idempotency';
import { hasRole, Role } from '../../shared/roles';
import { discard } from '../../shared/stream';
import type { CsvPipelineRunner } from '../../ingest/pipeline-thread';
import { HeaderError, MixedLineEndingsError, NotCsvError, RecordTooLargeError, runCsvPipeline, UnsupportedEncodingError } from '../../ingest/csv-pipeline';
import type { RowError } from '../../ingest/row-validator';
import { StorageError, type ObjectStorage, type StorageWriter } from '../../storage/storage';
import type { LoadsDuringUpload, UploadLoad } from './load-during-upload';
import type { Job } from '../../jobs/store';
import type { Tx } from '../../db/tx';
import type { JobState } from '../../jobs/state';
import type { JobsService } from '../jobs/jobs.service';
import { IDENTIFIER_PATTERN } from '../../ingest/identifier';
import type { SpecsService } from '../specs/specs.service';
import type { FileFilter, FileRecord, FilesStore, OnDuplicateContent, OnInvalidRows, RowErrorRecord } from './files.store';
import { checkPolicyAgainst, DEFAULT_HEADER_POLICY, pipelineHeaderOptions, warningsOf, type FileWarning, type HeaderPolicy } from './header-policy';
import { resolveIngestMode, uploadMode, type IngestMode } from './ingest-mode';
import { DiffTimeoutError, type MergeDiff } from './merge.store';
import { queueIngestion } from './queue-ingestion';
import { storageKeys } from '../../storage/keys';
export type { FileRecord } from './files.store';
export { FILE_RECORD_KEYS } from './files.store';

const MAX_PAGE = 100;

export interface ValidationReport {
  valid: boolean;
  header: string[];
  headerProblems: Array<{ code: string; column: string | null; message: string; suggestion: string | null }>;
  headerProblemCount: number;
  total: number;
  validRows: number;
  invalidRows: number;
  empty: boolean;
  errors: Array<RowErrorRecord>;
  warnings: FileWarning[];
  mode: IngestMode;
  /** MERGE: the diff an upload would apply now; null for APPEND or a refused header. */
  diff: MergeDiff | null;
  dialect: CsvDialect | null;
}

export function checkProgram(program: string): void {
  if (!IDENTIFIER_PATTERN.test(program)) {
    throw new BadInputError(`program ${JSON.stringify(program)} must match ${IDENTIFIER_PATTERN.source}`, { field: 'program' });
  }
}

/**
 * What a client is told when storing its multipart upload failed: the upload's own failure (the
 * multipart layer destroyed the stream with a coded error: too large, malformed, stalled), the
 * store's size limit (PAYLOAD_TOO_LARGE, 413) or a full store (STORAGE_FULL, 507); anything else
 * is unexpected and stays as it is (masked by the error formatter).
 */
export function uploadStoreError(err: unknown, tooLargeMessage: string, limitBytes: number): unknown {
  const cause = sluiceErrorIn(err);
  if (cause) return cause;
  if (err instanceof StorageError && err.code === 'PAYLOAD_TOO_LARGE') return withHttpStatus(new PayloadTooLargeError(tooLargeMessage, { limitBytes }), 413);
  if (err instanceof StorageError && err.code === 'STORAGE_FULL') return withHttpStatus(new StorageFullError(), 507);
  return err;
}

/** File rules: store first, then queue; idempotency; visibility; dry runs. */
export class FilesService {
  constructor(
    private readonly store: FilesStore,
    private readonly specs: SpecsService,
    private readonly jobs: JobsService,
    private readonly storage: ObjectStorage,
    private readonly log: Logger,
    private readonly maxFileBytes: number,
    private readonly metrics?: Metrics,
    private readonly opts: { dryRunDiffTimeoutMs?: number; pipeline?: CsvPipelineRunner; loadsDuringUpload?: LoadsDuringUpload } = {},
  ) {}

  private canSee(viewer: Viewer, f: FileRecord): boolean {
    return hasRole(viewer.roles, Role.ADMIN) || f.createdBy === viewer.clientId;
  }

  async get(viewer: Viewer, id: string): Promise<FileRecord> {
    if (!isUuid(id)) throw new NotFoundError('File', id);
    const f = await this.store.get(id);
    if (!f || !this.canSee(viewer, f)) throw new NotFoundError('File', id);
    return f;
  }

  async list(
    viewer: Viewer,
    filter: { program?: string | null; spec?: string | null; fileName?: string | null },
    first: number,
    after?: string | null,
    parentId?: string,
  ) {
    if (!Number.isInteger(first) || first < 1 || first > MAX_PAGE) throw new BadInputError(`first must be 1-${MAX_PAGE}, got ${first}`, { field: 'first' });
    const f: FileFilter = { program: filter.program, fileName: filter.fileName, parentId };
    // Any version of the named spec.
    if (filter.spec) f.specIds = (await this.specs.list({ name: filter.spec })).map((v) => v.id);
    if (!hasRole(viewer.roles, Role.ADMIN)) f.createdBy = viewer.clientId;
    // The page, the total and each file's job state in one statement.
    const { rows, total } = await this.store.page(f, first + 1, after ? decodeTimeCursor(after) : undefined);
    const page: Page<FileRecord> & { jobStates: Map<FileRecord, JobState | null> } = {
      ...pageOf(
        rows.map((r) => r.file),
        first,
        total,
        encodeTimeCursor,
      ),
      jobStates: new Map(rows.map((r) => [r.file, r.jobState])),
    };
    return page;
  }

  /**
   * retryJob's check for a file's ingestion job and a ZIP's (JobsService.guardRetry): a retry
   * loads the file again from its upload into its partition (a ZIP's: makes its CSVs again from
   * the archive), so it is refused (CONFLICT) while corrections have joined rows to the file (to a
   * CSV of the ZIP), or are on their way; the rows would be dropped. Upload the file again
   * instead (a new file, with its own corrections).
   */
  async checkRetry(tx: Tx, job: Job, kind: 'CSV' | 'ZIP'): Promise<void> {
    const fileId = (job.input as { fileId?: unknown } | null)?.fileId;
    if (typeof fileId !== 'string') return;
    const { applied, inFlight } = await this.store.correctionsInEffect(tx, fileId);
    if (applied > 0 || inFlight > 0) {
      throw new ConflictError(
        `${applied > 0 ? `${applied} corrections upload(s) applied` : `${inFlight} corrections upload(s) being applied`} to file ${fileId}${kind === 'ZIP' ? ' (to CSVs of the ZIP)' : ''}; retrying its job would load it again from its upload and drop the corrected rows. Upload the file again instead`,
        { fileId, appliedCorrections: applied, correctionsInFlight: inFlight },
      );
    }
  }

  private checkProgram(program: string): void {
    checkProgram(program);
  }

  private checkIdempotencyKey(key: string | null | undefined): void {
    checkIdempotencyKey(key);
  }

  /**
   * Streams the upload into storage (size and sha256 recorded), with a size cap. `onWriter` sees
   * the writer before the first byte (a load during the upload follows its file).
   */
  private async storeUpload(
    fileId: string,
    upload: FileUpload,
    at: Date,
    onWriter?: (writer: StorageWriter) => void,
  ): Promise<{ key: string; size: number; sha256: string }> {
    const key = storageKeys.raw(fileId, upload.filename, at);
    try {
      return await this.storage.put(key, upload.createReadStream(), { maxBytes: this.maxFileBytes, contentType: upload.mimetype }, onWriter);
    } catch (err) {
      throw uploadStoreError(err, `File ${JSON.stringify(upload.filename)} exceeds the limit of ${this.maxFileBytes} bytes`, this.maxFileBytes);
    }
  }

  /**
   * Stores the raw file first, then creates the file record and its job in one transaction.
   * The same idempotency key from the same client returns the first file and job, untouched.
   */
  async upload(
    viewer: Viewer,
    input: {
      kind: 'CSV' | 'ZIP';
      program: string | null;
      spec: string | null;
      specVersion?: number | null;
      file: Promise<FileUpload>;
      idempotencyKey?: string | null;
      onInvalidRows: OnInvalidRows;
      onDuplicateContent?: OnDuplicateContent;
      headers?: HeaderPolicy;
      mode?: IngestMode | null;
      deleteMissing?: boolean | null;
      dialect?: CsvDialectOptions;
    },
  ): Promise<{ file: FileRecord; job: Job; created: boolean; duplicateOf?: FileRecord }> {
    if (input.program !== null) this.checkProgram(input.program);
    this.checkIdempotencyKey(input.idempotencyKey);
    const upload = await input.file;
    if (/[\u0000-\u001f\u007f]/.test(upload.filename)) {
      await discard(upload.createReadStream());
      throw new BadInputError('The file name must not contain control characters', { field: 'file' });
    }
    const spec = input.spec ? await this.specs.get(input.spec, input.specVersion) : null;
    const headers = input.headers ?? DEFAULT_HEADER_POLICY;
    const compiled = spec ? { ...spec.compiled, name: spec.name } : null;
    let ingest: { mode: IngestMode | null; deleteMissing: boolean };
    try {
      if (compiled) checkPolicyAgainst(compiled, headers);
      ingest = uploadMode(compiled, input.mode, input.deleteMissing);
    } catch (err) {
      await discard(upload.createReadStream());
      throw err;
    }
    if (input.idempotencyKey) {
      const existing = await this.store.byIdempotencyKey(viewer.clientId, input.idempotencyKey);
      if (existing) {
        await discard(upload.createReadStream());
        return { file: existing, job: await this.jobs.get(viewer, existing.jobId!), created: false };
      }
    }
    const fileId = randomUUID();
    const at = new Date();
    // A clean CSV appended to a spec's table may be loaded while it streams (load-during-upload.ts).
    let load: UploadLoad | null = null;
    const loads = this.opts.loadsDuringUpload;
    const follow =
      loads && spec && compiled && input.kind === 'CSV' && ingest.mode !== 'MERGE'
        ? (writer: StorageWriter) => {
            try {
              load = loads.start(writer, {
                fileId,
                table: spec.tableName,
                spec: compiled,
                headers: pipelineHeaderOptions(compiled, headers),
                dialect: input.dialect,
              });
            } catch (err) {
              // Never the upload's failure: its job loads the file (and reports what is wrong).
              this.log.warn({ err, fileId }, 'could not start a load during the upload');
            }
          }
        : undefined;
    let res: Awaited<ReturnType<FilesService['storeAndQueue']>>;
    try {
      res = await this.storeAndQueue(viewer, input, { upload, spec, headers, ingest, fileId, at, follow });
    } catch (err) {
      await (load as UploadLoad | null)?.discard();
      throw err;
    }
    // Not a file after all (a duplicate skipped, an idempotency race): its load goes too.
    if (!res.created) await (load as UploadLoad | null)?.discard();
    return res;
  }

  private async storeAndQueue(
    viewer: Viewer,
    input: Parameters<FilesService['upload']>[1],
    u: {
      upload: FileUpload;
      spec: Awaited<ReturnType<SpecsService['get']>> | null;
      headers: HeaderPolicy;
      ingest: { mode: IngestMode | null; deleteMissing: boolean };
      fileId: string;
      at: Date;
      follow?: (writer: StorageWriter) => void;
    },
  ): Promise<{ file: FileRecord; job: Job; created: boolean; duplicateOf?: FileRecord }> {
    const { upload, spec, headers, ingest, fileId, at } = u;
    const stored = await this.storeUpload(fileId, upload, at, u.follow);
    this.metrics?.observeUpload('multipart', stored.size);
    if (input.onDuplicateContent === 'SKIP') {
      // The SHA-256 is known only once the bytes are stored; a duplicate's copy is removed again.
      const dup = await this.store.findIngestedDuplicate({
        createdBy: viewer.clientId,
        sha256: stored.sha256,
        kind: input.kind,
        specId: spec?.id ?? null,
        program: input.program,
      });
      if (dup) {
        await this.storage.delete(stored.key);
        this.log.info({ duplicateOf: dup.id, sha256: stored.sha256, by: viewer.clientId }, 'duplicate upload skipped');
        return { file: dup, job: await this.jobs.get(viewer, dup.jobId!), created: false, duplicateOf: dup };
      }
    }
    const res = await queueIngestion({ jobs: this.jobs, files: this.store }, viewer, { id: fileId, kind: input.kind, headers }, (tx) =>
      this.store.insert(tx, {
        id: fileId,
        kind: input.kind,
        specId: spec?.id ?? null,
        program: input.program,
        fileName: upload.filename,
        contentType: upload.mimetype ?? null,
        storageKey: stored.key,
        size: stored.size,
        sha256: stored.sha256,
        onInvalidRows: input.onInvalidRows,
        dialect: input.dialect,
        idempotencyKey: input.idempotencyKey ?? null,
        createdBy: viewer.clientId,
        ingestMode: ingest.mode,
        deleteMissing: ingest.deleteMissing,
      }),
    );
    if (!res) {
      // A concurrent request with the same key won; ours is not needed.
      await this.storage.delete(stored.key);
      const winner = (await this.store.byIdempotencyKey(viewer.clientId, input.idempotencyKey!))!;
      return { file: winner, job: await this.jobs.get(viewer, winner.jobId!), created: false };
    }
    this.log.info({ fileId, jobId: res.job.id, size: stored.size, sha256: stored.sha256, by: viewer.clientId }, 'file stored and queued');
    return { ...res, created: true };
  }

  /**
   * A corrected error report for `fileId` (its rows fixed, its `_line` column kept): stored, then
   * ingested by the same job type as an upload, with the parent's spec version; its valid rows
   * join the parent's (see corrections.ts). A correction of a correction corrects the original.
   * Refused (CONFLICT) while the parent has no error report or when it failed as a whole for
   * another reason than every row being invalid (its rows were not kept).
   */
  async uploadCorrections(
    viewer: Viewer,
    input: { fileId: string; file: Promise<FileUpload>; idempotencyKey?: string | null },
  ): Promise<{ file: FileRecord; job: Job; created: boolean }> {
    this.checkIdempotencyKey(input.idempotencyKey);
    const upload = await input.file;
    let parent: FileRecord;
    try {
      if (/[\u0000-\u001f\u007f]/.test(upload.filename)) throw new BadInputError('The file name must not contain control characters', { field: 'file' });
      parent = await this.get(viewer, input.fileId);
      if (parent.correctsFileId) parent = await this.get(viewer, parent.correctsFileId);
      if (parent.kind !== 'CSV' || !parent.specId)
        throw new BadInputError(`File ${parent.id} is a ZIP; correct each of its CSVs (file.children) instead`, { field: 'fileId' });
      if (parent.error && parent.error.code !== 'ALL_ROWS_INVALID') {
        throw new ConflictError(`File ${parent.id} failed as a whole (${parent.error.code}) and kept no row; upload it again instead of correcting it`, {
          fileId: parent.id,
        });
      }
      if (!parent.errorOutputKey)
        throw new ConflictError(`File ${parent.id} has no error report to correct (no invalid rows, or not processed yet)`, { fileId: parent.id });
      if (input.idempotencyKey) {
        const existing = await this.store.byIdempotencyKey(viewer.clientId, input.idempotencyKey);
        if (existing && existing.correctsFileId !== parent.id) {
          throw new ConflictError(`idempotencyKey ${JSON.stringify(input.idempotencyKey)} was used for another upload (file ${existing.id})`, {
            field: 'idempotencyKey',
          });
        }
        if (existing) {
          await discard(upload.createReadStream());
          return { file: existing, job: await this.jobs.get(viewer, existing.jobId!), created: false };
        }
      }
    } catch (err) {
      await discard(upload.createReadStream());
      throw err;
    }
    const fileId = randomUUID();
    const stored = await this.storeUpload(fileId, upload, new Date());
    this.metrics?.observeUpload('multipart', stored.size);
    const parentJobId = parent.jobId;
    const res = await queueIngestion({ jobs: this.jobs, files: this.store }, viewer, { id: fileId, kind: 'CSV' }, async (tx) => {
      // Not while the file itself is being (re)loaded (a retryJob): its reload would drop the
      // corrected rows. The lock keeps a retry from starting until this commits (checkRetry).
      if (parentJobId) await this.jobs.assertSettled(tx, parentJobId, `File ${parent.id} is being loaded again`);
      return this.store.insert(tx, {
        id: fileId,
        kind: 'CSV',
        specId: parent.specId,
        program: parent.program,
        fileName: upload.filename,
        contentType: upload.mimetype ?? null,
        storageKey: stored.key,
        size: stored.size,
        sha256: stored.sha256,
        onInvalidRows: 'SKIP',
        idempotencyKey: input.idempotencyKey ?? null,
        createdBy: viewer.clientId,
        correctsFileId: parent.id,
      });
    }).catch(async (err: unknown) => {
      await this.storage.delete(stored.key).catch(() => undefined);
      throw err;
    });
    if (!res) {
      await this.storage.delete(stored.key);
      const winner = (await this.store.byIdempotencyKey(viewer.clientId, input.idempotencyKey!))!;
      return { file: winner, job: await this.jobs.get(viewer, winner.jobId!), created: false };
    }
    this.log.info({ fileId, parentId: parent.id, jobId: res.job.id, size: stored.size, by: viewer.clientId }, 'corrections stored and queued');
    return { ...res, created: true };
  }

  /** The corrections uploaded for a file, newest first (at most `limit`). */
  corrections(fileId: string, limit: number): Promise<FileRecord[]> {
    return this.store.list({ correctsFileId: fileId }, limit);
  }

  /** The same checks as an ingestion, on a file that is streamed and forgotten: nothing is stored. */
  async validate(
    _viewer: Viewer,
    input: {
      spec: string;
      specVersion?: number | null;
      file: Promise<FileUpload>;
      maxErrors: number;
      headers?: HeaderPolicy;
      mode?: IngestMode | null;
      deleteMissing?: boolean | null;
      dialect?: CsvDialectOptions;
    },
  ): Promise<ValidationReport> {
    if (!Number.isInteger(input.maxErrors) || input.maxErrors < 0 || input.maxErrors > 1000) {
      throw new BadInputError('maxErrors must be 0-1000', { field: 'maxErrors' });
    }
    const spec = await this.specs.get(input.spec, input.specVersion);
    const compiled = { ...spec.compiled, name: spec.name };
    const upload = await input.file;
    let headerOptions;
    let ingest: { mode: IngestMode; deleteMissing: boolean };
    try {
      headerOptions = pipelineHeaderOptions(compiled, input.headers ?? DEFAULT_HEADER_POLICY);
      ingest = resolveIngestMode(compiled, input.mode, input.deleteMissing);
    } catch (err) {
      await discard(upload.createReadStream());
      throw err;
    }
    const errors: RowErrorRecord[] = [];
    const pipeline = this.opts.pipeline ?? runCsvPipeline;
    const run = (copy: Writable, copyFormat?: 'binary') =>
      pipeline(
        upload.createReadStream(),
        compiled,
        {
          copy,
          onInvalid: (row) => {
            row.errors.forEach((e: RowError, idx) => {
              if (errors.length < input.maxErrors) errors.push({ line: row.line, idx, column: e.column ?? null, code: e.code, message: e.message });
            });
          },
        },
        { fileId: '00000000-0000-0000-0000-000000000000', ...headerOptions, dialect: input.dialect, ...(copyFormat ? { copyFormat } : {}) },
      );
    try {
      let diff: MergeDiff | null = null;
      let r: Awaited<ReturnType<typeof run>>;
      if (ingest.mode === 'MERGE') {
        // The rows an upload would COPY, COPYed the same way into a rolled-back transaction.
        const columns = ['_file_id', '_line', ...compiled.columns.map((c) => c.column)];
        const dry = await this.store.dryRunMerge(
          { tableName: spec.tableName, spec: compiled, deleteMissing: ingest.deleteMissing, columns, timeoutMs: this.opts.dryRunDiffTimeoutMs ?? 30_000 },
          (copy) => run(copy, 'binary'),
        );
        r = dry.result;
        if (!r.empty) diff = dry.diff;
      } else {
        r = await run(new Writable({ write: (_c, _e, cb) => cb() }));
      }
      return {
        valid: r.invalid === 0 && !r.empty,
        header: r.header,
        headerProblems: [],
        headerProblemCount: 0,
        total: r.total,
        validRows: r.valid,
        invalidRows: r.invalid,
        empty: r.empty,
        errors,
        warnings: warningsOf(r),
        mode: ingest.mode,
        diff,
        dialect: r.dialect,
      };
    } catch (err) {
      if (err instanceof HeaderError) {
        return {
          valid: false,
          header: [],
          headerProblems: err.problems.map((p) => ({ code: p.code, column: p.column ?? null, message: p.message, suggestion: p.suggestion ?? null })),
          headerProblemCount: err.problemCount,
          total: 0,
          validRows: 0,
          invalidRows: 0,
          empty: false,
          errors: [],
          warnings: [],
          mode: ingest.mode,
          diff: null,
          dialect: null,
        };
      }
      if (err instanceof DiffTimeoutError) {
        throw new SluiceError(
          ErrorCode.REQUEST_TIMEOUT,
          `${err.message} (SLUICE_DRY_RUN_DIFF_TIMEOUT_MS); nothing was kept. Retry later, or upload without a dry run`,
          {
            reason: 'DIFF_TIMEOUT',
            timeoutMs: err.timeoutMs,
          },
        );
      }
      if (err instanceof NotCsvError || err instanceof UnsupportedEncodingError || err instanceof MixedLineEndingsError || err instanceof RecordTooLargeError) {
        throw new BadInputError(err.message, { field: 'file', reason: err.code });
      }
      throw uploadStoreError(err, `File exceeds the limit of ${this.maxFileBytes} bytes`, this.maxFileBytes);
    }
  }

  async rowErrors(file: FileRecord, first: number, after?: string | null) {
    if (!Number.isInteger(first) || first < 1 || first > 1000) throw new BadInputError('first must be 1-1000', { field: 'first' });
    let cursor: { line: number; idx: number } | undefined;
    if (after) {
      const m = /^(\d+):(\d+)$/.exec(after);
      if (!m) throw new BadInputError(`after ${JSON.stringify(after)} is not a row error cursor`, { field: 'after' });
      cursor = { line: Number(m[1]), idx: Number(m[2]) };
    }
    return paginate({
      first,
      after: cursor,
      fetch: (limit, c) => this.store.rowErrors(file.id, limit, c),
      count: () => this.store.countRowErrors(file.id),
      cursorOf: (e) => `${e.line}:${e.idx}`,
    });
  }
}
