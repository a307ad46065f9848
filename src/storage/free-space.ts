import { statfs } from 'node:fs/promises';
import path from 'node:path';
import { StorageError } from './storage';

/**
 * The free-space reserve of local storage (SLUICE_STORAGE_MIN_FREE_BYTES). Why: a full disk is
 * not only the upload's failure. The store shares its file system with the embedded PostgreSQL
 * (both under SLUICE_DATA_DIR by default), which then cannot extend a table or write WAL, and
 * PostgreSQL stops (PANIC) when its WAL cannot be written: one client's uploads could take the
 * service and every other client's data down with them. So a write that would leave less than
 * the reserve free, on the store's file system or on any other watched one (the embedded
 * server's data folder), is refused with STORAGE_FULL while there is still room for the
 * database, the files being loaded and the service's own work.
 *
 * The free space is read with statfs (what an unprivileged writer may still use) when a write
 * starts and again each time the bytes written since the last look could have used half of the
 * headroom then (at most every 64 MiB): close to the reserve every write looks, far from it a
 * look costs nothing. Several writes at once each see the others' bytes in the free space, so
 * together they stop within a few chunks of the line.
 */

/** Most bytes written between two looks at the free space, however much room is left. */
const MAX_BYTES_BETWEEN_LOOKS = 64 * 1024 * 1024;

export interface FreeSpace {
  /** The reserve, in bytes (> 0). */
  readonly minFreeBytes: number;
  /** Throws STORAGE_FULL when writing `bytes` more now would leave less than the reserve free. */
  check(key: string, bytes: number): Promise<void>;
  /** A write's tracker: call `wrote(n)` before each `n` bytes go out (throws STORAGE_FULL as `check`). */
  tracker(key: string): { wrote(bytes: number): Promise<void> };
}

/** statfs of `p`, or of its nearest existing ancestor (a folder made later lives on that file system, unless a mount comes between). */
async function statfsNearest(p: string): Promise<{ bavail: number; bsize: number }> {
  for (let at = path.resolve(p); ; ) {
    try {
      return await statfs(at);
    } catch (err) {
      const parent = path.dirname(at);
      if ((err as { code?: string }).code !== 'ENOENT' || parent === at) throw err;
      at = parent;
    }
  }
}

/** Bytes free for an unprivileged writer on the file system of `path`, less the reserve: the smallest of `paths`. */
async function headroom(paths: readonly string[], minFreeBytes: number): Promise<number> {
  let least = Number.POSITIVE_INFINITY;
  for (const p of paths) {
    const s = await statfsNearest(p);
    least = Math.min(least, s.bavail * s.bsize);
  }
  return least - minFreeBytes;
}

function full(key: string, minFreeBytes: number): StorageError {
  return new StorageError(
    'STORAGE_FULL',
    `Storage write of ${JSON.stringify(key)} refused: it would leave less than the reserve of ${minFreeBytes} bytes free (SLUICE_STORAGE_MIN_FREE_BYTES)`,
    key,
  );
}

/**
 * The reserve of `minFreeBytes` on the file systems of `paths`, or null for
 * no reserve (`minFreeBytes` 0).
 */
export function freeSpaceReserve(paths: readonly string[], minFreeBytes: number): FreeSpace | null {
  if (!(minFreeBytes > 0) || paths.length === 0) return null;
  const room = () => headroom(paths, minFreeBytes);
  return {
    minFreeBytes,
    async check(key, bytes) {
      if ((await room()) - bytes < 0) throw full(key, minFreeBytes);
    },
    tracker(key) {
      let left = Number.NaN;
      let since = 0;
      return {
        async wrote(bytes) {
          since += bytes;
          if (!Number.isNaN(left) && since <= left / 2 && since <= MAX_BYTES_BETWEEN_LOOKS) return;
          // The free space already counts what was written before this batch.
          left = (await room()) - bytes;
          since = 0;
          if (left < 0) throw full(key, minFreeBytes);
        },
      };
    },
  };
}
