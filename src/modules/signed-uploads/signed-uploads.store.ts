import type postgres from 'postgres';
import type { Sql } from '../../db/client';
import type { Tx } from '../../db/tx';
import type { files } from '../../db/schema';
import { decodeFile, type FileRecord, type OnInvalidRows } from '../files/files.store';
import type { IngestMode } from '../files/ingest-mode';

type FileRow = typeof files.$inferSelect;

/** SQL of the signed-URL flow: the upload states of a `files` row and the sweeps. */
export class SignedUploadsStore {
  constructor(private readonly sql: Sql) {}

  /** A PENDING_UPLOAD file; `undefined` when the client already used this idempotency key. */
  async insertPending(v: {
    id: string;
    kind: 'CSV' | 'ZIP';
    specId: string | null;
    program: string | null;
    fileName: string;
    contentType: string;
    storageKey: string;
    declaredSize: number;
    declaredSha256: string;
    expiresAt: Date;
    onInvalidRows: OnInvalidRows;
    idempotencyKey: string | null;
    folder: string | null;
    tags: string[];
    metadata: Record<string, unknown> | null;
    createdBy: string;
  }): Promise<FileRecord | undefined> {
    const [row] = await this.sql`
      insert into files (id, kind, spec_id, program, file_name, content_type, storage_key, on_invalid_rows, idempotency_key, created_by,
                         upload_state, declared_size, declared_sha256, upload_expires_at, folder, tags, metadata)
      values (${v.id}, ${v.kind}::file_kind, ${v.specId}, ${v.program}, ${v.fileName}, ${v.contentType}, ${v.storageKey}, ${v.onInvalidRows},
              ${v.idempotencyKey}, ${v.createdBy}, 'PENDING_UPLOAD', ${v.declaredSize}, ${v.declaredSha256}, ${v.expiresAt}, ${v.folder},
              ${v.tags}::text[], ${v.metadata ? this.sql.json(v.metadata as postgres.JSONValue) : null})
      on conflict (created_by, idempotency_key) do nothing
      returning *`;
    return row ? decodeFile(row) : undefined;
  }

  /**
   * Claims Sluice's own upload URL for one PUT: PENDING_UPLOAD -> UPLOADING, only while the URL is
   * valid. The row update is the single-use check: of two concurrent PUTs exactly one gets the row.
   */
  async claim(id: string): Promise<FileRecord | undefined> {
    const [row] = await this.sql`
      update files set upload_state = 'UPLOADING', upload_token_used_at = now(), updated_at = now()
      where id = ${id} and upload_state = 'PENDING_UPLOAD' and upload_expires_at > now()
      returning *`;
    return row ? decodeFile(row) : undefined;
  }

  /** A claimed PUT failed its checks: the URL may be used again until it expires. */
  async release(id: string, error: { code: string; message: string }): Promise<void> {
    await this.sql`
      update files set upload_state = 'PENDING_UPLOAD', upload_token_used_at = null, error = ${this.sql.json(error)}, updated_at = now()
      where id = ${id} and upload_state = 'UPLOADING'`;
  }

  /** UPLOADING -> UPLOADED with what was stored (Sluice's own URL), or PENDING_UPLOAD -> UPLOADED (object seen in S3). */
  async markUploaded(id: string, from: 'UPLOADING' | 'PENDING_UPLOAD', v: { size: number; sha256: string | null; at: Date }): Promise<FileRecord | undefined> {
    const [row] = await this.sql`
      update files set upload_state = 'UPLOADED', size = ${v.size}, sha256 = ${v.sha256}, uploaded_at = ${v.at}, error = null, updated_at = now()
      where id = ${id} and upload_state = ${from}::file_upload_state
      returning *`;
    return row ? decodeFile(row) : undefined;
  }

  /** The object does not match what was declared: back to PENDING_UPLOAD (a new PUT may fix it), with the reason. */
  async recordMismatch(id: string, error: { code: string; message: string }): Promise<void> {
    await this.sql`
      update files set upload_state = 'PENDING_UPLOAD', size = null, sha256 = null, uploaded_at = null, error = ${this.sql.json(error)}, updated_at = now()
      where id = ${id} and upload_state in ('PENDING_UPLOAD', 'UPLOADED')`;
  }

  /**
   * PENDING_UPLOAD | UPLOADED -> IMPORTED inside the transaction that submits the job. `undefined`
   * when another import (or the expiry sweep) changed the row first.
   */
  async markImported(
    tx: Tx,
    id: string,
    v: { size: number; sha256: string; ingestMode?: IngestMode | null; deleteMissing?: boolean },
  ): Promise<FileRecord | undefined> {
    const [row] = await tx`
      update files set upload_state = 'IMPORTED', size = ${v.size}, sha256 = ${v.sha256}, uploaded_at = coalesce(uploaded_at, now()),
        ingest_mode = ${v.ingestMode ?? null}, delete_missing = ${v.deleteMissing ?? false},
        error = null, updated_at = now()
      where id = ${id} and upload_state in ('PENDING_UPLOAD', 'UPLOADED')
      returning *`;
    return row ? decodeFile(row) : undefined;
  }

  /**
   * Files whose URL expired more than `graceSeconds` ago and that were never imported become
   * EXPIRED; returns their storage keys so the caller deletes the objects. Safe to run from several
   * workers at once: each row changes state once.
   */
  async expire(graceSeconds: number): Promise<Array<{ id: string; storageKey: string | null }>> {
    const rows = await this.sql<Pick<FileRow, 'id' | 'storageKey'>[]>`
      update files set upload_state = 'EXPIRED', updated_at = now(),
        error = jsonb_build_object('code', 'UPLOAD_EXPIRED', 'message', 'The file was not uploaded and imported before its upload URL expired')
      where upload_state in ('PENDING_UPLOAD', 'UPLOADING', 'UPLOADED')
        and upload_expires_at < now() - make_interval(secs => ${graceSeconds})
      returning id, storage_key as "storageKey"`;
    return rows.map((r) => ({ id: r.id, storageKey: r.storageKey }));
  }

  /** For the orphan sweep: which of these file ids exist, their raw key and whether they expired. */
  async rawObjectOwners(ids: string[]): Promise<Map<string, { storageKey: string | null; expired: boolean }>> {
    if (ids.length === 0) return new Map();
    const rows = await this.sql<Pick<FileRow, 'id' | 'storageKey' | 'uploadState'>[]>`
      select id, storage_key as "storageKey", upload_state as "uploadState" from files where id = any(${ids}::uuid[])`;
    return new Map(rows.map((r) => [r.id, { storageKey: r.storageKey, expired: r.uploadState === 'EXPIRED' }]));
  }
}
