import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { readZipSafely, ZipError } from '../../ingest/zip';
import type { ObjectStorage } from '../../storage/storage';
import { StorageError } from '../../storage/storage';
import { JobErrorCode, JobFailure } from '../jobs/job-errors';
import type { JobContext, JobHandler, JobOutcome } from '../jobs/job-runner';
import { JobState } from '../jobs/job-state';
import { normaliseIdentifier } from '../specs/spec.identifier';
import type { SpecsStore } from '../specs/specs.store';
import type { FileRecord, FilesStore } from './files.store';
import { INGEST_FILE_JOB, INGEST_ZIP_JOB } from './files.service';
import { ingestCsv, type IngestOutcome } from './ingest';
import { storageKeys } from './storage-keys';

export interface IngestDeps {
  storage: ObjectStorage;
  files: FilesStore;
  specs: SpecsStore;
}

interface FileInput {
  fileId: string;
}

function parseFileInput(raw: unknown): FileInput {
  const id = (raw as { fileId?: unknown } | null)?.fileId;
  if (typeof id !== 'string') throw new JobFailure(JobErrorCode.INVALID_INPUT, 'input.fileId is missing');
  return { fileId: id };
}

/** The job's file, with its size reported as the job's byte total. */
async function loadFile(deps: IngestDeps, ctx: JobContext<FileInput>): Promise<FileRecord> {
  const file = await deps.files.get(ctx.input.fileId);
  if (!file) throw new JobFailure(JobErrorCode.INVALID_INPUT, `File ${ctx.input.fileId} does not exist`);
  ctx.progress({ bytesTotal: file.size });
  return file;
}

async function openRaw(deps: IngestDeps, file: FileRecord) {
  try {
    return await deps.storage.get(file.storageKey!);
  } catch (err) {
    if (err instanceof StorageError && err.code === 'NOT_FOUND') throw new JobFailure(JobErrorCode.FILE_MISSING, `The stored upload of file ${file.id} is missing`);
    throw err;
  }
}

/** Stores a CSV's outcome on its file row and turns it into the job's terminal outcome. */
async function record(deps: IngestDeps, file: FileRecord, o: IngestOutcome): Promise<JobOutcome> {
  const r = o.result;
  await deps.files.setOutcome(undefined, file.id, {
    totalRows: r?.total ?? null,
    validRows: o.failure ? 0 : (r?.valid ?? null),
    invalidRows: r?.invalid ?? null,
    validOutputKey: o.validOutputKey,
    errorOutputKey: o.errorOutputKey,
    error: o.failure,
  });
  const counters = r ? { total: r.total, processed: r.total, succeeded: o.failure ? 0 : r.valid, failed: r.invalid, bytesProcessed: r.bytes } : {};
  if (o.failure) return { state: JobState.FAILED, error: { code: o.failure.code, message: o.failure.message }, counters, result: summary(file, o) };
  if (r!.invalid > 0) {
    return {
      state: JobState.SUCCEEDED_WITH_ERRORS,
      error: { code: JobErrorCode.SOME_ROWS_INVALID, message: `${r!.invalid} of ${r!.total} rows were invalid and skipped; see rowErrors` },
      counters,
      result: summary(file, o),
    };
  }
  return { state: JobState.SUCCEEDED, counters, result: summary(file, o) };
}

/** Records a failure of a file as a whole: no rows, no outputs. */
function failFile(deps: IngestDeps, fileId: string, error: { code: string; message: string }): Promise<void> {
  return deps.files.setOutcome(undefined, fileId, { totalRows: null, validRows: null, invalidRows: null, validOutputKey: null, errorOutputKey: null, error });
}

function summary(file: FileRecord, o: IngestOutcome) {
  return {
    fileId: file.id,
    totalRows: o.result?.total ?? 0,
    validRows: o.failure ? 0 : (o.result?.valid ?? 0),
    invalidRows: o.result?.invalid ?? 0,
    validOutputKey: o.validOutputKey,
    errorOutputKey: o.errorOutputKey,
  };
}

/** A state program's CSV: validated into the spec's table; outputs under process_input/ and ingestion_error/. */
export function ingestFileJob(deps: IngestDeps): JobHandler<FileInput> {
  return {
    type: INGEST_FILE_JOB,
    parseInput: parseFileInput,
    async run(ctx) {
      const file = await loadFile(deps, ctx);
      if (!file.specId) throw new JobFailure(JobErrorCode.INVALID_INPUT, `File ${file.id} has no spec`);
      const spec = (await deps.specs.getById(file.specId))!;
      const at = file.createdAt;
      const outcome = await ingestCsv(
        ctx as JobContext<unknown>,
        deps,
        {
          file,
          spec: { ...spec.compiled, name: spec.name },
          table: spec.tableName,
          validKey: storageKeys.stateValid(file.program!, spec.name, spec.kind, at),
          errorKey: storageKeys.stateErrors(file.program!, file.id, at),
        },
        await openRaw(deps, file),
      );
      return record(deps, file, outcome);
    },
  };
}

/** Child file ids are derived from the ZIP and the entry name, so a retried attempt replaces its rows. */
function childId(parentId: string, entry: string): string {
  const h = createHash('sha256').update(`${parentId}\0${entry}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/**
 * A national program's ZIP: every CSV inside is matched to the spec named like it
 * (`<program>.zip` containing `<program>.csv` is the cQube rule), ingested as a child file,
 * outputs under emission/ and emission-error/. Unsafe archives are refused before any row is read.
 */
export function ingestZipJob(deps: IngestDeps): JobHandler<FileInput> {
  return {
    type: INGEST_ZIP_JOB,
    parseInput: parseFileInput,
    async run(ctx) {
      const zip = await loadFile(deps, ctx);
      const tmpDir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-zip-'));
      const tmp = path.join(tmpDir, 'upload.zip');
      const children: Array<{ name: string; fileId: string; state: 'SUCCEEDED' | 'SUCCEEDED_WITH_ERRORS' | 'FAILED'; error?: string }> = [];
      let rows = { total: 0, valid: 0, invalid: 0 };
      try {
        await pipeline(await openRaw(deps, zip), createWriteStream(tmp));
        await deps.files.deleteChildren(zip.id);
        await readZipSafely(tmp, {}, async (entry) => {
          await ctx.checkpoint();
          const base = path.basename(entry.name).replace(/\.csv$/i, '');
          const program = normaliseIdentifier(base);
          const id = childId(zip.id, entry.name);
          const spec = program ? await deps.specs.get(program) : undefined;
          const child = await deps.files.insertChild(zip, { id, program: program || null, fileName: entry.name, specId: spec?.id ?? null });
          if (!spec) {
            const message = `No spec named ${JSON.stringify(program)} for ${JSON.stringify(entry.name)}; register it or rename the CSV to <spec>.csv`;
            await failFile(deps, id, { code: JobErrorCode.SPEC_NOT_FOUND, message });
            children.push({ name: entry.name, fileId: id, state: 'FAILED', error: message });
            entry.stream.resume();
            return;
          }
          const at = zip.createdAt;
          const outcome = await ingestCsv(ctx as JobContext<unknown>, deps, {
            file: child,
            spec: { ...spec.compiled, name: spec.name },
            table: spec.tableName,
            validKey: storageKeys.nationalValid(entry.name, at),
            errorKey: storageKeys.nationalErrors(program, id, at),
            progressBase: rows,
          }, entry.stream);
          const res = await record(deps, child, outcome);
          rows = { total: rows.total + (outcome.result?.total ?? 0), valid: rows.valid + (outcome.failure ? 0 : (outcome.result?.valid ?? 0)), invalid: rows.invalid + (outcome.result?.invalid ?? 0) };
          ctx.progress({ processed: rows.total, succeeded: rows.valid, failed: rows.invalid });
          children.push({ name: entry.name, fileId: id, state: res.state as 'SUCCEEDED', error: res.error?.message });
        });
      } catch (err) {
        if (err instanceof ZipError) {
          await failFile(deps, zip.id, { code: err.code, message: err.message });
          return { state: JobState.FAILED, error: { code: JobErrorCode.ZIP_REFUSED, message: `${err.code}: ${err.message}` } };
        }
        throw err;
      } finally {
        await fs.rm(tmpDir, { recursive: true, force: true });
      }
      const counters = { total: rows.total, processed: rows.total, succeeded: rows.valid, failed: rows.invalid };
      await deps.files.setOutcome(undefined, zip.id, { totalRows: rows.total, validRows: rows.valid, invalidRows: rows.invalid, validOutputKey: null, errorOutputKey: null, error: null });
      const failed = children.filter((c) => c.state === 'FAILED');
      const result = { files: children };
      if (children.length === 0) {
        return { state: JobState.FAILED, error: { code: JobErrorCode.EMPTY_FILE, message: 'The ZIP contains no CSV file' }, result, counters };
      }
      if (failed.length === children.length) {
        return { state: JobState.FAILED, error: { code: JobErrorCode.SOME_FILES_FAILED, message: `All ${children.length} CSV files failed` }, result, counters };
      }
      if (failed.length > 0 || rows.invalid > 0) {
        return {
          state: JobState.SUCCEEDED_WITH_ERRORS,
          error: failed.length
            ? { code: JobErrorCode.SOME_FILES_FAILED, message: `${failed.length} of ${children.length} CSV files failed` }
            : { code: JobErrorCode.SOME_ROWS_INVALID, message: `${rows.invalid} of ${rows.total} rows were invalid and skipped` },
          result,
          counters,
        };
      }
      return { state: JobState.SUCCEEDED, result, counters };
    },
  };
}
