import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { MAX_COLUMNS, compileSpec, pgType, type CompiledSpec, type SpecProblem } from '../../src/modules/specs/spec.compile';
import { dateParser } from '../../src/ingest/dates';
import { isReservedColumn, normaliseIdentifier } from '../../src/ingest/identifier';
import { MAX_PATTERN_LENGTH, checkPattern } from '../../src/ingest/pattern';

const specsDir = new URL('../fixtures/cqube/specs/', import.meta.url);

function loadFixture(file: string): unknown {
  return JSON.parse(readFileSync(new URL(file, specsDir), 'utf8'));
}

/** Compiles and fails the test with every problem printed when compilation fails. */
function compileOk(raw: unknown, name = 'spec', kind: 'EVENT' | 'DIMENSION' | 'DATASET' = 'DATASET') {
  const result = compileSpec(raw, { name, kind });
  if (!result.ok) expect.fail(`expected the spec to compile, got:\n${JSON.stringify(result.problems, null, 2)}`);
  return result;
}

function problemsOf(raw: unknown, name = 'spec'): SpecProblem[] {
  const result = compileSpec(raw, { name, kind: 'DATASET' });
  if (result.ok) expect.fail(`expected problems, the spec compiled:\n${JSON.stringify(result.spec, null, 2)}`);
  return result.problems;
}

/** A minimal valid spec around the given properties. */
function specWith(properties: Record<string, unknown>, required?: string[]): unknown {
  return { program: 'prog', input: { type: 'object', properties, ...(required ? { required } : {}) } };
}

describe('compileSpec on the cQube fixtures', () => {
  const all = readdirSync(specsDir).filter((f) => f.endsWith('.json'));
  /** The one shipped spec with a real defect: `required` names a column it never declares. */
  const DEFECTIVE = 'event.studentattendance.json';
  const files = all.filter((f) => f !== DEFECTIVE);

  it('finds every fixture spec', () => {
    expect(all.sort()).toEqual([
      'dimension.cluster.json',
      'dimension.district.json',
      'dimension.grade.json',
      'dimension.school.json',
      'event.dikshacontentplays.json',
      'event.dikshaenrolments.json',
      'event.studentattendance.json',
      'event.teacherspresent.json',
      'event.totalteachers.json',
    ]);
  });

  it('refuses the defective fixture, naming its problem', () => {
    const r = compileSpec(loadFixture(DEFECTIVE), { name: 'studentattendance', kind: 'EVENT' });
    expect(r.ok).toBe(false);
    expect(r.ok ? [] : r.problems).toEqual([
      { path: '/input/required/3', code: 'REQUIRED_NOT_IN_PROPERTIES', message: 'required column "students_marked" is not declared in input.properties' },
    ]);
  });

  it('reads keywords in any letter case (shouldnotnull, ShouldNotNull, Required, Minimum), as real collections write them', () => {
    const { spec } = compileOk(loadFixture('event.dikshaenrolments.json'), 'dikshaenrolments', 'EVENT');
    expect(spec.columns.map((c) => [c.column, c.nullable, c.required])).toEqual([
      ['date', false, true],
      ['district_id', false, true],
      ['course_id', false, true],
      ['enrolments', false, true],
    ]);
    expect(compileOk(loadFixture('event.dikshacontentplays.json'), 'dikshacontentplays', 'EVENT').spec.columns.find((c) => c.column === 'plays')!.minimum).toBe(
      0,
    );
    expect(compileOk(loadFixture('dimension.cluster.json'), 'cluster', 'DIMENSION').spec.uniqueKey).toEqual(['cluster_id']);
  });

  it('an unknown keyword in any case is still a precise problem, and one keyword twice in two cases is refused', () => {
    const r = compileSpec(
      { program: 'p', input: { type: 'object', properties: { a: { type: 'string', shouldNotNull: true, SHOULDNOTNULL: false, minimun: 1 } } } },
      { name: 'p', kind: 'EVENT' },
    );
    expect(r.ok).toBe(false);
    expect(r.ok ? [] : r.problems.map((p) => [p.path, p.code])).toEqual([
      ['/input/properties/a/SHOULDNOTNULL', 'INVALID_CONSTRAINT'],
      ['/input/properties/a/minimun', 'UNKNOWN_KEYWORD'],
    ]);
  });

  it.each(files)('compiles %s without problems or warnings', (file) => {
    const [kind, name] = file.replace('.json', '').split('.') as [string, string];
    const { spec, warnings } = compileOk(loadFixture(file), name, kind.toUpperCase() as 'EVENT' | 'DIMENSION');
    expect(warnings).toEqual([]);
    expect(spec.name).toBe(name);
    expect(spec.program).toBe(name);
    expect(spec.columns.every((c) => c.column === c.sourceName)).toBe(true);
    // Stored as jsonb: must survive a JSON round trip unchanged.
    expect(JSON.parse(JSON.stringify(spec))).toEqual(spec);
  });

  it('compiles the district dimension to the expected columns', () => {
    const { spec } = compileOk(loadFixture('dimension.district.json'), 'district', 'DIMENSION');
    expect(spec.kind).toBe('DIMENSION');
    expect(spec.uniqueKey).toEqual([]);
    expect(spec.columns.map((c) => [c.column, c.type, c.nullable, c.required])).toEqual([
      ['district_id', 'string', false, true],
      ['district_name', 'string', false, true],
      ['state_id', 'string', false, true],
      ['state_name', 'string', false, true],
      ['latitude', 'number', true, true],
      ['longitude', 'number', true, true],
    ]);
    expect(spec.columns[4]).toEqual({
      column: 'latitude',
      sourceName: 'latitude',
      type: 'number',
      nullable: true,
      required: true,
      unique: false,
      enum: null,
      minimum: null,
      maximum: null,
      minLength: null,
      maxLength: null,
      pattern: null,
      dateFormat: null,
    });
  });

  it('turns the unique flags of an event spec into one composite key, in property order', () => {
    const { spec } = compileOk(loadFixture('event.teacherspresent.json'), 'teacherspresent', 'EVENT');
    expect(spec.uniqueKey).toEqual(['district_id', 'block_id', 'cluster_id', 'school_id']);
    expect(spec.columns.find((c) => c.column === 'teachers_marked_present')?.type).toBe('number');
  });

  it('keeps the school dimension optional columns optional', () => {
    const { spec } = compileOk(loadFixture('dimension.school.json'), 'school', 'DIMENSION');
    expect(spec.columns).toHaveLength(14);
    expect(spec.columns.filter((c) => !c.required).map((c) => c.column)).toEqual(['schoolcategory_id', 'schoolmanagement_id', 'school_statecategory_id']);
  });
});

describe('pgType', () => {
  it('maps every column type to its PostgreSQL type', () => {
    expect(pgType({ type: 'string' })).toBe('text');
    expect(pgType({ type: 'number' })).toBe('double precision');
    expect(pgType({ type: 'integer' })).toBe('bigint');
    expect(pgType({ type: 'boolean' })).toBe('boolean');
    expect(pgType({ type: 'date' })).toBe('date');
  });
});

describe('identifiers', () => {
  it.each([
    ['total_no_of_plays(App and Portal)', 'total_no_of_plays_app_and_portal'],
    ['  District ID ', 'district_id'],
    ['2019 Count', '_2019_count'],
    ['__x__', 'x'],
    ['a--b..c', 'a_b_c'],
    ['Ünïcode', 'n_code'],
    ['!!!', ''],
  ])('normalises %j to %j', (input, expected) => {
    expect(normaliseIdentifier(input)).toBe(expected);
  });

  it('keeps the spec name and the SQL name, and warns about the rename', () => {
    const { spec, warnings } = compileOk(specWith({ 'total_no_of_plays(App and Portal)': { type: 'integer' } }));
    expect(spec.columns[0]).toMatchObject({ column: 'total_no_of_plays_app_and_portal', sourceName: 'total_no_of_plays(App and Portal)' });
    expect(warnings).toEqual([
      {
        path: '/input/properties/total_no_of_plays(App and Portal)',
        code: 'COLUMN_RENAMED',
        message: '"total_no_of_plays(App and Portal)" is stored in the column "total_no_of_plays_app_and_portal"',
      },
    ]);
  });

  it('rejects two properties that normalise to the same column', () => {
    const problems = problemsOf(specWith({ district_id: { type: 'string' }, 'District ID': { type: 'string' } }));
    expect(problems).toEqual([
      {
        path: '/input/properties/District ID',
        code: 'DUPLICATE_COLUMN',
        message: '"District ID" and "district_id" both normalise to the column "district_id"',
      },
    ]);
  });

  it('rejects names longer than 63 characters after normalisation, naming the length and the limit', () => {
    const long = 'a'.repeat(64);
    const problems = problemsOf(specWith({ [long]: { type: 'string' }, ok: { type: 'string' } }));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ code: 'INVALID_IDENTIFIER', path: `/input/properties/${long}` });
    expect(problems[0]!.message).toContain('64 characters; the limit is 63');
    expect(compileSpec(specWith({ ['a'.repeat(63)]: { type: 'string' } }), { name: 's', kind: 'EVENT' }).ok).toBe(true);
  });

  it('rejects names with no letters or digits', () => {
    expect(problemsOf(specWith({ '()': { type: 'string' } }))).toEqual([
      { path: '/input/properties/()', code: 'INVALID_IDENTIFIER', message: '"()" has no letters or digits, so it cannot be a SQL identifier' },
    ]);
  });

  it('escapes JSON Pointer characters in problem paths', () => {
    const problems = problemsOf(specWith({ 'a/b~c': { type: 'text' } }));
    expect(problems.map((p) => p.path)).toEqual(['/input/properties/a~1b~0c/type']);
  });

  it('reserves the columns Sluice adds itself', () => {
    for (const name of ['_file_id', '_line', '_ingested_at', '_sluice', '_sluice_anything']) expect(isReservedColumn(name)).toBe(true);
    for (const name of ['file_id', 'line', 'ingested_at', 'sluice', '_2019']) expect(isReservedColumn(name)).toBe(false);
    // Normalisation drops leading underscores, so a spec property can never land on a reserved name.
    const { spec } = compileOk(specWith({ _file_id: { type: 'string' }, _line: { type: 'integer' } }));
    expect(spec.columns.map((c) => c.column)).toEqual(['file_id', 'line']);
  });

  it('refuses PostgreSQL system column names and keeps SQL key words as column names', () => {
    const problems = problemsOf(specWith({ ctid: { type: 'string' }, ' XMin ': { type: 'string' }, tableoid: { type: 'string' } }));
    expect(problems.map((p) => [p.path, p.code])).toEqual([
      ['/input/properties/ctid', 'SYSTEM_COLUMN'],
      ['/input/properties/ XMin ', 'SYSTEM_COLUMN'],
      ['/input/properties/tableoid', 'SYSTEM_COLUMN'],
    ]);
    const { spec } = compileOk(specWith({ user: { type: 'string' }, order: { type: 'integer' }, current_user: { type: 'string' }, oid: { type: 'string' } }));
    expect(spec.columns.map((c) => c.column)).toEqual(['user', 'order', 'current_user', 'oid']);
  });

  it('normalises program and spec names and warns, and rejects unusable ones', () => {
    const renamed = compileOk({ ...(specWith({ a: { type: 'string' } }) as object), program: 'Teachers Present' }, 'Attendance 2023');
    expect(renamed.spec.program).toBe('teachers_present');
    expect(renamed.spec.name).toBe('attendance_2023');
    expect(renamed.warnings.map((w) => [w.path, w.code])).toEqual([
      ['$name', 'NAME_NORMALISED'],
      ['/program', 'NAME_NORMALISED'],
    ]);

    const problems = problemsOf({ ...(specWith({ a: { type: 'string' } }) as object), program: '%%%' }, '***');
    expect(problems.map((p) => [p.path, p.code])).toEqual([
      ['$name', 'INVALID_IDENTIFIER'],
      ['/program', 'INVALID_IDENTIFIER'],
    ]);
  });
});

describe('compileSpec problems', () => {
  it('reports every problem of a bad spec at once, each with its path and code', () => {
    const problems = problemsOf({
      program: 'prog',
      extra: true,
      input: {
        type: 'object',
        properties: {
          id: { type: 'string', shouldNotNull: 'yes' },
          score: { type: 'float' },
          grade: { type: 'integer', minimun: 1 },
          name: { type: 'number', minLength: 2 },
          day: { type: 'date', dateFormat: 'MM/DD/YYYY' },
          code: { type: 'string', pattern: '(a+)+$' },
          tag: { type: 'string', pattern: '([a-z' },
          '???': { type: 'string' },
        },
        required: ['id', 'missing_col', 42],
      },
    });
    expect(problems.map((p) => [p.code, p.path])).toEqual([
      ['UNKNOWN_KEYWORD', '/extra'],
      ['INVALID_CONSTRAINT', '/input/properties/id/shouldNotNull'],
      ['UNKNOWN_TYPE', '/input/properties/score/type'],
      ['UNKNOWN_KEYWORD', '/input/properties/grade/minimun'],
      ['INVALID_CONSTRAINT', '/input/properties/name/minLength'],
      ['INVALID_DATE_FORMAT', '/input/properties/day/dateFormat'],
      ['UNSAFE_PATTERN', '/input/properties/code/pattern'],
      ['INVALID_PATTERN', '/input/properties/tag/pattern'],
      ['INVALID_IDENTIFIER', '/input/properties/???'],
      ['REQUIRED_NOT_IN_PROPERTIES', '/input/required/1'],
      ['INVALID_JSON_SHAPE', '/input/required/2'],
    ]);
    const byCode = (code: string) => problems.find((p) => p.code === code)!.message;
    expect(byCode('UNKNOWN_TYPE')).toBe('type is "float"; expected one of string, number, integer, boolean, date');
    expect(byCode('REQUIRED_NOT_IN_PROPERTIES')).toBe('required column "missing_col" is not declared in input.properties');
    expect(byCode('INVALID_DATE_FORMAT')).toBe('dateFormat string "MM/DD/YYYY" is not one of YYYY-MM-DD, DD/MM/YY, DD/MM/YYYY');
    expect(byCode('UNKNOWN_KEYWORD')).toContain('unknown keyword "extra"');
  });

  it('rejects more than MAX_COLUMNS columns, naming the count and the limit', () => {
    expect(MAX_COLUMNS).toBe(200);
    const props = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`c${i}`, { type: 'string' }]));
    expect(compileSpec(specWith(props(MAX_COLUMNS)), { name: 's', kind: 'DATASET' }).ok).toBe(true);
    expect(problemsOf(specWith(props(MAX_COLUMNS + 1)))).toEqual([
      { path: '/input/properties', code: 'TOO_MANY_COLUMNS', message: 'input.properties declares 201 columns; the limit is 200' },
    ]);
  });

  it('rejects shapes that are not a cQube spec', () => {
    expect(problemsOf(null)).toEqual([{ path: '', code: 'INVALID_JSON_SHAPE', message: 'a spec must be a JSON object, got null' }]);
    expect(problemsOf([1, 2]).map((p) => p.code)).toEqual(['INVALID_JSON_SHAPE']);
    expect(problemsOf({ program: 'p' }).map((p) => [p.path, p.code])).toEqual([['/input', 'INVALID_JSON_SHAPE']]);
    expect(problemsOf({ program: 3, input: { type: 'array', properties: [] } }).map((p) => [p.path, p.code])).toEqual([
      ['/program', 'INVALID_JSON_SHAPE'],
      ['/input/type', 'INVALID_JSON_SHAPE'],
      ['/input/properties', 'INVALID_JSON_SHAPE'],
    ]);
    expect(problemsOf(specWith({})).map((p) => p.code)).toEqual(['NO_COLUMNS']);
    expect(problemsOf(specWith({ a: 'string' })).map((p) => [p.path, p.code])).toEqual([['/input/properties/a', 'INVALID_JSON_SHAPE']]);
    expect(problemsOf(specWith({ a: { type: 'string' } }, 'a' as never)).map((p) => p.code)).toEqual(['INVALID_JSON_SHAPE']);
  });

  it('rejects an unknown kind', () => {
    const result = compileSpec(specWith({ a: { type: 'string' } }), { name: 's', kind: 'TABLE' as never });
    expect(result.ok).toBe(false);
    expect(!result.ok && result.problems).toEqual([
      { path: '$kind', code: 'INVALID_JSON_SHAPE', message: 'kind "TABLE" is not one of EVENT, DIMENSION, DATASET' },
    ]);
  });

  it('checks that each constraint applies to the column type and has a sane value', () => {
    const problems = problemsOf(
      specWith({
        a: { type: 'boolean', enum: [true] },
        b: { type: 'string', minimum: 1 },
        c: { type: 'number', minimum: 10, maximum: 1 },
        d: { type: 'string', minLength: 5, maxLength: 2 },
        e: { type: 'string', maxLength: -1 },
        f: { type: 'integer', enum: [1, 2.5] },
        g: { type: 'string', enum: ['x', 1] },
        h: { type: 'string', enum: [] },
        i: { type: 'number', pattern: '^a$' },
        j: { type: 'string', dateFormat: 'DD/MM/YY' },
        k: { type: 'string', format: 'email' },
        l: { type: 'integer', format: 'date' },
        m: { type: 'number', maximum: 'ten' },
      }),
    );
    expect(problems.map((p) => `${p.path} ${p.code}: ${p.message}`)).toEqual([
      '/input/properties/a/enum INVALID_CONSTRAINT: enum does not apply to boolean columns (only string, number, integer)',
      '/input/properties/b/minimum INVALID_CONSTRAINT: minimum does not apply to string columns (only number, integer)',
      '/input/properties/c/minimum INVALID_CONSTRAINT: minimum 10 is greater than maximum 1',
      '/input/properties/d/minLength INVALID_CONSTRAINT: minLength 5 is greater than maxLength 2',
      '/input/properties/e/maxLength INVALID_CONSTRAINT: maxLength must be a whole number of characters >= 0, got number -1',
      '/input/properties/f/enum INVALID_CONSTRAINT: enum of a integer column must hold integers; item 1 is number 2.5',
      '/input/properties/g/enum INVALID_CONSTRAINT: enum of a string column must hold strings; item 1 is number 1',
      '/input/properties/h/enum INVALID_CONSTRAINT: enum must be a non-empty array, got array []',
      '/input/properties/i/pattern INVALID_CONSTRAINT: pattern does not apply to number columns (only string)',
      '/input/properties/j/dateFormat INVALID_CONSTRAINT: dateFormat applies to date columns only; add "format": "date" or use type "date" (this column is string)',
      '/input/properties/k/format INVALID_CONSTRAINT: format "email" is not supported; the only format is "date"',
      '/input/properties/l/format INVALID_CONSTRAINT: format "date" needs type "string" or "date", not "integer"',
      '/input/properties/m/maximum INVALID_CONSTRAINT: maximum must be a finite number, got string "ten"',
    ]);
  });

  it('accepts annotations and compiles every constraint into plain data', () => {
    const { spec } = compileOk({
      $schema: 'http://json-schema.org/draft-07/schema#',
      description: 'attendance',
      program: 'attendance',
      input: {
        type: 'object',
        description: 'one row per student per day',
        properties: {
          day: { type: 'string', format: 'date', dateFormat: 'DD/MM/YY', shouldNotNull: true, unique: true },
          iso_day: { type: 'date' },
          student: { type: 'string', minLength: 3, maxLength: 12, pattern: '^stu_\\d+$', unique: true, title: 'Student' },
          section: { type: 'string', enum: ['A', 'B'] },
          grade: { type: 'integer', minimum: 1, maximum: 12, enum: [1, 2, 3] },
          present: { type: 'boolean' },
        },
        required: ['Day', 'student'],
      },
    });
    expect(spec.uniqueKey).toEqual(['day', 'student']);
    expect(spec.columns.map((c) => [c.column, c.type, c.dateFormat, c.required])).toEqual([
      ['day', 'date', 'DD/MM/YY', true],
      ['iso_day', 'date', 'YYYY-MM-DD', false],
      ['student', 'string', null, true],
      ['section', 'string', null, false],
      ['grade', 'integer', null, false],
      ['present', 'boolean', null, false],
    ]);
    expect(spec.columns[2]).toMatchObject({ minLength: 3, maxLength: 12, pattern: '^stu_\\d+$' });
    expect(spec.columns[3]!.enum).toEqual(['A', 'B']);
    expect(spec.columns[4]).toMatchObject({ minimum: 1, maximum: 12, enum: [1, 2, 3] });
    const roundTrip: CompiledSpec = JSON.parse(JSON.stringify(spec));
    expect(roundTrip).toEqual(spec);
  });
});

describe('pattern screening', () => {
  it.each([
    ['(a+)+', 'repeats the group "(a+)"'],
    ['(a*)*$', 'repeats the group "(a*)"'],
    ['^(a|aa)+$', 'repeats the group "(a|aa)"'],
    ['(\\w?)+x', 'repeats the group "(\\\\w?)"'], // JSON.stringify doubles the backslash
    ['((ab)*c)+', 'repeats the group "((ab)*c)"'],
    ['(?:x+y?){2,}', 'repeats the group "(?:x+y?)"'],
    ['(?<word>[a-z]+)*', 'repeats the group "(?<word>[a-z]+)"'],
    ['(a)\\1', 'uses a backreference (\\1)'],
    ['(?<x>a)\\k<x>', 'uses a backreference (\\k<...>)'],
  ])('rejects %s as unsafe', (pattern, reason) => {
    const checked = checkPattern(pattern);
    expect(checked.ok).toBe(false);
    expect(!checked.ok && checked.code).toBe('UNSAFE_PATTERN');
    expect(!checked.ok && checked.message).toContain(reason);
  });

  it.each([
    ['^\\d+\\d+\\d+x', 'has 3 variable-length parts in a row'],
    ['\\d+\\d+x', 'an unanchored pattern counts one more'],
    ['\\d*\\d*\\d*x', 'has 4 variable-length parts in a row'],
    ['^a?a?a?aaa$', 'has 3 variable-length parts in a row'],
    ['^\\d*5\\d*5\\d*$', 'has 3 variable-length parts in a row'],
    ['.*foo.*', 'an unanchored pattern counts one more'],
  ])('rejects %s, whose overlapping quantifiers backtrack polynomially', (pattern, reason) => {
    const checked = checkPattern(pattern);
    expect(!checked.ok && checked.code).toBe('UNSAFE_PATTERN');
    expect(!checked.ok && checked.message).toContain(reason);
  });

  it.each([
    '^\\w+@\\w+\\.\\w+$',
    '^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,}$',
    '^\\d+\\d+x',
    'a+b',
    '^[^,]+,[^,]+$',
    '^.*foo.*$',
    '^[A-Z]+[a-z]+[A-Z]+$',
  ])('accepts %s, whose quantifiers are separated or at most two deep', (pattern) => {
    const checked = checkPattern(pattern);
    expect(checked.ok ? null : checked.message).toBeNull();
  });

  it('rejects patterns over the length limit, naming the length and the limit', () => {
    const checked = checkPattern('a'.repeat(MAX_PATTERN_LENGTH + 1));
    expect(checked).toEqual({ ok: false, code: 'UNSAFE_PATTERN', message: 'pattern is 201 characters long; the limit is 200' });
    expect(checkPattern('a'.repeat(MAX_PATTERN_LENGTH)).ok).toBe(true);
  });

  it.each([
    '^[0-9]{10}$',
    '^(\\d{3}-)+\\d{4}$',
    '^[A-Z]{2}\\d+$',
    '(?:ab)+',
    '^\\p{L}+$',
    '^[(+*)]+$',
    '^\\u{1F600}+$',
    '(?=a)(?!b)(?<=c)(?<!d)x',
    'a{2}(bc){3}',
  ])('accepts the safe pattern %s', (pattern) => {
    const checked = checkPattern(pattern);
    expect(checked.ok ? null : checked.message).toBeNull();
  });

  it.each(['(', '[z-a]', '\\p{NotAProperty}', 'a{2,1}'])('reports %s as an invalid regular expression', (pattern) => {
    const checked = checkPattern(pattern);
    expect(checked.ok).toBe(false);
    expect(!checked.ok && checked.code).toBe('INVALID_PATTERN');
  });

  it('compiles with the u flag', () => {
    const checked = checkPattern('^.$');
    expect(checked.ok && checked.regex.flags).toBe('u');
    expect(checked.ok && checked.regex.test('😀')).toBe(true);
  });
});

describe('date formats', () => {
  const ddmmyy = dateParser('DD/MM/YY');
  const ddmmyyyy = dateParser('DD/MM/YYYY');
  const iso = dateParser('YYYY-MM-DD');

  it('reads DD/MM/YY with two-digit years in 2000-2099', () => {
    expect(ddmmyy('28/02/23')).toBe('2023-02-28');
    expect(ddmmyy('01/01/00')).toBe('2000-01-01');
    expect(ddmmyy('31/12/99')).toBe('2099-12-31');
    expect(ddmmyy('1/3/23')).toBe('2023-03-01');
    expect(ddmmyy('29/02/24')).toBe('2024-02-29');
  });

  it.each([
    '31/02/23',
    '29/02/23',
    '00/01/23',
    '32/01/23',
    '10/13/23',
    '10/00/23',
    '28/02/2023',
    '28-02-23',
    '28/02/2',
    '/02/23',
    '123/02/23',
    'ab/cd/ef',
    '28/02/23 ',
    '',
  ])('rejects %j as DD/MM/YY', (text) => {
    expect(ddmmyy(text)).toBeNull();
  });

  it('reads DD/MM/YYYY with leap years', () => {
    expect(ddmmyyyy('28/02/2023')).toBe('2023-02-28');
    expect(ddmmyyyy('29/02/2000')).toBe('2000-02-29');
    expect(ddmmyyyy('29/02/1900')).toBeNull();
    expect(ddmmyyyy('31/04/2023')).toBeNull();
    expect(ddmmyyyy('28/02/23')).toBeNull();
    expect(ddmmyyyy('01/01/0000')).toBeNull();
  });

  it('reads ISO dates strictly', () => {
    expect(iso('2024-02-29')).toBe('2024-02-29');
    expect(iso('2023-02-29')).toBeNull();
    expect(iso('2023-13-01')).toBeNull();
    expect(iso('2023-1-01')).toBeNull();
    expect(iso('2023/01/01')).toBeNull();
    expect(iso('0000-01-01')).toBeNull();
    expect(iso('2023-01-01T00:00')).toBeNull();
  });
});

describe('header extensions: aliases and onUnknownColumns', () => {
  it('compiles aliases onto their column and onUnknownColumns (any letter case) onto the spec; absent stays absent', () => {
    const { spec } = compileOk({
      ...(specWith({ school_id: { type: 'string', Aliases: ['School Code', 'udise'] }, n: { type: 'integer' } }) as object),
      OnUnknownColumns: 'ignore',
    });
    expect(spec.columns[0]!.aliases).toEqual(['School Code', 'udise']);
    expect('aliases' in spec.columns[1]!).toBe(false);
    expect(spec.onUnknownColumns).toBe('IGNORE');
    expect('onUnknownColumns' in compileOk(specWith({ a: { type: 'string' } })).spec).toBe(false);
  });

  it('refuses bad aliases and policies with a precise path', () => {
    expect(problemsOf(specWith({ a: { type: 'string', aliases: 'b' } }))).toEqual([
      expect.objectContaining({ path: '/input/properties/a/aliases', code: 'INVALID_CONSTRAINT' }),
    ]);
    expect(problemsOf(specWith({ a: { type: 'string', aliases: ['ok', ''] } }))).toEqual([
      expect.objectContaining({ path: '/input/properties/a/aliases/1', code: 'INVALID_CONSTRAINT' }),
    ]);
    expect(problemsOf(specWith({ a: { type: 'string', aliases: Array.from({ length: 21 }, (_, i) => `x${i}`) } }))).toEqual([
      expect.objectContaining({ code: 'INVALID_CONSTRAINT', message: expect.stringContaining('limit is 20') }),
    ]);
    expect(problemsOf(specWith({ a: { type: 'string', aliases: ['B '] }, b: { type: 'string' } }))).toEqual([
      expect.objectContaining({ path: '/input/properties/a/aliases/0', code: 'DUPLICATE_COLUMN', message: 'alias "B " of "a" already names the column "b"' }),
    ]);
    expect(problemsOf(specWith({ a: { type: 'string', aliases: ['x'] }, b: { type: 'string', aliases: ['X'] } }))).toEqual([
      expect.objectContaining({ path: '/input/properties/b/aliases/0', code: 'DUPLICATE_COLUMN' }),
    ]);
    expect(problemsOf({ ...(specWith({ a: { type: 'string' } }) as object), onUnknownColumns: true })).toEqual([
      expect.objectContaining({ path: '/onUnknownColumns', code: 'INVALID_CONSTRAINT' }),
    ]);
  });
});
