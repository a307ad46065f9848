import { spawnSync } from 'node:child_process';
import { inject, describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/process';

// postgres.js 3.4.9 builds each COPY data message with Buffer.concat([header, chunk]): every byte
// of a COPY copied once more and as much fresh memory for the collector (about 140 MB for a 1M-row
// binary COPY). scripts/patch-deps.mjs sends the 5-byte header and the chunk as they are. This
// counts the bytes Buffer.concat copies while 8 MiB go through a COPY in 1 MiB chunks, and checks
// that PostgreSQL got every byte in order.

describe('postgres.js COPY FROM STDIN', () => {
  it('sends the chunks without concatenating them, and PostgreSQL receives every byte in order', () => {
    const script = `
      import postgres from 'postgres';
      import { createHash } from 'node:crypto';
      const sql = postgres(process.env.URL, { max: 1, onnotice: () => {} });
      let concatenated = 0;
      const concat = Buffer.concat;
      Buffer.concat = (list, length) => { const out = concat(list, length); concatenated += out.length; return out; };
      const chunks = [];
      let n = 0;
      const hash = createHash('sha256');
      for (let c = 0; c < 8; c++) {
        let text = '';
        while (text.length < 1024 * 1024) { const line = n + '\\t' + 'x'.repeat(n % 97) + '\\n'; hash.update(n + ':' + 'x'.repeat(n % 97) + ';'); text += line; n++; }
        chunks.push(Buffer.from(text));
      }
      const result = await sql.begin(async (tx) => {
        await tx\`create temp table copied (n integer, s text) on commit drop\`;
        const w = await tx\`copy copied (n, s) from stdin\`.writable();
        const before = concatenated;
        for (const chunk of chunks) if (!w.write(chunk)) await new Promise((r) => w.once('drain', r));
        const during = concatenated - before;
        w.end();
        await new Promise((resolve, reject) => { w.on('finish', resolve); w.on('error', reject); });
        const rows = await tx\`select n, s from copied order by n\`;
        const check = createHash('sha256');
        for (const r of rows) check.update(r.n + ':' + r.s + ';');
        return { during, rows: rows.length, same: check.digest('hex') === hash.digest('hex') };
      });
      console.log(JSON.stringify({ ...result, expected: n }));
      await sql.end({ timeout: 1 });
    `;
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: repoRoot,
      encoding: 'utf8',
      env: { ...process.env, URL: inject('adminDatabaseUrl') },
      timeout: 60_000,
    });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const out = JSON.parse(run.stdout.trim()) as { during: number; rows: number; expected: number; same: boolean };
    expect(out.rows).toBe(out.expected);
    expect(out.same).toBe(true);
    // Unpatched: at least the 8 MiB of chunks (each one concatenated with its header).
    expect(out.during).toBeLessThan(64 * 1024);
  });
});
