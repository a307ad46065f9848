/**
 * Seeded attendance CSV for the ingestion benchmark: 10 columns (issue #16's shape: 1M rows x 10
 * columns), ISO dates, streamed to disk.
 * The same seed and row count give the same bytes on every machine.
 */
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';

export const ATTENDANCE_COLUMNS = ['date', 'school_id', 'district_id', 'block_id', 'cluster_id', 'grade', 'present', 'total', 'enrolled', 'medium'] as const;
export const ATTENDANCE_HEADER = ATTENDANCE_COLUMNS.join(',');
export const DEFAULT_SEED = 20_240_601;
/** Medium of instruction: an enum column (validated against a list, a text column in PostgreSQL). */
export const MEDIUMS = ['english', 'hindi', 'kannada', 'urdu'] as const;

/**
 * The spec registered through the API. Dates are ISO in the file (dateFormat YYYY-MM-DD) so the
 * raw COPY baseline parses the very same bytes into a `date` column without DateStyle tricks.
 */
export const attendanceSpec = {
  program: 'attendance',
  input: {
    type: 'object',
    properties: {
      date: { type: 'string', format: 'date', dateFormat: 'YYYY-MM-DD', shouldNotNull: true },
      school_id: { type: 'string', shouldNotNull: true },
      district_id: { type: 'string' },
      block_id: { type: 'string' },
      cluster_id: { type: 'string' },
      grade: { type: 'integer', minimum: 1, maximum: 12 },
      present: { type: 'integer', minimum: 0 },
      total: { type: 'integer', minimum: 0 },
      enrolled: { type: 'integer', minimum: 0 },
      medium: { type: 'string', enum: [...MEDIUMS] },
    },
    required: [...ATTENDANCE_COLUMNS],
  },
};

/** The same 10 columns with the PostgreSQL types Sluice gives them (string text, integer bigint, date date). */
export const RAW_TABLE_COLUMNS_SQL = [
  'date date',
  'school_id text',
  'district_id text',
  'block_id text',
  'cluster_id text',
  'grade bigint',
  'present bigint',
  'total bigint',
  'enrolled bigint',
  'medium text',
].join(', ');

/** mulberry32: small, fast, and the same sequence on every machine. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SCHOOLS = 60_000;
const DAYS = 365;

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

/** UDISE-like codes: district 4 digits, block 6, cluster 10, school 11; a school's prefix is its cluster's. */
function schoolPrefixes(): string[] {
  const out: string[] = new Array<string>(SCHOOLS);
  for (let s = 0; s < SCHOOLS; s++) {
    const district = `29${pad(1 + (s % 38), 2)}`;
    const block = `${district}${pad(1 + (Math.floor(s / 38) % 24), 2)}`;
    const cluster = `${block}${pad(1 + (Math.floor(s / 912) % 70), 4)}`;
    const school = `${cluster}${s % 10}`;
    out[s] = `${school},${district},${block},${cluster}`;
  }
  return out;
}

function isoDays(): string[] {
  const out: string[] = [];
  const start = Date.UTC(2023, 0, 1);
  for (let d = 0; d < DAYS; d++) out.push(new Date(start + d * 86_400_000).toISOString().slice(0, 10));
  return out;
}

const ascii = (text: string) => Buffer.from(text, 'latin1');
const CHUNK_BYTES = 1 << 20;
/** Longest possible row: 10 (date) + 1 + 11 + 1 + 4 + 1 + 6 + 1 + 10 + 1 + 2 + 1 + 2 + 1 + 2 + 1 + 2 + 1 + 7 + 1. */
const MAX_ROW_BYTES = 80;

/**
 * Writes `rows` data rows (plus the header) to `file` in 1 MiB writes, honouring backpressure.
 * Every row is valid for `attendanceSpec`. Rows are assembled as bytes from pre-encoded pieces
 * (a 1 GiB file takes seconds, not the half minute string building took). Returns the size in bytes.
 */
export async function writeAttendanceCsv(file: string, rows: number, seed = DEFAULT_SEED): Promise<number> {
  const random = mulberry32(seed);
  const schools = schoolPrefixes().map((s) => ascii(`${s},`));
  const days = isoDays().map((d) => ascii(`${d},`));
  // Small integers and the medium with their separator: the medium ends the row.
  const withComma = Array.from({ length: 101 }, (_, n) => ascii(`${n},`));
  const mediums = MEDIUMS.map((m) => ascii(`${m}\n`));
  const out = createWriteStream(file);
  let bytes = 0;
  let chunk = Buffer.allocUnsafe(CHUNK_BYTES);
  let pos = chunk.write(`${ATTENDANCE_HEADER}\n`, 'latin1');
  const put = (piece: Buffer) => {
    for (let k = 0; k < piece.length; k++) chunk[pos++] = piece[k]!;
  };
  for (let i = 0; i < rows; i++) {
    const day = days[Math.floor(random() * DAYS)]!;
    const school = schools[Math.floor(random() * SCHOOLS)]!;
    const grade = 1 + Math.floor(random() * 12);
    const total = 20 + Math.floor(random() * 41);
    const present = Math.floor(total * (0.6 + random() * 0.4));
    const enrolled = total + Math.floor(random() * 10);
    const medium = mediums[Math.floor(random() * mediums.length)]!;
    put(day);
    put(school);
    put(withComma[grade]!);
    put(withComma[present]!);
    put(withComma[total]!);
    put(withComma[enrolled]!);
    put(medium);
    if (pos > CHUNK_BYTES - MAX_ROW_BYTES) {
      bytes += pos;
      if (!out.write(chunk.subarray(0, pos))) await once(out, 'drain');
      chunk = Buffer.allocUnsafe(CHUNK_BYTES);
      pos = 0;
    }
  }
  bytes += pos;
  out.end(chunk.subarray(0, pos));
  await once(out, 'finish');
  return bytes;
}
