// Every query and mutation of the schema (read by introspection) with random arguments: no
// answer may be a 5xx or carry INTERNAL_SERVER_ERROR or an error without a code. Seeds a spec and
// a few uploads first, so that real ids are among the values. Skips the operations that would
// lock the fuzzer out (issueToken, revoking or rotating clients).
// Usage: SLUICE_URL=… SLUICE_CLIENT_ID=… SLUICE_CLIENT_SECRET=… node scripts/fuzz/graphql.mjs [seed] [count]
import { adminToken, COUNT, errorCodes, GRAPHQL, random, report } from './lib.mjs';

const token = await adminToken();
const auth = { authorization: `Bearer ${token}` };
const post = async (body, headers = auth) => {
  const r = await fetch(GRAPHQL, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  return { status: r.status, text: await r.text() };
};

// A spec of every column kind the fuzzer's files can exercise (a key, an enum, an integer, a date, a boolean).
const spec = {
  program: 'fuzz_attendance',
  input: {
    type: 'object',
    properties: {
      code: { type: 'string', shouldNotNull: true, unique: true },
      kind: { type: 'string', enum: ['a', 'b'] },
      count: { type: 'integer', minimum: 0, maximum: 1000 },
      day: { type: 'date', dateFormat: 'DD/MM/YY' },
      active: { type: 'boolean' },
    },
    required: ['code'],
  },
};
await post({ query: 'mutation ($s: JSON!) { registerSpec(kind: EVENT, spec: $s) { __typename } }', variables: { s: spec } });
const ids = [];
for (const csv of ['code,kind,count,day,active\nc1,a,3,01/03/23,true\n', 'code,kind,count,day,active\nc1,z,x,31/02/23,maybe\nc1,b,4,,false\n', 'a,b\n1,2\n']) {
  const form = new FormData();
  const query = 'mutation ($file: Upload!) { uploadFile(program: "fuzz_attendance", spec: "fuzz_attendance", file: $file) { file { id } job { id } } }';
  form.set('operations', JSON.stringify({ query, variables: { file: null } }));
  form.set('map', JSON.stringify({ 0: ['variables.file'] }));
  form.set('0', new Blob([csv]), 'a.csv');
  const r = await fetch(GRAPHQL, { method: 'POST', headers: { ...auth, 'apollo-require-preflight': 'true' }, body: form });
  for (const m of (await r.text()).matchAll(/"id":"([^"]+)"/g)) ids.push(m[1]);
}

const intro = JSON.parse(
  (
    await post({
      query:
        '{ __schema { queryType { name } mutationType { name } types { kind name enumValues { name } inputFields { name type { ...T } } fields { name args { name type { ...T } } type { ...T } } } } } fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } }',
    })
  ).text,
).data.__schema;
const types = new Map(intro.types.map((t) => [t.name, t]));
const { rnd, pick } = random();
const STRINGS = [
  '',
  'a',
  'x'.repeat(5000),
  '\u0000',
  '../../etc/passwd',
  "'; drop table files; --",
  '😀',
  '\ud800',
  'fuzz_attendance',
  '2026-01-01',
  'not-a-uuid',
  '00000000-0000-0000-0000-000000000000',
  '{"a":1}',
  '%s%n',
  ' ',
  'eyJhbGciOi.x.y',
  '-1',
  '1e309',
  ...ids,
  ...ids,
];
const INTS = [0, -1, 1, 2147483647, -2147483648, 2147483648, 1e15, 3.5, 'NaN'];

function value(t, depth = 0) {
  if (t.kind === 'NON_NULL') return value(t.ofType, depth);
  if (rnd() < 0.05) return null;
  if (t.kind === 'LIST') return Array.from({ length: Math.floor(rnd() * 4) }, () => value(t.ofType, depth + 1));
  const def = types.get(t.name);
  if (t.kind === 'SCALAR') {
    if (t.name === 'Int') return pick(INTS);
    if (t.name === 'Float') return pick([0, -1, 1.5, 1e308, -1e308]);
    if (t.name === 'Boolean') return rnd() < 0.5;
    if (t.name === 'Upload') return null;
    return rnd() < 0.8 ? pick(STRINGS) : pick(INTS);
  }
  if (t.kind === 'ENUM') return rnd() < 0.9 ? pick(def.enumValues).name : 'NOPE';
  if (t.kind === 'INPUT_OBJECT') {
    if (depth > 4) return null;
    const o = {};
    for (const f of def.inputFields) if (rnd() < 0.8) o[f.name] = value(f.type, depth + 1);
    return o;
  }
  return null;
}
const named = (t) => (t.ofType ? named(t.ofType) : t);
const typeText = (t) => (t.kind === 'NON_NULL' ? `${typeText(t.ofType)}!` : t.kind === 'LIST' ? `[${typeText(t.ofType)}]` : t.name);
function selection(t, depth) {
  const def = types.get(named(t).name);
  if (!def.fields) return def.kind === 'UNION' || def.kind === 'INTERFACE' ? '{ __typename }' : '';
  if (depth > 2) return '{ __typename }';
  const fields = def.fields.filter((f) => f.args.every((a) => a.type.kind !== 'NON_NULL') && rnd() < 0.5);
  return `{ __typename ${fields
    .slice(0, 6)
    .map((f) => `${f.name} ${selection(f.type, depth + 1)}`)
    .join(' ')} }`;
}

const SKIP = /^(revoke|delete|rotate|issueToken|setClient|updateClient|disable)/i;
const ops = [];
for (const [kind, root] of [
  ['query', intro.queryType.name],
  ['mutation', intro.mutationType.name],
])
  for (const f of types.get(root).fields) if (!SKIP.test(f.name)) ops.push({ kind, f });
const out = report('graphql');
for (let i = 0; i < COUNT; i++) {
  const { kind, f } = pick(ops);
  const vars = {};
  const decl = [];
  const args = [];
  for (const a of f.args) {
    if (a.type.kind !== 'NON_NULL' && rnd() < 0.4) continue;
    decl.push(`$${a.name}: ${typeText(a.type)}`);
    args.push(`${a.name}: $${a.name}`);
    vars[a.name] = value(a.type);
  }
  const query = `${kind} ${decl.length ? `(${decl.join(', ')})` : ''} { ${f.name}${args.length ? `(${args.join(', ')})` : ''} ${selection(f.type, 0)} }`;
  const r = await post({ query, variables: vars }, rnd() < 0.9 ? auth : {});
  const codes = errorCodes(r.text);
  if (r.status >= 500 || codes.includes('INTERNAL_SERVER_ERROR') || codes.includes(undefined) || codes.includes('UNPARSEABLE')) {
    out.bad(`${r.status} ${f.name} ${JSON.stringify(vars).slice(0, 300)} => ${r.text.slice(0, 300)}`);
  }
}
await out.done(COUNT);
