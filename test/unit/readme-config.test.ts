import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/process';

const read = (p: string) => fs.readFileSync(path.join(repoRoot, p), 'utf8');

describe('README', () => {
  it('its configuration tables name every variable src/env.ts reads, and nothing else', () => {
    const env = read('src/env.ts');
    const declared = new Set([...env.matchAll(/^\s+((?:SLUICE|DATABASE)_[A-Z0-9_]+|LOG_LEVEL|PORT|HOST|NODE_ENV):/gm)].map((m) => m[1]!));
    const readme = read('README.md');
    const section = readme.slice(readme.indexOf('\n## Configuration\n'), readme.indexOf('\n## ', readme.indexOf('\n## Configuration\n') + 5));
    const firstCells = [...section.matchAll(/^\| ([^|]+)\|/gm)].map((m) => m[1]!);
    const documented = new Set(firstCells.flatMap((cell) => [...cell.matchAll(/`([A-Z0-9_]+)`/g)].map((m) => m[1]!)));
    expect(declared.size).toBeGreaterThan(50);
    expect([...declared].filter((k) => !documented.has(k)).sort(), 'settings missing from the README').toEqual([]);
    expect(
      [...documented].filter((k) => !declared.has(k) && !/^(SLUICE_(URL|TOKEN|CLIENT_ID|CLIENT_SECRET|CLI_CONFIG)|NO_COLOR)$/.test(k)).sort(),
      'README rows for settings that do not exist',
    ).toEqual([]);
  });
});
