import type { CsvPipelineRunner } from '../../ingest/pipeline-thread';
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { mergeErrorSummaries, type ErrorSummary } from '../../ingest/error-summary';
import { defaultZipLimits, readZipSafely, ZipError } from '../../ingest/zip';
import { BadInputError } from '../../shared/errors';
import type { ObjectStorage } from '../../storage/storage';
import { StorageError } from '../../storage/storage';
import { checkStoredSize, isCorruptionError, StoredFileStream, verifyingRead, verifyStoredObject, type ExpectedObject } from '../../storage/verify';
import { JobErrorCode, JobFailure, JobStopped } from '../../jobs/errors';
import type { JobContext } from '../../jobs/context';
import type { JobHandler, JobOutcome } from '../../jobs/handler';
import { JobState } from '../../jobs/state';
import { normaliseIdentifier } from '../../ingest/identifier';
import type { CompiledSpec } from '../../ingest/contract';
import type { SpecsStore } from '../specs/specs.store';
import type { FileRecord, FilesStore } from './files.store';
import { pipelineHeaderOptions, policyFromJson, warningsOf, type HeaderPolicy } from './header-policy';
import { clearFileRows } from '../datasets/dataset-tables.store';
import { corruptionMessage, corruptOutcome, ingestCsv, loadPreloaded, type IngestOutcome, type IngestTarget, type JobCopySessions } from './ingestion-load';
import { childMode } from './ingest-mode';
import type { MergeCounts } from './merge.store';
import { storageKeys } from '../../storage/keys';
import { correctionRows, parentLastLine, withSkipped, type CorrectionsTally } from './corrections';
import { CorrectionsFormatError, restoreCorrectedCsv } from '../../ingest/corrections-csv';
import { Readable } from 'node:stream';

/** Job type of a state program's CSV (and of a corrections upload). */
export const INGEST_FILE_JOB = 'cqube.ingest-file';
/** Job type of a national program's ZIP. */
export const INGEST_ZIP_JOB = 'cqube.ingest-national-zip';

export interface IngestDeps {
  storage: ObjectStorage;
  files: FilesStore;
  specs: SpecsStore;
  /** runCsvPipeline, on a worker thread unless SLUICE_PIPELINE_THREADS is off (see pipeline-thread.ts). */
  pipeline: CsvPipelineRunner;
  /** With pipeline threads: a plain append's transaction runs on the thread (ingestion-load.ts ingestCsv). */
  copySessions?: JobCopySessions;
}

interface FileInput {
  fileId: string;
  /** How headers are matched (onUnknownColumns, columnMap), as the upload or importFile asked. */
  headers: HeaderPolicy;
}

function parseFileInput(raw: unknown): FileInput {
  const id = (raw as { fileId?: unknown } | null)?.fileId;
  if (typeof id !== 'string') throw new JobFailure(JobErrorCode.INVALID_INPUT, 'input.fileId is missing');
  const headers = policyFromJson((raw as { headers?: unknown }).headers);
  if (!headers) throw new JobFailure(JobErrorCode.INVALID_INPUT, 'input.headers is not a header policy');
  return { fileId: id, headers };
}

/**
 * The pipeline's header options for one CSV, or the file failure when the columnMap cannot serve
 * its spec (two headers mapped to one of its columns: a ZIP's map is only checked per CSV).
 */
function headerOptionsFor(spec: CompiledSpec, headers: HeaderPolicy, inZip: boolean): { options: IngestTarget['headers'] } | { failure: IngestOutcome } {
  try {
    return { options: pipelineHeaderOptions(spec, headers, { inZip }) };
  } catch (err) {
    if (!(err instanceof BadInputError)) throw err;
    return {
      failure: {
        result: null,
        failure: { code: JobErrorCode.HEADER_INVALID, message: `columnMap does not fit spec ${JSON.stringify(spec.name)}: ${err.message}` },
        validOutputKey: null,
        errorOutputKey: null,
      },
    };
  }
}

/** The job's file, with its size reported as the job's byte total. */
async function loadFile(deps: IngestDeps, ctx: JobContext<FileInput>): Promise<FileRecord> {
  const file = await deps.files.get(ctx.input.fileId);
  if (!file) throw new JobFailure(JobErrorCode.INVALID_INPUT, `File ${ctx.input.fileId} does not exist`);
  ctx.progress({ bytesTotal: file.size });
  return file;
}

/** What was recorded about the stored upload when it arrived: what every read is checked against. */
function recorded(file: FileRecord): ExpectedObject {
  return { size: file.size, sha256: file.sha256 };
}

/**
 * The stored upload, checked against its record as it is read (see storage/verify.ts): a size
 * that differs fails at once, a SHA-256 that differs fails the stream before its end.
 */
async function openRaw(deps: IngestDeps, file: FileRecord) {
  const key = file.storageKey!;
  try {
    await checkStoredSize(deps.storage, key, recorded(file));
    // A local file is read (and verified) by the CSV pipeline's thread itself when it runs on one.
    if (deps.storage.openFile) return new StoredFileStream(await deps.storage.openFile(key), key, recorded(file));
    return verifyingRead(await deps.storage.get(key), key, recorded(file));
  } catch (err) {
    if (err instanceof StorageError && err.code === 'NOT_FOUND')
      throw new JobFailure(JobErrorCode.FILE_MISSING, `The stored upload of file ${file.id} is missing`);
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
    warnings: warningsOf(o.result),
    errorSummary: o.errorSummary ?? null,
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
    ...(o.merge ? { merge: o.merge } : {}),
  };
}

/** A state program's CSV: validated into the spec's table; outputs under process_input/ and ingestion_error/. */
export function ingestFileJob(deps: IngestDeps): JobHandler<FileInput> {
  return {
    type: INGEST_FILE_JOB,
    parseInput: parseFileInput,
    async run(ctx) {
      const file = await loadFile(deps, ctx);
      if (file.correctsFileId) return ingestCorrections(deps, ctx as JobContext<unknown>, file);
      if (!file.specId) throw new JobFailure(JobErrorCode.INVALID_INPUT, `File ${file.id} has no spec`);
      const spec = (await deps.specs.getById(file.specId))!;
      const at = file.createdAt;
      const compiled = { ...spec.compiled, name: spec.name };
      const headers = headerOptionsFor(compiled, ctx.input.headers, false);
      if ('failure' in headers) return record(deps, file, headers.failure);
      const target = {
        file,
        spec: compiled,
        table: spec.tableName,
        validKey: storageKeys.stateValid(file.program!, spec.name, spec.kind, at),
        errorKey: storageKeys.stateErrors(file.program!, file.id, at),
        headers: headers.options,
        // Files stored before modes existed have none: they append, as they did.
        merge: file.ingestMode === 'MERGE' ? { deleteMissing: file.deleteMissing } : null,
        // A clean file's valid rows are the upload itself (see IngestTarget.input).
        input: file.storageKey && file.size !== null && file.sha256 !== null ? { key: file.storageKey, size: file.size, sha256: file.sha256 } : undefined,
      };
      // Its rows may have been loaded while it was uploaded (see load-during-upload.ts).
      const preloaded = await loadPreloaded(ctx as JobContext<unknown>, deps, target);
      if (preloaded) return record(deps, file, preloaded);
      let input;
      try {
        input = await openRaw(deps, file);
      } catch (err) {
        if (!isCorruptionError(err)) throw err;
        return record(deps, file, await corruptOutcome(ctx as JobContext<unknown>, deps, target, err));
      }
      const outcome = await ingestCsv(
        ctx as JobContext<unknown>,
        deps,
        {
          ...target,
          // A file that failed before its end was read is read again whole to be checked.
          verifyInput: () => (input.verified ? Promise.resolve() : verifyStoredObject(deps.storage, file.storageKey!, recorded(file))),
        },
        input,
      );
      return record(deps, file, outcome);
    },
  };
}

/**
 * A corrections upload (uploadCorrections): the corrected error report is turned back into the
 * parent's CSV shape at the parent's line numbers and goes through the same validation, with the
 * parent's spec version; its valid rows join the parent's rows (see corrections.ts).
 */
async function ingestCorrections(deps: IngestDeps, ctx: JobContext<unknown>, file: FileRecord): Promise<JobOutcome> {
  const parent = await deps.files.get(file.correctsFileId!);
  const spec = parent?.specId ? await deps.specs.getById(parent.specId) : undefined;
  if (!parent || !spec) throw new JobFailure(JobErrorCode.INVALID_INPUT, `File ${file.correctsFileId} to correct does not exist or has no spec`);
  const compiled = { ...spec.compiled, name: spec.name };
  const tally: CorrectionsTally = { applied: 0, already: 0, unknown: 0, duplicate: 0 };
  const target = {
    file,
    spec: compiled,
    table: spec.tableName,
    validKey: null,
    errorKey: storageKeys.stateErrors(parent.program ?? spec.name, file.id, file.createdAt),
    rows: correctionRows(parent, file, compiled, tally),
  };
  let input;
  try {
    input = await openRaw(deps, file);
  } catch (err) {
    if (!isCorruptionError(err)) throw err;
    return record(deps, file, await corruptOutcome(ctx, deps, target, err));
  }
  const lastLine = await ctx.fenced((tx) => parentLastLine(tx, spec.tableName, parent.id));
  let outcome: IngestOutcome;
  try {
    outcome = await ingestCsv(
      ctx,
      deps,
      { ...target, verifyInput: () => (input.verified ? Promise.resolve() : verifyStoredObject(deps.storage, file.storageKey!, recorded(file))) },
      Readable.from(restoreCorrectedCsv(input, lastLine)),
    );
  } catch (err) {
    if (!(err instanceof CorrectionsFormatError)) throw err;
    await deps.files.deleteRowErrors(file.id);
    outcome = {
      result: null,
      failure: { code: JobErrorCode.CORRECTIONS_INVALID, message: err.message },
      validOutputKey: null,
      errorOutputKey: null,
      errorSummary: null,
    };
  }
  const r = outcome.result;
  if (r && !outcome.failure) {
    const skipped = tally.already + tally.unknown + tally.duplicate;
    outcome = {
      ...outcome,
      result: { ...r, valid: tally.applied, invalid: r.invalid + skipped },
      errorSummary: withSkipped(outcome.errorSummary, compiled, tally),
    };
    if (tally.applied === 0) outcome.failure = { code: JobErrorCode.ALL_ROWS_INVALID, message: `None of the ${r.total} rows was applied; see rowErrors` };
  }
  return record(deps, file, outcome);
}

/** Child file ids are derived from the ZIP and the entry name, so a retried attempt replaces its rows. */
function childId(parentId: string, entry: string): string {
  const h = createHash('sha256').update(`${parentId}\0${entry}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

type ChildState = 'SUCCEEDED' | 'SUCCEEDED_WITH_ERRORS' | 'FAILED';

/** A CSV of a ZIP that failed alone (no spec, an overlong record): its siblings still run. */
function childFailure(err: JobFailure): IngestOutcome {
  return { result: null, failure: { code: err.code, message: err.message }, validOutputKey: null, errorOutputKey: null };
}

/**
 * A national program's ZIP: every CSV inside is matched to the spec named like it
 * (`<program>.zip` containing `<program>.csv` is the cQube rule), ingested as a child file,
 * outputs under emission/ and emission-error/. The archive is read from storage with its size and
 * SHA-256 checked against the upload's record, and unsafe or corrupt archives are refused before
 * any row is read (see readZipSafely). Every child this attempt creates ends in a final state,
 * whatever stops the job.
 */
export function ingestZipJob(deps: IngestDeps): JobHandler<FileInput> {
  return {
    type: INGEST_ZIP_JOB,
    parseInput: parseFileInput,
    async run(ctx) {
      const zip = await loadFile(deps, ctx);
      const tmpDir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-zip-'));
      const tmp = path.join(tmpDir, 'upload.zip');
      const children: Array<{ name: string; fileId: string; state: ChildState; error?: string; merge?: MergeCounts }> = [];
      // Children created by this attempt whose outcome is not recorded yet.
      const unsettled = new Set<string>();
      let rows = { total: 0, valid: 0, invalid: 0 };
      const summaries: ErrorSummary[] = [];
      try {
        try {
          await pipeline(await openRaw(deps, zip), createWriteStream(tmp));
        } catch (err) {
          if (!isCorruptionError(err)) throw err;
          return await refuseCorruptZip(ctx as JobContext<unknown>, deps, zip, err);
        }
        // What committed attempts merged stays recorded: their children are re-created below.
        const merged = new Map(
          (await deps.files.list({ parentId: zip.id }, defaultZipLimits.maxEntries + 1)).filter((c) => c.merge).map((c) => [c.id, c.merge]),
        );
        await deps.files.deleteChildren(zip.id);
        await readZipSafely(tmp, { signal: ctx.signal }, async (entry) => {
          await ctx.checkpoint();
          const base = path.basename(entry.name).replace(/\.csv$/i, '');
          const program = normaliseIdentifier(base);
          const id = childId(zip.id, entry.name);
          const spec = program ? await deps.specs.get(program) : undefined;
          const mode = spec ? childMode(zip, spec.compiled) : null;
          const child = await deps.files.insertChild(zip, {
            id,
            program: program || null,
            fileName: entry.name,
            specId: spec?.id ?? null,
            ingestMode: mode?.mode ?? null,
            deleteMissing: mode?.deleteMissing ?? false,
            merge: merged.get(id) ?? null,
          });
          unsettled.add(id);
          if (!spec) {
            const message = `No spec named ${JSON.stringify(program)} for ${JSON.stringify(entry.name)}; register it or rename the CSV to <spec>.csv`;
            await failFile(deps, id, { code: JobErrorCode.SPEC_NOT_FOUND, message });
            unsettled.delete(id);
            children.push({ name: entry.name, fileId: id, state: 'FAILED', error: message });
            entry.stream.resume();
            return;
          }
          const at = zip.createdAt;
          const compiled = { ...spec.compiled, name: spec.name };
          const headers = headerOptionsFor(compiled, ctx.input.headers, true);
          let outcome: IngestOutcome;
          if ('failure' in headers) {
            outcome = headers.failure;
            entry.stream.resume();
          } else {
            try {
              outcome = await ingestCsv(
                ctx as JobContext<unknown>,
                deps,
                {
                  file: child,
                  spec: compiled,
                  table: spec.tableName,
                  validKey: storageKeys.nationalValid(entry.name, at),
                  errorKey: storageKeys.nationalErrors(program, id, at),
                  progressBase: rows,
                  headers: headers.options,
                  merge: mode?.mode === 'MERGE' ? { deleteMissing: mode.deleteMissing } : null,
                },
                entry.stream,
              );
            } catch (err) {
              if (!(err instanceof JobFailure)) throw err;
              outcome = childFailure(err);
            }
          }
          const res = await record(deps, child, outcome);
          if (outcome.errorSummary) summaries.push(outcome.errorSummary);
          unsettled.delete(id);
          rows = {
            total: rows.total + (outcome.result?.total ?? 0),
            valid: rows.valid + (outcome.failure ? 0 : (outcome.result?.valid ?? 0)),
            invalid: rows.invalid + (outcome.result?.invalid ?? 0),
          };
          ctx.progress({ processed: rows.total, succeeded: rows.valid, failed: rows.invalid });
          children.push({
            name: entry.name,
            fileId: id,
            state: res.state as ChildState,
            error: res.error?.message,
            ...(outcome.merge ? { merge: outcome.merge } : {}),
          });
        });
      } catch (err) {
        await settleChildren(ctx as JobContext<unknown>, deps, unsettled, err);
        if (err instanceof ZipError) {
          await failFile(deps, zip.id, { code: err.code, message: err.message });
          return { state: JobState.FAILED, error: { code: JobErrorCode.ZIP_REFUSED, message: `${err.code}: ${err.message}` } };
        }
        throw err;
      } finally {
        await fs.rm(tmpDir, { recursive: true, force: true });
      }
      const counters = { total: rows.total, processed: rows.total, succeeded: rows.valid, failed: rows.invalid };
      await deps.files.setOutcome(undefined, zip.id, {
        totalRows: rows.total,
        validRows: rows.valid,
        invalidRows: rows.invalid,
        validOutputKey: null,
        errorOutputKey: null,
        error: null,
        errorSummary: mergeErrorSummaries(summaries),
      });
      const failed = children.filter((c) => c.state === 'FAILED');
      const result = { files: children };
      if (children.length === 0) {
        return { state: JobState.FAILED, error: { code: JobErrorCode.EMPTY_FILE, message: 'The ZIP contains no CSV file' }, result, counters };
      }
      if (failed.length === children.length) {
        return {
          state: JobState.FAILED,
          error: { code: JobErrorCode.SOME_FILES_FAILED, message: `All ${children.length} CSV files failed` },
          result,
          counters,
        };
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

/** The file error a child gets when its ZIP's job ends before the child did (CANCELLED maps to that state). */
function interruptedChildError(ctx: JobContext<unknown>, err: unknown): { code: string; message: string } | undefined {
  const stop = err instanceof JobStopped ? err.reason : ctx.signal.aborted ? ctx.stopped : undefined;
  // Shutdown and reassignment: the next attempt starts over and re-creates the children.
  if (stop === 'fenced' || stop === 'shutdown') return undefined;
  if (stop === 'cancelled') return { code: 'CANCELLED', message: 'The job was cancelled before this file was finished; no row of it was kept' };
  if (err instanceof ZipError)
    return { code: err.code, message: `The archive was refused before this file was finished; no row of it was kept: ${err.message}` };
  if (err instanceof JobFailure) return { code: err.code, message: err.message };
  return { code: JobErrorCode.INTERNAL_ERROR, message: 'The job failed unexpectedly before this file was finished; no row of it was kept' };
}

/**
 * Records a final outcome for every child the job is leaving unfinished, so none shows RUNNING
 * forever. Fenced: a stale attempt cannot overwrite children a newer attempt created. Never
 * masks the error that ended the job.
 */
async function settleChildren(ctx: JobContext<unknown>, deps: IngestDeps, unsettled: Set<string>, err: unknown): Promise<void> {
  const error = unsettled.size > 0 ? interruptedChildError(ctx, err) : undefined;
  if (!error) return;
  try {
    await ctx.fenced(async (tx) => {
      for (const id of unsettled) {
        await deps.files.setOutcome(tx, id, { totalRows: null, validRows: null, invalidRows: null, validOutputKey: null, errorOutputKey: null, error });
      }
    });
  } catch (e) {
    ctx.log.warn({ err: e, children: [...unsettled] }, 'could not record the outcome of unfinished ZIP children');
  }
}

/**
 * A stored ZIP whose bytes are not the ones recorded at upload: refused before it is opened, and
 * what an earlier attempt made of it (children, their rows) is removed, so nothing stays visible.
 */
async function refuseCorruptZip(ctx: JobContext<unknown>, deps: IngestDeps, zip: FileRecord, err: StorageError): Promise<JobOutcome> {
  ctx.log.warn({ fileId: zip.id, key: err.key, reason: err.code, err: err.message }, 'stored upload does not match its record');
  for (const child of await deps.files.list({ parentId: zip.id }, defaultZipLimits.maxEntries + 1)) {
    const spec = child.specId ? await deps.specs.getById(child.specId) : undefined;
    if (spec) await ctx.fenced((tx) => clearFileRows(tx, spec.tableName, child.id));
  }
  await deps.files.deleteChildren(zip.id);
  const message = corruptionMessage(zip.id, err, 'it was not read');
  await failFile(deps, zip.id, { code: JobErrorCode.STORAGE_CORRUPT, message });
  return { state: JobState.FAILED, error: { code: JobErrorCode.STORAGE_CORRUPT, message } };
}
