import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CreateClientDocument, RegisterSpecDocument } from '../../src/sdk/client';
import { startTestApp, type TestApp } from '../helpers/app';
import { repoRoot } from '../helpers/process';
import { readmeBlocks } from '../helpers/readme';

/**
 * The README's "Generate your own typed client" recipe, as a client team would follow it: the
 * files it shows (`<!-- readme-file: path -->`) are written into a fresh project, the client is
 * generated from the committed schema with @graphql-codegen/client-preset, type-checked, and run
 * against a started service (typed query, multipart upload, graphql-ws subscription).
 */

let t: TestApp;
let project: string;
let secret: string;

function run(cmd: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: project,
      env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out }));
  });
}
const bin = (name: string) => path.join(repoRoot, 'node_modules/.bin', name);

beforeAll(async () => {
  t = await startTestApp();
  const spec = JSON.parse(await fs.readFile(path.join(repoRoot, 'examples/event.attendance.json'), 'utf8'));
  await t.admin.request(RegisterSpecDocument, { kind: 'EVENT', spec });
  // The recipe signs in as `admin`; the test app's bootstrap admin has another id.
  ({
    createClient: { clientSecret: secret },
  } = await t.admin.request(CreateClientDocument, { input: { clientId: 'admin', name: 'admin', roles: ['ADMIN'] } }));

  // Inside the checkout (so packages resolve from its node_modules), in a folder git ignores.
  await fs.mkdir(path.join(repoRoot, 'test-results'), { recursive: true });
  project = await fs.mkdtemp(path.join(repoRoot, 'test-results', 'client-codegen-'));
  const files = readmeBlocks().filter((b) => b.kind === 'file');
  expect(files.map((f) => f.note)).toEqual(['codegen.ts', 'src/sluice.ts']);
  for (const f of files) {
    await fs.mkdir(path.dirname(path.join(project, f.note)), { recursive: true });
    await fs.writeFile(path.join(project, f.note), f.body);
  }
  // The recipe's `cp ../sluice/schema/schema.graphql schema.graphql`, and the example CSV it uploads.
  await fs.copyFile(path.join(repoRoot, 'schema/schema.graphql'), path.join(project, 'schema.graphql'));
  await fs.mkdir(path.join(project, 'examples'));
  await fs.copyFile(path.join(repoRoot, 'examples/attendance.csv'), path.join(project, 'examples/attendance.csv'));
  await fs.writeFile(path.join(project, 'package.json'), JSON.stringify({ name: 'client-team', private: true, type: 'module' }));
  await fs.writeFile(
    path.join(project, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: { strict: true, target: 'es2022', module: 'esnext', moduleResolution: 'bundler', noEmit: true, skipLibCheck: true, types: ['node'] },
      include: ['src'],
    }),
  );
  // Proof that the types are real (not `any`): each of these must be a type error.
  await fs.writeFile(
    path.join(project, 'src/check.ts'),
    `import type { ResultOf, VariablesOf } from '@graphql-typed-document-node/core';
import { graphql } from './gql';
const CheckFile = graphql(\`query CheckFile($id: ID!) { file(id: $id) { size createdAt } me { roles } }\`);
declare const r: ResultOf<typeof CheckFile>;
export const at: string = r.file.createdAt;
// @ts-expect-error SafeInt is a number
export const size: string | null = r.file.size;
// @ts-expect-error roles are the Role enum
export const role: 'OWNER' = r.me.roles[0]!;
// @ts-expect-error the id variable is required
export const vars: VariablesOf<typeof CheckFile> = {};
`,
  );
}, 120_000);

afterAll(async () => {
  if (project) await fs.rm(project, { recursive: true, force: true });
});

describe('a client generated with the README recipe', () => {
  it('generates from the committed schema, type-checks, and runs a typed query, an upload and a subscription', async () => {
    const gen = await run(bin('graphql-codegen'), ['--config', 'codegen.ts']);
    expect(gen.code, gen.out).toBe(0);
    const generated = await fs.readFile(path.join(project, 'src/gql/graphql.ts'), 'utf8');
    // The scalar map applied: the Upload variable is a File or Blob, SafeInt a number.
    expect(generated).toMatch(/file: File \| Blob;/);
    expect(generated).toMatch(/size: number \| null/);

    const tsc = await run(bin('tsc'), ['-p', 'tsconfig.json']);
    expect(tsc.code, tsc.out).toBe(0);

    const example = await run(process.execPath, ['--import', 'tsx', 'src/sluice.ts'], { SLUICE_URL: t.url, SLUICE_CLIENT_SECRET: secret });
    expect(example.code, example.out).toBe(0);
    expect(example.out).toContain('signed in as admin (ADMIN)');
    expect(example.out).toMatch(/job \S+ ended SUCCEEDED_WITH_ERRORS/);
  }, 240_000);
});
