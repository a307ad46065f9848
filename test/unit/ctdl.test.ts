import { describe, expect, it } from 'vitest';
import { competencyDetails, CtdlError, ctidOf, parseFrameworkDocument, pickLanguage, shortName, uriList } from '../../src/modules/skills/ctdl';
import { parseFrameworkRefs } from '../../src/modules/skills/framework-ref';
import { FIXTURE_FRAMEWORK, fixtureGraph, fixtureResource } from '../helpers/registry';

const LANGS = ['en-US', 'en'];
const C = (n: number) => `ce-7c1e000${n}-2b3a-4c5d-8e9f-00000000000${n}`;
const R = (ctid: string) => `https://credentialengineregistry.org/resources/${ctid}`;

describe('parseFrameworkDocument with the fixture graph', () => {
  it('finds the framework and rebuilds the tree', async () => {
    const fw = parseFrameworkDocument(await fixtureGraph(), FIXTURE_FRAMEWORK, LANGS);
    expect(fw.ctid).toBe(FIXTURE_FRAMEWORK);
    expect(fw.name).toBe('Information Systems Foundations Competency Framework');
    expect(fw.problems).toEqual([]);
    const byCtid = new Map(fw.competencies.map((c) => [c.ctid, c]));
    expect([...byCtid.keys()]).toEqual([1, 2, 3, 4, 5, 6].map(C));
    expect(byCtid.get(C(1))).toMatchObject({
      name: 'Operating Systems',
      description: 'Analyze how operating systems manage hardware and software resources',
      referenceId: 'IDS-20252',
      category: 'IDS: Information Systems',
      keywords: ['Operating Systems', 'Computer Architecture'],
      parentCtids: [],
      childCtids: [C(2), C(3)],
      uri: R(C(1)),
    });
    expect(byCtid.get(C(2))!.parentCtids).toEqual([C(1)]);
    expect(byCtid.get(C(4))!.childCtids).toEqual([C(5)]);
    expect(byCtid.get(C(5))).toMatchObject({
      parentCtids: [C(4)],
      childCtids: [C(6)],
      name: 'Assign IP addressing schemes and subnet masks for a given topology',
    });
    // No label, no codedNotation: a name from the text and the CTID as reference.
    expect(byCtid.get(C(6))).toMatchObject({ name: 'Calculate the usable host range of a /26 subnet', referenceId: C(6), parentCtids: [C(5)], category: null });
  });

  it('finds the framework by @type wherever it is in @graph', async () => {
    const doc = await fixtureGraph();
    doc['@graph'].push(doc['@graph'].shift()!);
    const fw = parseFrameworkDocument(doc, FIXTURE_FRAMEWORK, LANGS);
    expect(fw.name).toBe('Information Systems Foundations Competency Framework');
    expect(fw.competencies).toHaveLength(6);
  });

  it('reads a /resources document (one node) as a framework without competencies', async () => {
    const fw = parseFrameworkDocument(await fixtureResource(), FIXTURE_FRAMEWORK, LANGS);
    expect(fw.competencies).toEqual([]);
    expect(fw.name).toBe('Information Systems Foundations Competency Framework');
  });

  it('refuses a document that is not the framework asked for', async () => {
    const doc = await fixtureGraph();
    expect(() => parseFrameworkDocument(doc, 'ce-00000000-0000-4000-8000-000000000000', LANGS)).toThrow(/describes framework ce-5b2f0c71/);
    doc['@graph'] = doc['@graph'].filter((n) => n['@type'] !== 'ceasn:CompetencyFramework');
    try {
      parseFrameworkDocument(doc, FIXTURE_FRAMEWORK, LANGS);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(CtdlError);
      expect((err as CtdlError).code).toBe('NOT_A_FRAMEWORK');
    }
    expect(() => parseFrameworkDocument([1, 2], FIXTURE_FRAMEWORK, LANGS)).toThrow(/not a JSON object/);
    expect(() => parseFrameworkDocument({ '@graph': {} }, FIXTURE_FRAMEWORK, LANGS)).toThrow(/@graph is not an array/);
  });

  it('builds the same tree from hasChild alone, from isChildOf alone, and with string or array URIs', async () => {
    const onlyHasChild = await fixtureGraph();
    for (const n of onlyHasChild['@graph']) delete n['ceasn:isChildOf'];
    const onlyIsChildOf = await fixtureGraph();
    for (const n of onlyIsChildOf['@graph']) {
      delete n['ceasn:hasChild'];
      // Single-valued as a plain string, and isPartOf as an array.
      const parents = n['ceasn:isChildOf'] as string[] | undefined;
      if (parents?.length === 1) n['ceasn:isChildOf'] = parents[0];
      if (typeof n['ceasn:isPartOf'] === 'string') n['ceasn:isPartOf'] = [n['ceasn:isPartOf']];
    }
    const tree = (doc: unknown) => parseFrameworkDocument(doc, FIXTURE_FRAMEWORK, LANGS).competencies.map((c) => [c.ctid, c.parentCtids, c.childCtids]);
    const expected = tree(await fixtureGraph());
    expect(tree(onlyHasChild)).toEqual(expected);
    expect(tree(onlyIsChildOf)).toEqual(expected);
  });

  it('skips competencies of another framework and reports ones without text or CTID', async () => {
    const doc = await fixtureGraph();
    const g = doc['@graph'];
    g.find((n) => n['ceterms:ctid'] === C(3))!['ceasn:isPartOf'] = R('ce-11111111-1111-4111-8111-111111111111');
    delete g.find((n) => n['ceterms:ctid'] === C(6))!['ceasn:competencyText'];
    g.push({ '@type': 'ceasn:Competency', 'ceasn:competencyText': { en: 'no id' } });
    const fw = parseFrameworkDocument(doc, FIXTURE_FRAMEWORK, LANGS);
    expect(fw.competencies.map((c) => c.ctid)).toEqual([1, 2, 4, 5].map(C));
    // Each skip is reported with the competency's CTID, and so is the link to the foreign one.
    expect(fw.problems.map((p) => [p.code, p.ctid, p.skipped]).sort()).toEqual(
      [
        ['DANGLING_REFERENCE', C(1), false],
        ['MISSING_CTID', null, true],
        ['MISSING_TEXT', C(6), true],
        ['OTHER_FRAMEWORK', C(3), true],
      ].sort(),
    );
    // The tree only links kept competencies.
    expect(fw.competencies.find((c) => c.ctid === C(1))!.childCtids).toEqual([C(2)]);
    expect(fw.competencies.find((c) => c.ctid === C(5))!.childCtids).toEqual([]);
  });
});

describe('pickLanguage', () => {
  it('matches keys case-insensitively in preference order, then any language', () => {
    expect(pickLanguage({ 'en-us': 'lower' }, LANGS)).toEqual(['lower']);
    expect(pickLanguage({ es: 'hola', en: 'hello', 'EN-US': 'howdy' }, LANGS)).toEqual(['howdy']);
    expect(pickLanguage({ es: 'hola', en: 'hello' }, LANGS)).toEqual(['hello']);
    expect(pickLanguage({ es: 'hola', fr: 'salut' }, LANGS)).toEqual(['hola']);
    expect(pickLanguage({ es: 'hola', 'en-US': '' }, LANGS)).toEqual(['hola']);
    expect(pickLanguage({ es: 'hola', en: 'hello' }, ['es'])).toEqual(['hola']);
    expect(pickLanguage({ 'en-US': ['a', 'b'] }, LANGS)).toEqual(['a', 'b']);
    expect(pickLanguage('plain', LANGS)).toEqual(['plain']);
    expect(pickLanguage(undefined, LANGS)).toEqual([]);
  });

  it('uses the preference for the text of the fixture’s bilingual competency', async () => {
    const fw = parseFrameworkDocument(await fixtureGraph(), FIXTURE_FRAMEWORK, ['es', 'en-US']);
    expect(fw.competencies.find((c) => c.ctid === C(6))!.description).toBe('Calcular el rango de hosts utilizables de una subred /26');
  });
});

describe('helpers', () => {
  it('uriList accepts a string, an array or @id objects', () => {
    expect(uriList('a')).toEqual(['a']);
    expect(uriList(['a', { '@id': 'b' }, 3, ''])).toEqual(['a', 'b']);
    expect(uriList(undefined)).toEqual([]);
  });

  it('ctidOf reads a CTID from a URI of any registry host', () => {
    expect(ctidOf(R(C(1)))).toBe(C(1));
    expect(ctidOf(`https://sandbox.credentialengineregistry.org/graph/${C(1).toUpperCase()}`)).toBe(C(1));
    expect(ctidOf('https://example.org/other')).toBeNull();
  });

  it('shortName cuts long text at a word', () => {
    expect(shortName('Do a thing. Then more.')).toBe('Do a thing');
    const long = shortName('word '.repeat(40));
    expect(long.length).toBeLessThanOrEqual(80);
    expect(long.endsWith('…')).toBe(true);
  });
});

describe('parseFrameworkRefs', () => {
  const origin = 'https://credentialengineregistry.org';
  it('accepts CTIDs and /resources or /graph URLs on the registry, deduplicated', () => {
    const { refs, problems } = parseFrameworkRefs(
      [FIXTURE_FRAMEWORK.toUpperCase().replace('CE-', 'ce-'), `${origin}/resources/${FIXTURE_FRAMEWORK}`, `${origin}/graph/${C(1)}`],
      origin,
    );
    expect(problems).toEqual([]);
    expect(refs.map((r) => r.ctid)).toEqual([FIXTURE_FRAMEWORK, C(1)]);
  });

  it('names every bad entry', () => {
    const { problems } = parseFrameworkRefs(
      [
        'nonsense',
        'ce-123',
        `https://evil.example/resources/${FIXTURE_FRAMEWORK}`,
        `http://credentialengineregistry.org/resources/${FIXTURE_FRAMEWORK}`,
        `${origin}/ctdl/${FIXTURE_FRAMEWORK}`,
        `${origin}/resources/${FIXTURE_FRAMEWORK}?x=1`,
        `https://user:pw@credentialengineregistry.org/resources/${FIXTURE_FRAMEWORK}`,
        '',
      ],
      origin,
    );
    expect(problems.map((p) => p.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(problems[2]!.message).toMatch(/competencyFrameworks\[2\] "https:\/\/evil.example.*is not on the configured registry/);
  });
});

describe('CTDL as published: the shapes real documents take', () => {
  const FW = 'ce-0b0b0b0b-1111-4222-8333-444444444444';
  const UUID = (n: number) => `7c1e000${n}-2b3a-4c5d-8e9f-00000000000${n}`;
  const framework = (extra: Record<string, unknown> = {}) => ({
    '@id': R(FW),
    '@type': 'ceasn:CompetencyFramework',
    'ceterms:ctid': FW,
    'ceasn:name': { 'en-us': 'Old shapes' },
    ...extra,
  });
  const competency = (n: number, extra: Record<string, unknown> = {}) => ({
    '@id': R(C(n)),
    '@type': 'ceasn:Competency',
    'ceterms:ctid': C(n),
    'ceasn:competencyText': { en: `Competency ${n}` },
    ...extra,
  });
  const parse = (graph: unknown[]) => parseFrameworkDocument({ '@context': 'https://credreg.net/ctdlasn/schema/context/json', '@graph': graph }, FW, LANGS);

  it('matches isPartOf by CTID, ce- id, bare UUID, full resource URI, graph URI or {@id}', () => {
    const bareUuid = FW.slice(3);
    const fw = parse([
      framework(),
      competency(1, { 'ceasn:isPartOf': FW }),
      competency(2, { 'ceasn:isPartOf': bareUuid }),
      competency(3, { 'ceasn:isPartOf': [R(FW)] }),
      competency(4, { 'ceasn:isPartOf': `https://credentialengineregistry.org/graph/${FW.toUpperCase()}` }),
      competency(5, { 'ceasn:isPartOf': { '@id': `https://sandbox.credentialengineregistry.org/resources/${bareUuid}` } }),
    ]);
    expect(fw.problems).toEqual([]);
    expect(fw.competencies.map((c) => c.ctid)).toEqual([1, 2, 3, 4, 5].map(C));
  });

  it('reports a competency of an unknown framework with its CTID instead of dropping it silently', () => {
    const fw = parse([framework(), competency(1, { 'ceasn:isPartOf': 'urn:something-else' }), competency(2)]);
    expect(fw.competencies.map((c) => c.ctid)).toEqual([C(2)]);
    expect(fw.problems).toEqual([
      expect.objectContaining({ code: 'OTHER_FRAMEWORK', ctid: C(1), skipped: true, message: expect.stringContaining('urn:something-else') }),
    ]);
  });

  it('finds the framework node last as well as first, and links by bare UUID (2017 shapes)', () => {
    const graph = [
      competency(1, { 'ceasn:hasChild': [UUID(2)], 'ceasn:isPartOf': FW }),
      competency(2, { 'ceasn:isChildOf': UUID(1), 'ceasn:isPartOf': FW }),
      framework({ 'ceasn:hasTopChild': [{ '@id': R(C(1)) }] }),
    ];
    const last = parse(graph);
    const firstToo = parse([graph[2], graph[0], graph[1]]);
    for (const fw of [last, firstToo]) {
      expect(fw.name).toBe('Old shapes');
      expect(fw.problems).toEqual([]);
      expect(fw.competencies.find((c) => c.ctid === C(2))!.parentCtids).toEqual([C(1)]);
      expect(fw.competencies.find((c) => c.ctid === C(1))!.childCtids).toEqual([C(2)]);
    }
  });

  it('reports every dangling hasTopChild, hasChild and isChildOf reference and keeps the competency', () => {
    const missing = C(9);
    const fw = parse([
      framework({ 'ceasn:hasTopChild': [R(C(1)), R(missing)] }),
      competency(1, { 'ceasn:hasChild': [R(C(2)), 'not a uri at all'] }),
      competency(2, { 'ceasn:isChildOf': [R(C(1)), R(missing)] }),
    ]);
    expect(fw.competencies.map((c) => c.ctid)).toEqual([C(1), C(2)]);
    expect(fw.competencies[1]!.parentCtids).toEqual([C(1)]);
    expect(fw.problems.map((p) => [p.code, p.ctid, p.skipped, p.message.includes(p.code === 'DANGLING_REFERENCE' ? 'link is dropped' : '')])).toEqual([
      ['DANGLING_REFERENCE', C(1), false, true],
      ['DANGLING_REFERENCE', C(2), false, true],
      ['DANGLING_REFERENCE', null, false, true],
    ]);
    expect(fw.problems.map((p) => p.message).join('\n')).toMatch(/Framework .*ceasn:hasTopChild names .*ce-7c1e0009/);
  });

  it('keeps a category list as a list, in the preferred language; language maps in en-US, en-us or en', () => {
    const fw = parse([
      framework(),
      competency(1, { 'ceasn:competencyCategory': [{ 'en-US': 'Networking' }, { 'en-US': 'Security', es: 'Seguridad' }] }),
      competency(2, { 'ceasn:competencyCategory': { 'en-us': ['Data', 'Cloud'] }, 'ceasn:competencyText': { 'en-us': 'lower-case map' } }),
      competency(3, { 'ceasn:competencyCategory': 'Plain', 'ceasn:competencyText': 'a plain string' }),
    ]);
    expect(fw.competencies.map((c) => [c.category, c.categories, c.description])).toEqual([
      ['Networking', ['Networking', 'Security'], 'Competency 1'],
      ['Data', ['Data', 'Cloud'], 'lower-case map'],
      ['Plain', ['Plain'], 'a plain string'],
    ]);
  });

  it('competencyDetails reads author, creator, categories, alignments and occupations, and invents nothing', () => {
    const node = competency(1, {
      'ceasn:author': ['Jane Roe', 'John Doe'],
      'ceasn:creator': [{ '@id': 'https://credentialengineregistry.org/resources/ce-aaaaaaaa-1111-4222-8333-444444444444' }],
      'ceasn:competencyCategory': { 'en-US': 'Networking' },
      'ceasn:exactAlignment': ['https://example.org/c/1'],
      'ceasn:broadAlignment': 'https://example.org/c/2',
      'ceasn:prerequisiteAlignment': [{ '@id': 'https://example.org/c/3' }],
      'ceterms:occupationType': [
        {
          '@type': 'ceterms:CredentialAlignmentObject',
          'ceterms:codedNotation': '15-1252.00',
          'ceterms:targetNodeName': { 'en-US': 'Software Developers' },
          'ceterms:frameworkName': { 'en-US': 'O*NET' },
          'ceterms:targetNode': 'https://www.onetonline.org/link/summary/15-1252.00',
        },
      ],
    });
    expect(competencyDetails(node, LANGS)).toEqual({
      authors: ['Jane Roe', 'John Doe'],
      creators: ['https://credentialengineregistry.org/resources/ce-aaaaaaaa-1111-4222-8333-444444444444'],
      categories: ['Networking'],
      alignments: [
        { kind: 'EXACT', uri: 'https://example.org/c/1', name: null },
        { kind: 'BROAD', uri: 'https://example.org/c/2', name: null },
        { kind: 'PREREQUISITE', uri: 'https://example.org/c/3', name: null },
      ],
      occupations: [{ code: '15-1252.00', name: 'Software Developers', framework: 'O*NET', uri: 'https://www.onetonline.org/link/summary/15-1252.00' }],
    });
    expect(competencyDetails(competency(2), LANGS)).toEqual({ authors: [], creators: [], categories: [], alignments: [], occupations: [] });
  });

  it('ctidOf reads bare UUIDs and URIs ending in one', () => {
    expect(ctidOf(UUID(1))).toBe(C(1));
    expect(ctidOf(`https://credentialengineregistry.org/resources/${UUID(1).toUpperCase()}`)).toBe(C(1));
    expect(ctidOf(' ' + C(1) + ' ')).toBe(C(1));
  });
});
