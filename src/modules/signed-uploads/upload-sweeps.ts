import { isUuid } from '../../shared/cursor';
import type { Logger } from '../../shared/logger';
import { sweepsIncompleteUploads } from '../../storage/s3';
import { sweepsLeftovers, type ObjectStorage } from '../../storage/storage';
import type { SignedUploadsConfig } from './signed-uploads.config';
import type { SignedUploadsStore } from './signed-uploads.store';

/** Objects per batch of the orphan sweep's database look-up. */
const ORPHAN_BATCH = 500;
/** `uploads/<YYYY-MM-DD>/<file id>/<name>`, see storageKeys.raw. */
const RAW_KEY = /^uploads\/\d{4}-\d{2}-\d{2}\/([0-9a-f-]{36})\/[^/]+$/;

/** The periodic clean-up of signed uploads: files never imported, objects no file refers to, leftovers. */
export class UploadSweeper {
  constructor(
    private readonly store: SignedUploadsStore,
    private readonly storage: ObjectStorage,
    private readonly log: Logger,
    private readonly config: SignedUploadsConfig,
  ) {}

  /** Expires files whose URL ran out more than the grace period ago without an import; deletes their objects. */
  async sweepExpired(): Promise<number> {
    const expired = await this.store.expire(this.config.graceSeconds);
    for (const { id, storageKey } of expired) {
      if (!storageKey) continue;
      await this.storage.delete(storageKey).catch((err: unknown) => this.log.warn({ err, fileId: id }, 'could not delete the object of an expired upload'));
    }
    if (expired.length) this.log.info({ count: expired.length }, 'expired signed uploads');
    return expired.length;
  }

  /**
   * Temp files of writes a crash interrupted (uploads and outputs alike) and the empty folders
   * left behind, once nothing has written to them for SLUICE_STALE_TEMP_SECONDS (local storage).
   */
  async sweepLeftovers(): Promise<{ tempFiles: number; folders: number }> {
    if (!sweepsLeftovers(this.storage)) return { tempFiles: 0, folders: 0 };
    const swept = await this.storage.sweepLeftovers(new Date(Date.now() - (this.config.staleTempSeconds ?? 3600) * 1000));
    if (swept.tempFiles || swept.folders) this.log.info(swept, 'deleted stale temp files and empty folders');
    return swept;
  }

  /**
   * Deletes objects under uploads/ that no file refers to (a crash between storing and recording,
   * a PUT after the file expired), once they are older than the grace period, so an upload being
   * recorded right now is never taken. Output objects (process_input/, ingestion_error/,
   * emission/, emission-error/) are never touched; then sweeps leftovers (sweepLeftovers).
   */
  async sweepOrphans(): Promise<number> {
    const cutoff = Date.now() - this.config.graceSeconds * 1000;
    let deleted = 0;
    let batch: Array<{ key: string; fileId: string }> = [];
    const flush = async () => {
      const owners = await this.store.rawObjectOwners([...new Set(batch.map((b) => b.fileId))]);
      for (const { key, fileId } of batch) {
        const owner = owners.get(fileId);
        if (owner && !owner.expired && owner.storageKey === key) continue;
        await this.storage.delete(key);
        deleted++;
      }
      batch = [];
    };
    for await (const item of this.storage.list('uploads/')) {
      const m = RAW_KEY.exec(item.key);
      if (!m || !isUuid(m[1]!) || item.modifiedAt.getTime() > cutoff) continue;
      batch.push({ key: item.key, fileId: m[1]!.toLowerCase() });
      if (batch.length >= ORPHAN_BATCH) await flush();
    }
    if (batch.length) await flush();
    if (deleted) this.log.info({ count: deleted }, 'deleted orphaned upload objects');
    if (sweepsIncompleteUploads(this.storage)) {
      const olderThan = new Date(Date.now() - (this.config.incompleteUploadMaxAgeSeconds ?? 24 * 3600) * 1000);
      const aborted = await this.storage.abortIncompleteUploads(olderThan);
      if (aborted) this.log.info({ count: aborted, olderThan }, 'aborted incomplete multipart uploads');
    }
    await this.sweepLeftovers();
    return deleted;
  }
}
