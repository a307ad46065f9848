import { spawnSync } from 'node:child_process';
import { inject, describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/process';

// postgres.js 3.4.9 defers writes under 1 KiB to a setImmediate; when the connection's socket has
// closed by then (a terminated backend, a proxy dropping it), that callback wrote to a null socket
// and threw where no caller could catch it: an uncaught TypeError that ends the process
// (upstream porsager/postgres#1154, #1208). scripts/patch-deps.mjs guards it at install; with the
// guard the query is rejected with CONNECTION_CLOSED and the process lives on.

describe('postgres.js on a connection whose backend was terminated', () => {
  it('rejects the next query on a reserved connection instead of crashing the process', () => {
    const script = `
      import postgres from 'postgres';
      const url = process.env.URL;
      const sql = postgres(url, { max: 2, onnotice: () => {} });
      const admin = postgres(url, { max: 1, onnotice: () => {} });
      const reserved = await sql.reserve();
      const [{ pid }] = await reserved\`select pg_backend_pid() as pid\`;
      await admin\`select pg_terminate_backend(\${pid})\`;
      await new Promise((r) => setTimeout(r, 300));
      const outcome = await reserved\`select 1\`.then(() => 'answered', (e) => 'rejected ' + e.code);
      await new Promise((r) => setTimeout(r, 100));
      console.log(outcome);
      reserved.release();
      await Promise.all([sql.end({ timeout: 1 }), admin.end({ timeout: 1 })]);
    `;
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: repoRoot,
      encoding: 'utf8',
      env: { ...process.env, URL: inject('adminDatabaseUrl') },
      timeout: 30_000,
    });
    expect(run.stderr).not.toMatch(/TypeError/);
    expect(run.status).toBe(0);
    expect(run.stdout.trim()).toMatch(/^rejected CONNECTION_(CLOSED|DESTROYED)$|^rejected 57P01$/);
  });
});
