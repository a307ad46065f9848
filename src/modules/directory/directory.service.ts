import type { CsvDialectOptions } from '../../ingest/csv-dialect';
import { MixedLineEndingsError, NotCsvError, problemsMessage, RecordTooLargeError, UnsupportedEncodingError } from '../../ingest/csv-pipeline';
import { MAX_PROBLEMS_LISTED } from '../../ingest/row-validator';
import { randomUUID } from 'node:crypto';
import type { FileUpload } from 'graphql-upload-minimal';
import type { Viewer } from '../../shared/auth';
import { isUuid, paginate, type Page } from '../../shared/cursor';
import { BadInputError, NotFoundError, PayloadTooLargeError } from '../../shared/errors';
import type { Logger } from '../../shared/logger';
import type { Metrics } from '../../shared/metrics';
import { hasRole, Role } from '../../shared/roles';
import type { ObjectStorage } from '../../storage/storage';
import { uploadStoreError } from '../files/files.service';
import { checkIdempotencyKey } from '../../shared/idempotency';
import { discard } from '../../shared/stream';
import { storageKeys } from '../../storage/keys';
import type { Job } from '../../jobs/store';
import type { JobsService } from '../jobs/jobs.service';
import { BULK_UPLOAD_JOB } from './bulk-upload.job';
import { BulkKind, parseHeader, validColumnList } from './directory.columns';
import { MalformedCsvError, readCsv } from './directory.csv';
import type { LocationType, OrganisationStatus, UserType } from './rules';
import type { BulkProcess, BulkResult, DirectoryStore, LocationRecord, OrganisationRecord, UserRecord } from './directory.store';
export type { BulkProcess } from './directory.store';

const MAX_PAGE = 1000;

export interface BulkLimits {
  /** Largest accepted bulk upload file, in bytes. */
  maxFileBytes: number;
  /** Most data rows in one bulk upload file. */
  maxRows: number;
}

/** `9876543210` -> `******3210`: enough to recognise, not to use. */
export function maskPhone(phone: string | null): string | null {
  return phone ? `${'*'.repeat(Math.max(0, phone.length - 4))}${phone.slice(-4)}` : phone;
}

/** `vikram.singh@example.org` -> `v***@example.org`. */
export function maskEmail(email: string | null): string | null {
  if (!email) return email;
  const at = email.indexOf('@');
  return at > 0 ? `${email[0]}***${email.slice(at)}` : '***';
}

function checkFirst(first: number, max = MAX_PAGE): void {
  if (!Number.isInteger(first) || first < 1 || first > max) throw new BadInputError(`first must be 1-${max}, got ${first}`, { field: 'first' });
}

const encode = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

function decode<T>(cursor: string, check: (v: unknown) => v is T): T {
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (check(v)) return v;
  } catch {
    // fall through
  }
  throw new BadInputError(`after ${JSON.stringify(cursor)} is not a cursor returned by this API`, { field: 'after' });
}

/** The (name, id) keyset cursor of organisations and users. */
function nameIdCursor(after: string | null | undefined): { name: string; id: string } | undefined {
  const cur = after ? decode(after, isNameId) : undefined;
  return cur ? { name: cur[0], id: cur[1] } : undefined;
}

const isString = (v: unknown): v is string => typeof v === 'string';
const isNameId = (v: unknown): v is [string, string] => Array.isArray(v) && v.length === 2 && v.every(isString);
const isLine = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/** Bulk upload rules (store first, check the header, then queue) and the directory reads. */
export class DirectoryService {
  constructor(
    private readonly store: DirectoryStore,
    private readonly jobs: JobsService,
    private readonly storage: ObjectStorage,
    private readonly log: Logger,
    private readonly limits: BulkLimits,
    private readonly metrics?: Metrics,
  ) {}

  /**
   * Stores the CSV, then reads it once (header and row count; nothing is written) so a wrong
   * header or too many rows fail here, synchronously; then the process record and its job are
   * created in one transaction. The same idempotency key from the same client returns the first
   * process, untouched.
   */
  async bulkUpload(
    viewer: Viewer,
    input: { kind: BulkKind; file: Promise<FileUpload>; locationType?: LocationType | null; idempotencyKey?: string | null; dialect?: CsvDialectOptions },
  ): Promise<{ process: BulkProcess; job: Job; created: boolean }> {
    const { kind, idempotencyKey } = input;
    const locationType = input.locationType ?? null;
    checkIdempotencyKey(idempotencyKey);
    if (locationType && kind !== BulkKind.LOCATION)
      throw new BadInputError(`locationType applies to LOCATION uploads only, not ${kind}`, { field: 'locationType' });
    const upload = await input.file;
    if (idempotencyKey) {
      const existing = await this.store.byIdempotencyKey(viewer.clientId, idempotencyKey);
      if (existing) {
        await discard(upload.createReadStream());
        return { process: existing, job: await this.jobs.get(viewer, existing.jobId!), created: false };
      }
    }
    const id = randomUUID();
    const key = storageKeys.raw(id, upload.filename, new Date());
    let stored: { size: number; sha256: string };
    try {
      stored = await this.storage.put(key, upload.createReadStream(), { maxBytes: this.limits.maxFileBytes, contentType: upload.mimetype });
    } catch (err) {
      throw uploadStoreError(
        err,
        `File ${JSON.stringify(upload.filename)} exceeds the bulk upload limit of ${this.limits.maxFileBytes} bytes`,
        this.limits.maxFileBytes,
      );
    }
    this.metrics?.observeUpload('bulk', stored.size);
    let totalRows: number;
    try {
      totalRows = await this.scan(kind, key, locationType, input.dialect ?? {});
    } catch (err) {
      await this.storage.delete(key);
      throw err;
    }
    const res = await this.jobs.inTransaction(async (tx) => {
      const process = await this.store.insertProcess(tx, {
        id,
        kind,
        locationType,
        fileName: upload.filename,
        storageKey: key,
        size: stored.size,
        sha256: stored.sha256,
        totalRows,
        dialect: input.dialect,
        idempotencyKey: idempotencyKey ?? null,
        createdBy: viewer.clientId,
      });
      if (!process) return undefined;
      const { job } = await this.jobs.submit(viewer, BULK_UPLOAD_JOB, { processId: id }, { tx });
      await this.store.setJob(tx, id, job.id);
      return { process: { ...process, jobId: job.id }, job };
    });
    if (!res) {
      // A concurrent request with the same key won.
      await this.storage.delete(key);
      const winner = (await this.store.byIdempotencyKey(viewer.clientId, idempotencyKey!))!;
      return { process: winner, job: await this.jobs.get(viewer, winner.jobId!), created: false };
    }
    this.log.info({ processId: id, jobId: res.job.id, kind, rows: totalRows, by: viewer.clientId }, 'bulk upload stored and queued');
    return { ...res, created: true };
  }

  /** Header check and row count of the stored file; throws the synchronous errors. */
  private async scan(kind: BulkKind, key: string, locationType: LocationType | null, dialect: CsvDialectOptions): Promise<number> {
    let rows = 0;
    let headerSeen = false;
    try {
      for await (const rec of readCsv(await this.storage.get(key), dialect)) {
        if (!headerSeen) {
          headerSeen = true;
          const { header, problems } = parseHeader(kind, rec.cells);
          if (!header) {
            // Bounded: the first MAX_PROBLEMS_LISTED problems and their count.
            const listed = problems.slice(0, MAX_PROBLEMS_LISTED);
            throw new BadInputError(
              `${problemsMessage(
                `The ${kind} CSV header is wrong`,
                listed.map((p) => p.message),
                problems.length,
              )}. Valid columns: ${validColumnList(kind)}`,
              {
                problems: listed,
                problemCount: problems.length,
                validColumns: validColumnList(kind).split(', '),
              },
            );
          }
          if (kind === BulkKind.LOCATION && !locationType && !header.present.has('type')) {
            throw new BadInputError('A LOCATION upload needs locationType, or a type column giving each row its type', { field: 'locationType' });
          }
          continue;
        }
        if (++rows > this.limits.maxRows) {
          throw new PayloadTooLargeError(`The file has more than ${this.limits.maxRows} data rows, the bulk upload limit`, { limitRows: this.limits.maxRows });
        }
      }
    } catch (err) {
      if (err instanceof MalformedCsvError) throw new BadInputError(err.message);
      // Refused for its bytes, as validateFile refuses them.
      if (err instanceof NotCsvError || err instanceof UnsupportedEncodingError || err instanceof MixedLineEndingsError || err instanceof RecordTooLargeError) {
        throw new BadInputError(err.message, { field: 'file', reason: err.code });
      }
      throw err;
    }
    if (!headerSeen)
      throw new BadInputError(`The file is empty; expected a header with the columns: ${validColumnList(kind)}`, {
        validColumns: validColumnList(kind).split(', '),
      });
    if (rows === 0) throw new BadInputError('The file has a header but no data rows');
    return rows;
  }

  /** A process the viewer may see (their own; any for ADMIN). Process ids are UUID strings. */
  async process(viewer: Viewer, id: string): Promise<BulkProcess> {
    if (!isUuid(id)) throw new NotFoundError('Bulk upload process', id);
    const p = await this.store.getProcess(id);
    if (!p || (!hasRole(viewer.roles, Role.ADMIN) && p.createdBy !== viewer.clientId)) throw new NotFoundError('Bulk upload process', id);
    return p;
  }

  counts(p: BulkProcess) {
    return this.store.counts(p.id);
  }

  /** Success or failure rows by line; phone and email masked unless the viewer is ADMIN. */
  async results(viewer: Viewer, p: BulkProcess, ok: boolean, first: number, after?: string | null): Promise<Page<BulkResult>> {
    checkFirst(first);
    const page = await paginate({
      first,
      after: after ? decode(after, isLine) : 0,
      fetch: (limit, afterLine) => this.store.results(p.id, ok, limit, afterLine ?? 0),
      count: async () => {
        const counts = await this.store.counts(p.id);
        return ok ? counts.succeeded : counts.failed;
      },
      cursorOf: (r) => encode(r.line),
    });
    if (hasRole(viewer.roles, Role.ADMIN)) return page;
    const nodes = page.nodes.map((r) =>
      'phone' in r.data || 'email' in r.data
        ? { ...r, data: { ...r.data, phone: maskPhone(r.data['phone'] as string | null), email: maskEmail(r.data['email'] as string | null) } }
        : r,
    );
    return { ...page, nodes };
  }

  async locations(f: { type?: LocationType | null; parentCode?: string | null }, first: number, after?: string | null): Promise<Page<LocationRecord>> {
    checkFirst(first, 500);
    return paginate({
      first,
      after: after ? decode(after, isString) : undefined,
      fetch: (limit, cur) => this.store.listLocations(f, limit, cur),
      count: () => this.store.countLocations(f),
      cursorOf: (l) => encode(l.code),
    });
  }

  async organisations(
    f: { locationCode?: string | null; status?: OrganisationStatus | null; externalId?: string | null },
    first: number,
    after?: string | null,
  ): Promise<Page<OrganisationRecord>> {
    checkFirst(first, 500);
    return paginate({
      first,
      after: nameIdCursor(after),
      fetch: (limit, cur) => this.store.listOrganisations(f, limit, cur),
      count: () => this.store.countOrganisations(f),
      cursorOf: (o) => encode([o.name, o.id]),
    });
  }

  /** Users; phone and email masked unless the viewer is ADMIN. */
  async users(
    viewer: Viewer,
    f: { organisationId?: string | null; organisationExternalId?: string | null; userType?: UserType | null; role?: string | null },
    first: number,
    after?: string | null,
  ): Promise<Page<UserRecord>> {
    checkFirst(first, 500);
    const page = await paginate({
      first,
      after: nameIdCursor(after),
      fetch: (limit, cur) => this.store.listUsers(f, limit, cur),
      count: () => this.store.countUsers(f),
      cursorOf: (u) => encode([u.name, u.id]),
    });
    if (hasRole(viewer.roles, Role.ADMIN)) return page;
    return { ...page, nodes: page.nodes.map((u) => ({ ...u, phone: maskPhone(u.phone), email: maskEmail(u.email) })) };
  }
}
