const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** cQube's folder date, `23-Nov-2026` (UTC). */
export function cqubeDate(d: Date): string {
  return `${String(d.getUTCDate()).padStart(2, '0')}-${MONTHS[d.getUTCMonth()]}-${d.getUTCFullYear()}`;
}

/** A file name safe as one storage key segment: letters, digits, `._-`; at most 120 characters. */
export function safeFileName(name: string): string {
  const base = name.split(/[\\/]/).pop() ?? '';
  const cleaned = base
    .replace(/[^A-Za-z0-9._-]+/g, '_')
    .replace(/^[._-]+/, '')
    .slice(-120);
  return cleaned || 'upload.csv';
}

export const storageKeys = {
  raw: (fileId: string, fileName: string, at: Date) => `uploads/${at.toISOString().slice(0, 10)}/${fileId}/${safeFileName(fileName)}`,
  /** cQube: process_input/<program>/<DD-Mon-YYYY>/<spec>-event.data.csv (`-dimension`, `-dataset` for those kinds). */
  stateValid: (program: string, spec: string, kind: string, at: Date) => `process_input/${program}/${cqubeDate(at)}/${spec}-${kind.toLowerCase()}.data.csv`,
  stateErrors: (program: string, fileId: string, at: Date) => `ingestion_error/${program}/${cqubeDate(at)}/${program}_${fileId}_errors.csv`,
  nationalValid: (entryName: string, at: Date) => `emission/${cqubeDate(at)}/${safeFileName(entryName)}`,
  nationalErrors: (program: string, fileId: string, at: Date) => `emission-error/${cqubeDate(at)}/${program}_${fileId}_errors.csv`,
  /** The valid-rows CSV a load during upload wrote (when it is not the upload itself), until the file's job links it into place. */
  loadStaging: (fileId: string) => `staging/${fileId}/valid.csv`,
};

/** The prefix of loadStaging keys (swept with their loads). */
export const LOAD_STAGING_PREFIX = 'staging/';

/** The cQube key with the file id before `.csv`: used when the plain key is taken, so no output is overwritten. */
export function keyWithFileId(preferred: string, fileId: string): string {
  return preferred.replace(/\.csv$/, `.${fileId}.csv`);
}
