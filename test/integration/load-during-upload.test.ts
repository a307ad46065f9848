import fs from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { CancelJobDocument, RegisterSpecDocument, UploadFileDocument, type SluiceClient } from '../../src/sdk/client';
import { createSplitFilePartition, filePartitionName } from '../../src/modules/datasets/dataset-tables.store';
import { LOAD_NOT_KEPT, openCopySession, type LoadSessionArgs } from '../../src/modules/files/load-session';
import { startTestApp, type TestApp } from '../helpers/app';
import { attendanceCsv, attendanceSpec } from '../helpers/attendance';
import { collectJobEvents, FAST_JOBS } from '../helpers/jobs';
import { BOUNDARY, multipart, multipartHead, multipartHeaders, rawRequest, uploadFields } from '../helpers/multipart';

/**
 * Loading a file while it is uploaded (src/modules/files/load-during-upload.ts): the rows of a CSV
 * whose rows are all valid are COPYed as the upload streams and its job only attaches them (with
 * the valid-rows file the upload itself, or stored by the load for a CRLF file); anything else (an
 * invalid row, an aborted upload, a skipped duplicate) leaves nothing behind and gets exactly the
 * outcome the job's own load gives.
 *
 * How a test tells which load kept the rows: the upload pauses for PAUSE_MS in the middle, after
 * the load began; rows COPYed during the upload carry an `_ingested_at` (their transaction's start)
 * from before the job existed, rows the job loaded one from after.
 */
const MIN_BYTES = 64 * 1024;
const PAUSE_MS = 400;
const ROWS = 30_000;
/**
 * Rows of the files whose job must find the load still running: the load's COPY ends about
 * 0.7 s after a 1M-row upload is stored on a fast, quiet machine (0.2 s for 300,000 rows, which
 * a job woken at once and reading the load's progress every 200 ms could miss).
 */
const WAITED_ROWS = 1_000_000;
/** SLUICE_LOAD_DURING_UPLOAD_MAX_UPLOAD_MS here: well above PAUSE_MS. */
const MAX_UPLOAD_MS = 2_000;
const NOTHING_LEFT = { detached: [], records: 0, staged: [] };

let t: TestApp;
let ingestor: SluiceClient;
let auth: Record<string, string>;
let table: string;

/** A service whose loads during upload use `streams` COPYs (SLUICE_LOAD_STREAMS), on a database of its own. */
async function start(streams: number): Promise<void> {
  t = await startTestApp({
    ...FAST_JOBS,
    SLUICE_LOAD_DURING_UPLOAD_MIN_BYTES: String(MIN_BYTES),
    SLUICE_LOAD_DURING_UPLOAD_MAX_UPLOAD_MS: String(MAX_UPLOAD_MS),
    SLUICE_ORPHAN_SWEEP_INTERVAL_MS: '0',
    SLUICE_LOAD_STREAMS: String(streams),
  });
  await t.admin.request(RegisterSpecDocument, { kind: 'EVENT', spec: attendanceSpec });
  ingestor = await t.clientWith(['INGESTOR']);
  auth = { authorization: `Bearer ${ingestor.options.token}` };
  const [spec] = await t.database.sql<{ table_name: string }[]>`select table_name from specs where name = 'attendance'`;
  table = spec!.table_name;
}

const MUTATION = (extra = '') =>
  `mutation ($file: Upload!) { uploadFile(program: "state_prog", spec: "attendance", file: $file${extra}) { file { id } job { id } duplicateOf { id } } }`;

/** Uploads `body` in two halves with a pause between them; resolves with the file and job ids. */
async function slowUpload(
  body: Buffer,
  extra = '',
  duringPause?: () => Promise<void>,
  pauseMs = PAUSE_MS,
): Promise<{ fileId: string; jobId: string; duplicateOf: string | null }> {
  const head = Buffer.concat([
    multipart(uploadFields(MUTATION(extra)), { close: false }),
    Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="0"; filename="a.csv"\r\nContent-Type: text/csv\r\n\r\n`),
  ]);
  const half = Math.floor(body.length / 2);
  const res = await rawRequest(t.url, {
    headers: multipartHeaders(auth),
    timeoutMs: 30_000,
    stream: async (write) => {
      await write(head);
      await write(body.subarray(0, half));
      await new Promise((r) => setTimeout(r, pauseMs));
      await duringPause?.();
      await write(body.subarray(half));
      await write(Buffer.from(`\r\n--${BOUNDARY}--\r\n`));
    },
  });
  const data = res.json?.data as { uploadFile: { file: { id: string }; job: { id: string }; duplicateOf: { id: string } | null } } | undefined;
  if (!data) throw new Error(`upload failed: HTTP ${res.status} ${res.text.slice(0, 500)}`);
  return { fileId: data.uploadFile.file.id, jobId: data.uploadFile.job.id, duplicateOf: data.uploadFile.duplicateOf?.id ?? null };
}

/** Uploads `body` in one go (the SDK's multipart upload); resolves with the file and job. */
async function wholeUpload(body: string, filename: string) {
  const { uploadFile } = await ingestor.upload(
    UploadFileDocument,
    { program: 'state_prog', spec: 'attendance', file: null },
    { file: { body, filename, contentType: 'text/csv' } },
  );
  return uploadFile;
}

async function finish(jobId: string): Promise<string> {
  return (await collectJobEvents(ingestor, jobId)).at(-1)!.state;
}

/** Where the file's rows came from: loaded during the upload (before the job was created) or by the job. */
async function loadedBy(fileId: string, jobId: string): Promise<{ rows: number; duringUpload: boolean }> {
  const [row] = await t.database.sql<{ rows: number; during: boolean }[]>`
    select count(*)::int as rows, max(d._ingested_at) < (select created_at from jobs where id = ${jobId}) as during
    from ${t.database.sql(table)} d where d._file_id = ${fileId}`;
  return { rows: row!.rows, duringUpload: row!.during === true };
}

/** Files under a folder of local storage (temp files included), relative to it. */
async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of await fs.readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else out.push(path.relative(dir, p));
    }
  };
  await walk(dir);
  return out;
}

/** Detached file partitions, preload records and staged valid rows: what a refused load could leave, once no load runs. */
async function leftovers(): Promise<{ detached: string[]; records: number; staged: string[] }> {
  await eventually(async () => t.app.services.loadsDuringUpload.inFlight === 0);
  const detached = await t.database.sql<{ relname: string }[]>`
    select relname from pg_class where relname like 'dsf\\_%' and relkind in ('r', 'p') and not relispartition`;
  const [rec] = await t.database.sql<{ n: number }[]>`select count(*)::int as n from file_preloads`;
  return { detached: detached.map((d) => d.relname), records: rec!.n, staged: await filesUnder(path.join(t.dataDir, 'storage', 'staging')) };
}

async function eventually(check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 50));
  }
}

// SLUICE_LOAD_STREAMS 1 (one COPY into a plain partition) and 2 (a split partition, two COPYs).
describe.each([1, 2])('a CSV loaded while it is uploaded, SLUICE_LOAD_STREAMS=%i', (streams) => {
  beforeAll(() => start(streams));

  it('a clean file: its rows are COPYed during the upload and attached by its job, with the same outcome and outputs', async () => {
    const body = Buffer.from(attendanceCsv(ROWS));
    expect(body.length).toBeGreaterThan(2 * MIN_BYTES);
    const { fileId, jobId } = await slowUpload(body);
    expect(await finish(jobId)).toBe('SUCCEEDED');
    expect(await loadedBy(fileId, jobId)).toEqual({ rows: ROWS, duringUpload: true });
    const [f] = await t.database.sql<
      { total_rows: number; valid_rows: number; invalid_rows: number; valid_output_key: string; error_output_key: string | null }[]
    >`
      select total_rows, valid_rows, invalid_rows, valid_output_key, error_output_key from files where id = ${fileId}`;
    expect(f).toMatchObject({ total_rows: ROWS, valid_rows: ROWS, invalid_rows: 0, error_output_key: null });
    // The valid-rows object is the upload, as after a load by the job.
    expect(Buffer.compare(await fs.readFile(path.join(t.dataDir, 'storage', f!.valid_output_key)), body)).toBe(0);
    // Attached, with the table's own defaults back; the record is gone with the attach.
    const [p] = await t.database.sql<{ parent: string | null }[]>`
      select i.inhparent::regclass::text as parent from pg_inherits i where i.inhrelid = to_regclass(${filePartitionName(fileId)})`;
    expect(p?.parent).toBe(table);
    const defaults = await t.database.sql<{ column_name: string; column_default: string | null }[]>`
      select column_name, column_default from information_schema.columns
      where table_name = ${filePartitionName(fileId)} and column_name in ('_file_id', '_ingested_at') order by column_name`;
    expect(defaults).toEqual([
      { column_name: '_file_id', column_default: null },
      { column_name: '_ingested_at', column_default: 'now()' },
    ]);
    // Split over two COPYs: each leaf holds its blocks of 4,096 lines, under the same defaults and one _ingested_at.
    const leaves = await t.database.sql<{ leaf: string; rows: number; wrong: number; at: number; defaults: string[] }[]>`
      select c.relname as leaf, count(d.*)::int as rows, count(*) filter (where ((d._line >> 12) % 2) <> right(c.relname, 1)::int)::int as wrong,
        count(distinct d._ingested_at)::int as at,
        (select array_agg(coalesce(a.column_default, 'null') order by a.column_name) from information_schema.columns a
          where a.table_name = c.relname and a.column_name in ('_file_id', '_ingested_at')) as defaults
      from pg_inherits i join pg_class c on c.oid = i.inhrelid left join ${t.database.sql(table)} d on d.tableoid = c.oid
      where i.inhparent = to_regclass(${filePartitionName(fileId)}) group by c.relname order by c.relname`;
    if (streams === 1) expect(leaves).toEqual([]);
    else {
      expect(leaves.map((l) => [l.leaf, l.wrong, l.at, l.defaults])).toEqual([0, 1].map((i) => [`${filePartitionName(fileId)}_${i}`, 0, 1, ['null', 'now()']]));
      expect(leaves.reduce((n, l) => n + l.rows, 0)).toBe(ROWS);
      expect(Math.min(...leaves.map((l) => l.rows))).toBeGreaterThan(ROWS / 4);
    }
    expect(await leftovers()).toEqual(NOTHING_LEFT);
    // The same lines once each.
    const [lines] = await t.database.sql<{ n: number; first: number; last: number }[]>`
      select count(distinct _line)::int as n, min(_line) as first, max(_line) as last from ${t.database.sql(table)} where _file_id = ${fileId}`;
    expect(lines).toEqual({ n: ROWS, first: 2, last: ROWS + 1 });
  });

  it('a job that waits for the load to finish reports the load’s progress as its own', async () => {
    const rows = WAITED_ROWS;
    const body = attendanceCsv(rows).replace(/s(\d+),/g, 'prog$1,');
    const { uploadFile } = await ingestor.upload(
      UploadFileDocument,
      { program: 'state_prog', spec: 'attendance', file: null },
      { file: { body, filename: 'progress.csv', contentType: 'text/csv' } },
    );
    const events = await collectJobEvents(ingestor, uploadFile.job.id);
    expect(events.at(-1)!.state).toBe('SUCCEEDED');
    expect(await loadedBy(uploadFile.file.id, uploadFile.job.id)).toEqual({ rows, duringUpload: true });
    // Progress between the start and the end, while the job waited for the load.
    const during = events.filter((e) => e.kind === 'PROGRESS' && (e.progress.processed ?? 0) > 0 && (e.progress.processed ?? 0) < rows);
    expect(during.length, JSON.stringify(events.map((e) => [e.kind, e.state, e.progress.processed]))).toBeGreaterThan(0);
    const [left] = await t.database.sql<{ n: number }[]>`select count(*)::int as n from file_load_progress`;
    expect(left!.n).toBe(0);
  });

  it('a job cancelled while it waits for the load ends CANCELLED at once; no row is visible, and the load keeps nothing', async () => {
    const rows = WAITED_ROWS;
    const body = attendanceCsv(rows).replace(/s(\d+),/g, 'cancel$1,');
    const { uploadFile } = await ingestor.upload(
      UploadFileDocument,
      { program: 'state_prog', spec: 'attendance', file: null },
      { file: { body, filename: 'cancel.csv', contentType: 'text/csv' } },
    );
    let cancelledAt = 0;
    const events = await collectJobEvents(ingestor, uploadFile.job.id, {
      onEvent: (e) => {
        if (!cancelledAt && e.kind === 'PROGRESS' && (e.progress.processed ?? 0) > 0 && (e.progress.processed ?? 0) < rows) {
          cancelledAt = Date.now();
          void ingestor.request(CancelJobDocument, { id: uploadFile.job.id });
        }
      },
    });
    expect(cancelledAt, 'the job never reported the load’s progress').toBeGreaterThan(0);
    expect(events.at(-1)!.state).toBe('CANCELLED');
    expect((await loadedBy(uploadFile.file.id, uploadFile.job.id)).rows).toBe(0);
    // The load, finishing after its job ended, keeps nothing.
    expect(await leftovers()).toEqual(NOTHING_LEFT);
  });

  it('the sweep removes at once a load whose job has ended, and never a partition that is attached', async () => {
    const body = Buffer.from(attendanceCsv(ROWS).replace(/s(\d+),/g, 'ended$1,'));
    const { fileId, jobId } = await slowUpload(body);
    expect(await finish(jobId)).toBe('SUCCEEDED');
    // A record left for a file whose job ended (as a job cancelled after its load committed leaves one).
    await t.database.sql`insert into file_preloads (file_id, table_name, size, sha256, result) values (${fileId}, ${table}, 1, 'x', '{}')`;
    expect(await t.app.services.loadsDuringUpload.sweep(3600)).toBe(1);
    expect(await leftovers()).toEqual(NOTHING_LEFT);
    expect(await loadedBy(fileId, jobId)).toEqual({ rows: ROWS, duringUpload: true });
  });

  it('a file with an invalid row past the start: the load stops there, and the job loads the file with its row errors', async () => {
    const body = Buffer.from(attendanceCsv(ROWS, 20_000));
    const { fileId, jobId } = await slowUpload(body);
    expect(await finish(jobId)).toBe('SUCCEEDED_WITH_ERRORS');
    expect(await loadedBy(fileId, jobId)).toEqual({ rows: ROWS - 1, duringUpload: false });
    const errors = await t.database.sql<{ line: number; code: string }[]>`select line, code from row_errors where file_id = ${fileId}`;
    expect(errors).toEqual([{ line: 20_001, code: 'NOT_A_NUMBER' }]);
    expect(await leftovers()).toEqual(NOTHING_LEFT);
  });

  it('a CRLF file (its valid-rows CSV is not the upload): loaded during the upload too, its valid rows stored by the load and linked into place', async () => {
    const lf = attendanceCsv(ROWS).replace(/s(\d+),/g, 'crlf$1,');
    const body = Buffer.from(lf.replace(/\n/g, '\r\n'));
    const { fileId, jobId } = await slowUpload(body);
    expect(await finish(jobId)).toBe('SUCCEEDED');
    expect(await loadedBy(fileId, jobId)).toEqual({ rows: ROWS, duringUpload: true });
    const [f] = await t.database.sql<{ valid_output_key: string }[]>`select valid_output_key from files where id = ${fileId}`;
    // What a load by the job writes for a CRLF file: the same rows, LF-terminated.
    expect((await fs.readFile(path.join(t.dataDir, 'storage', f!.valid_output_key))).toString()).toBe(lf);
    expect(await leftovers()).toEqual(NOTHING_LEFT);
  });

  it.each([
    ['an LF duplicate: its load is discarded before the answer', attendanceCsv(ROWS).replace('s1,', 'dup1,')],
    [
      'a CRLF duplicate: its staged valid rows go with its load',
      attendanceCsv(ROWS)
        .replace(/s(\d+),/g, 'crdup$1,')
        .replace(/\n/g, '\r\n'),
    ],
  ])('a duplicate that is skipped, %s', async (_name, csv) => {
    const body = Buffer.from(csv);
    const first = await slowUpload(body);
    expect(await finish(first.jobId)).toBe('SUCCEEDED');
    const again = await slowUpload(body, ', onDuplicateContent: SKIP');
    expect(again.duplicateOf).toBe(first.fileId);
    expect(await leftovers()).toEqual(NOTHING_LEFT);
  });

  it('an upload the client abandons half way: no file, and the load leaves nothing', async () => {
    const [before] = await t.database.sql<{ n: number }[]>`select count(*)::int as n from files`;
    const body = Buffer.from(attendanceCsv(ROWS));
    await new Promise<void>((resolve) => {
      const req = http.request(new URL('/graphql', t.url), { method: 'POST', headers: multipartHeaders(auth), agent: false });
      req.on('error', () => resolve());
      req.write(multipartHead('gone.csv'));
      req.write(body.subarray(0, body.length / 2), () => {
        setTimeout(() => {
          req.destroy();
          resolve();
        }, PAUSE_MS);
      });
    });
    await eventually(async () => {
      const l = await leftovers();
      return l.detached.length === 0 && l.records === 0;
    });
    const [after] = await t.database.sql<{ n: number }[]>`select count(*)::int as n from files`;
    expect(after!.n).toBe(before!.n);
    // The service goes on loading.
    const { fileId, jobId } = await slowUpload(Buffer.from(attendanceCsv(ROWS).replace('s1,', 'after1,')));
    expect(await finish(jobId)).toBe('SUCCEEDED');
    expect((await loadedBy(fileId, jobId)).duringUpload).toBe(true);
  });

  it('a load whose database session is terminated mid-COPY: rolled back, and the job loads the file', async () => {
    const body = Buffer.from(attendanceCsv(ROWS).replace(/s(\d+),/g, 'term$1,'));
    let killed = false;
    const { fileId, jobId } = await slowUpload(body, '', async () => {
      // The load's session, as an operator finds it; no job exists yet, so it is the only COPY.
      await eventually(async () => {
        const [row] = await t.database.sql<{ pid: number }[]>`
          select pid from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid() and query ilike 'copy%'`;
        if (row) killed = (await t.database.sql`select pg_terminate_backend(${row.pid}) as ok`)[0]!['ok'] === true;
        return killed;
      });
    });
    expect(killed).toBe(true);
    expect(await finish(jobId)).toBe('SUCCEEDED');
    expect(await loadedBy(fileId, jobId)).toEqual({ rows: ROWS, duringUpload: false });
    expect(await leftovers()).toEqual(NOTHING_LEFT);
  });

  it('an upload slower than SLUICE_LOAD_DURING_UPLOAD_MAX_UPLOAD_MS ends its load (no transaction held open for a slow client); its job loads the file', async () => {
    const body = Buffer.from(attendanceCsv(ROWS).replace(/s(\d+),/g, 'slow$1,'));
    let during = -1;
    let openLoadTransactions = -1;
    const { fileId, jobId } = await slowUpload(
      body,
      '',
      async () => {
        // The load's own connections (one per stream): none is in a transaction any more. Before
        // the pipeline thread's read of the paused upload ended at the abort, the COPY's
        // transaction stayed open until the client sent more bytes (or the thread was terminated,
        // RETIRE_MS after the abort: later than this window). Polled, for a loaded machine.
        const until = Date.now() + 3000;
        for (;;) {
          during = t.app.services.loadsDuringUpload.inFlight;
          const [row] = await t.database.sql<{ n: number }[]>`
            select count(*)::int as n from pg_stat_activity where application_name ~ '-load(:|$)' and xact_start is not null`;
          openLoadTransactions = row!.n;
          if ((during === 0 && openLoadTransactions === 0) || Date.now() > until) break;
          await new Promise((r) => setTimeout(r, 50));
        }
      },
      MAX_UPLOAD_MS + 700,
    );
    // Ended before the upload finished.
    expect(during).toBe(0);
    expect(openLoadTransactions).toBe(0);
    expect(await finish(jobId)).toBe('SUCCEEDED');
    expect(await loadedBy(fileId, jobId)).toEqual({ rows: ROWS, duringUpload: false });
    expect(await leftovers()).toEqual(NOTHING_LEFT);
  });

  it('a small file (under SLUICE_LOAD_DURING_UPLOAD_MIN_BYTES) is loaded by its job', async () => {
    const uploadFile = await wholeUpload(attendanceCsv(100).replace(/s(\d+),/g, 'small$1,'), 'small.csv');
    expect(await finish(uploadFile.job.id)).toBe('SUCCEEDED');
    expect(await loadedBy(uploadFile.file.id, uploadFile.job.id)).toEqual({ rows: 100, duringUpload: false });
  });

  // The load's transaction as its pipeline thread runs it (load-session.ts), called here directly.
  const session = (fileId: string) =>
    openCopySession({
      url: t.database.url,
      settings: t.database.settings,
      fileId,
      table,
      columns: attendanceSpec.input.required,
      streams,
    } satisfies LoadSessionArgs);

  it('a load whose file’s job has started already keeps nothing and leaves the file’s partition alone', async () => {
    const uploadFile = await wholeUpload(attendanceCsv(100).replace(/s(\d+),/g, 'late$1,'), 'late.csv');
    expect(await finish(uploadFile.job.id)).toBe('SUCCEEDED');
    await expect(session(uploadFile.file.id)).rejects.toMatchObject({ name: LOAD_NOT_KEPT, message: 'the file’s job started before the load' });
    expect(await loadedBy(uploadFile.file.id, uploadFile.job.id)).toEqual({ rows: 100, duringUpload: false });
    // A partition that is there already (no file row yet: a crash's leftover, say) is not this load's either.
    const stray = '5d6e7f80-9a1b-4c2d-8e3f-4a5b6c7d8e9f';
    await t.database.sql.unsafe(`create table ${filePartitionName(stray)} (like ${table} including defaults)`);
    await expect(session(stray)).rejects.toMatchObject({ name: LOAD_NOT_KEPT, message: 'the file’s partition exists already' });
    await t.database.sql.unsafe(`drop table ${filePartitionName(stray)}`);
  });

  it('a load told not to keep its rows rolls back: no partition, no record', async () => {
    const fileId = '6e7f8091-a2b3-4c4d-9e5f-6a7b8c9d0e1f';
    const s = await session(fileId);
    s.copy.end(Buffer.concat([Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'), Buffer.alloc(8), Buffer.from([0xff, 0xff])]));
    await new Promise((resolve, reject) => s.copy.on('finish', resolve).on('error', reject));
    expect(await s.settle(null)).toEqual({ committed: false, reason: 'the API thread did not keep the rows' });
    const [row] = await t.database.sql<{ partition: string | null; records: number }[]>`
      select to_regclass(${filePartitionName(fileId)})::text as partition, (select count(*)::int from file_preloads where file_id = ${fileId}) as records`;
    expect(row).toEqual({ partition: null, records: 0 });
  });

  it('the sweep removes a load no job took, with its detached partition', async () => {
    const orphan = '7a1c2b3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d';
    const partition = filePartitionName(orphan);
    await t.database.sql.unsafe(`create table ${partition} (like ${table} including defaults)`);
    await t.database.sql`insert into file_preloads (file_id, table_name, size, sha256, result, created_at)
      values (${orphan}, ${table}, 1, 'x', '{}', now() - interval '2 hours')`;
    // Staged valid rows of a load that never committed its record (a crash between the two).
    const staged = path.join(t.dataDir, 'storage', 'staging', '8b2d3c4e-5f60-4a7b-8c9d-0e1f2a3b4c5d', 'valid.csv');
    await fs.mkdir(path.dirname(staged), { recursive: true });
    await fs.writeFile(staged, 'date,school_id,present\n');
    const old = new Date(Date.now() - 2 * 3600_000);
    await fs.utimes(staged, old, old);
    expect(await t.app.services.loadsDuringUpload.sweep(3600)).toBe(1);
    expect(await leftovers()).toEqual(NOTHING_LEFT);
  });

  it('the sweep drops a split partition a crash left (detached, no record) once nobody holds its file’s lock', async () => {
    const orphan = '9c8b7a6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d';
    await t.database.sql.begin((tx) => createSplitFilePartition(tx, table, orphan, 2));
    const exists = async () => (await t.database.sql`select to_regclass(${filePartitionName(orphan)}) as r`)[0]!['r'] !== null;
    // A load (or the file's job) holding the lock: left alone.
    const held = await t.database.sql.reserve();
    try {
      await held`begin`;
      await held`select pg_advisory_xact_lock(${0x5c1d}, hashtext(${orphan}))`;
      await t.app.services.loadsDuringUpload.sweep(3600);
      expect(await exists()).toBe(true);
      await held`rollback`;
    } finally {
      held.release();
    }
    expect(await t.app.services.loadsDuringUpload.sweep(3600)).toBe(1);
    expect(await exists()).toBe(false);
    expect(await leftovers()).toEqual(NOTHING_LEFT);
  });

  // Last: it stops the loads for the rest of this app.
  it('stop() (the service shutting down) ends a load in flight; its job loads the file, and no new load starts', async () => {
    const body = Buffer.from(attendanceCsv(ROWS).replace(/s(\d+),/g, 'stop$1,'));
    const { fileId, jobId } = await slowUpload(body, '', async () => {
      expect(t.app.services.loadsDuringUpload.inFlight).toBe(1);
      await t.app.services.loadsDuringUpload.stop();
      expect(t.app.services.loadsDuringUpload.inFlight).toBe(0);
    });
    expect(await finish(jobId)).toBe('SUCCEEDED');
    expect(await loadedBy(fileId, jobId)).toEqual({ rows: ROWS, duringUpload: false });
    expect(await leftovers()).toEqual(NOTHING_LEFT);
    const next = await slowUpload(Buffer.from(attendanceCsv(ROWS).replace(/s(\d+),/g, 'later$1,')));
    expect(await finish(next.jobId)).toBe('SUCCEEDED');
    expect((await loadedBy(next.fileId, next.jobId)).duringUpload).toBe(false);
  });
});
