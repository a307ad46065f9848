/** Settings of the signed-URL flow (from env.ts, see services.ts). */
export interface SignedUploadsConfig {
  /** Lifetime of an upload URL, in seconds. */
  urlTtlSeconds: number;
  /** After the URL expires, how long the file may still be imported, in seconds. */
  graceSeconds: number;
  /** Age after which the sweep deletes local storage temp files and empty folders, in seconds. */
  staleTempSeconds?: number;
  /** Largest accepted file, in bytes. */
  maxFileBytes: number;
  /** Longest importFile(SYNC) wait, in milliseconds. */
  syncMaxWaitMs: number;
  /** Base URL of Sluice's own upload URLs (SLUICE_PUBLIC_URL); else set by `useListenUrl`. */
  publicUrl?: string;
  /** Incomplete S3 multipart uploads older than this are aborted by the orphan sweep, in seconds. Default 1 day. */
  incompleteUploadMaxAgeSeconds?: number;
  /** PUTs with a tampered upload URL token allowed per address and per file id in any 60 s. Default 10. */
  maxTokenFailuresPerMinute?: number;
}
