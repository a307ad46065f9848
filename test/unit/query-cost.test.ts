import fs from 'node:fs';
import path from 'node:path';
import { buildSchema, Kind, parse, print, validate, visit, type DefinitionNode } from 'graphql';
import { describe, expect, it } from 'vitest';
import { loadEnv } from '../../src/env';
import { createLimits } from '../../src/server/limits';
import { repoRoot } from '../helpers/process';

// The default limits (depth, aliases, cost) as the service applies them, against the committed schema.
const schema = buildSchema(fs.readFileSync(path.join(repoRoot, 'schema/schema.graphql'), 'utf8'));
const { validationRules } = createLimits(loadEnv({}));
const problems = (source: string) => validate(schema, parse(source), validationRules).map((e) => e.message);

/** Each operation of a document with its fragments, so each is checked (and costed) alone. */
function operations(source: string): Array<{ name: string; source: string }> {
  const defs = parse(source).definitions;
  const fragments = defs.filter((d) => d.kind === Kind.FRAGMENT_DEFINITION);
  return defs
    .filter((d): d is Extract<DefinitionNode, { kind: Kind.OPERATION_DEFINITION }> => d.kind === Kind.OPERATION_DEFINITION)
    .map((op) => ({ name: op.name?.value ?? print(op).slice(0, 60), source: [op, ...fragments].map((d) => print(d)).join('\n') }));
}

describe('the default query cost limit', () => {
  const readme = fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
  const examples = [...readme.matchAll(/```graphql\n([\s\S]*?)```/g)].flatMap((m) => operations(m[1]!.replace(/"…"/g, '"x"')));

  it('admits every GraphQL example of the README as written (the uploadStatus one cost 6,581 against 5,000)', () => {
    expect(examples.map((e) => e.name)).toEqual(expect.arrayContaining([expect.stringContaining('uploadStatus')]));
    for (const e of examples) expect(problems(e.source), e.source).toEqual([]);
  });

  it('admits every SDK operation with literal pages of 100 rows, fragments costing as much as inline fields', () => {
    const dir = path.join(repoRoot, 'src/sdk/operations');
    for (const file of fs.readdirSync(dir)) {
      for (const op of operations(fs.readFileSync(path.join(dir, file), 'utf8'))) {
        const literal = print(
          visit(parse(op.source), {
            Argument: (a) => (/^first/.test(a.name.value) && a.value.kind === Kind.VARIABLE ? { ...a, value: { kind: Kind.INT, value: '100' } } : undefined),
          }),
        );
        expect(problems(literal), `${file} ${op.name}\n${literal}`).toEqual([]);
      }
    }
  });

  it('still refuses nested lists that multiply (100 jobs x 100 events each)', () => {
    const found = problems('{ jobs(first: 100) { nodes { id events(first: 100) { seq kind } } } }');
    expect(found.join('\n')).toMatch(/Query Cost limit of 20000 exceeded/);
  });
});
