import { gzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  ImportCredentialEngineDocument,
  JobDocument,
  SkillDocument,
  SkillsConnectionDocument,
  SkillsDocument,
  SkillTreeDocument,
  type JobFieldsFragment,
  type SkillsConnectionQuery,
  type SluiceClient,
} from '../../src/sdk/client';
import { codeOf, startTestApp, type TestApp } from '../helpers/app';
import { collectJobEvents, FAST_JOBS } from '../helpers/jobs';
import { FIXTURE_FRAMEWORK, fixtureGraph, startFakeRegistry, type FakeRegistry } from '../helpers/registry';

let t: TestApp;
let reg: FakeRegistry;
let elsewhere: FakeRegistry;
let ingestor: SluiceClient;
let viewer: SluiceClient;

const C = (n: number) => `ce-7c1e000${n}-2b3a-4c5d-8e9f-00000000000${n}`;
/** A CTID for test variants: ce-00000000-0000-4000-8000-<n padded>. */
const X = (n: number) => `ce-00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;

beforeAll(async () => {
  reg = await startFakeRegistry();
  elsewhere = await startFakeRegistry();
  t = await startTestApp({
    ...FAST_JOBS,
    SLUICE_CE_REGISTRY_URL: reg.url,
    SLUICE_CE_ALLOW_PRIVATE_ADDRESSES: 'true',
    SLUICE_CE_TIMEOUT_MS: '500',
    SLUICE_CE_MAX_BYTES: String(256 * 1024),
  });
  ingestor = await t.clientWith(['INGESTOR']);
  viewer = await t.clientWith(['VIEWER']);
});

async function importAndWait(entries: string[]): Promise<JobFieldsFragment> {
  const { importCredentialEngine: job } = await ingestor.request(ImportCredentialEngineDocument, { competencyFrameworks: entries });
  expect(job.state).toBe('QUEUED');
  const events = await collectJobEvents(ingestor, job.id, { afterSeq: 0 });
  expect(events.at(-1)!.terminal).toBe(true);
  return (await ingestor.request(JobDocument, { id: job.id })).job;
}

type Result = {
  frameworks: Array<{
    ctid: string;
    state: string;
    error?: { code: string; message: string };
    created?: number;
    updated?: number;
    removed?: number;
    problems?: Array<{ code: string }>;
  }>;
  totals: Record<string, number>;
};
const resultOf = (job: JobFieldsFragment) => job.result as Result;

/** Serves `/graph/<ctid>`: the fixture's framework node renamed to `ctid`, with these competencies. */
async function serveFramework(ctid: string, competencies: Array<Record<string, unknown>>): Promise<void> {
  const doc = await fixtureGraph();
  // The fixture framework's hasTopChild names the fixture's competencies, not these: drop it.
  const { 'ceasn:hasTopChild': _top, ...fixtureFramework } = doc['@graph'][0]!;
  const fw = { ...fixtureFramework, '@id': `https://credentialengineregistry.org/resources/${ctid}`, 'ceterms:ctid': ctid };
  const nodes = competencies.map((c) => ({
    '@type': 'ceasn:Competency',
    '@id': `https://credentialengineregistry.org/resources/${String(c['ceterms:ctid'])}`,
    ...c,
  }));
  reg.routes.set(`/graph/${ctid}`, { body: { ...doc, '@graph': [fw, ...nodes] } });
}

async function skillByCtid(ctid: string) {
  const [row] = await t.database.sql`select id from skills where ce_ctid = ${ctid}`;
  return row?.['id'] as string | undefined;
}

describe('importCredentialEngine', () => {
  it('imports the fixture framework by CTID: skills, tree and progress', async () => {
    reg.routes.set(`/graph/${FIXTURE_FRAMEWORK}`, { body: await fixtureGraph() });
    const job = await importAndWait([FIXTURE_FRAMEWORK]);
    expect(job.state, JSON.stringify(job, null, 2)).toBe('SUCCEEDED');
    expect(job.error).toBeNull();
    // 1 framework + 6 competencies.
    expect(job.progress).toMatchObject({ total: 7, processed: 7, succeeded: 7, failed: 0, percent: 100 });
    expect(resultOf(job).totals).toMatchObject({ frameworks: 1, frameworksFailed: 0, competencies: 6, created: 6, updated: 0, removed: 0 });
    expect(reg.requests).toContain(`/graph/${FIXTURE_FRAMEWORK}`);

    const { skillsConnection } = await viewer.request(SkillsConnectionDocument, { first: 50, filter: { framework: FIXTURE_FRAMEWORK } });
    expect(skillsConnection.totalCount).toBe(6);
    const os = skillsConnection.nodes.find((s) => s.ctid === C(1))!;
    expect(os).toMatchObject({
      name: 'Operating Systems',
      description: 'Analyze how operating systems manage hardware and software resources',
      referenceId: 'IDS-20252',
      sourceName: 'credential_engine',
      sourceUri: `https://credentialengineregistry.org/resources/${C(1)}`,
      keywords: ['Operating Systems', 'Computer Architecture'],
      category: 'IDS: Information Systems',
      parentNodes: [],
      framework: { ctid: FIXTURE_FRAMEWORK, name: 'Information Systems Foundations Competency Framework' },
      removedUpstream: false,
      importJobId: job.id,
    });
    expect(os.uuid).toBe(os.id);

    const { skill } = await viewer.request(SkillDocument, { id: os.id });
    expect(skill.parent).toBeNull();
    expect(skill.children.map((c) => c.ctid)).toEqual([C(2), C(3)]);
    expect(skill.childNodes).toEqual(skill.children.map((c) => c.id));
    expect((skill.raw as Record<string, unknown>)['ceasn:codedNotation']).toBe('IDS-20252');

    const leaf = (await viewer.request(SkillDocument, { id: (await skillByCtid(C(6)))! })).skill;
    expect(leaf).toMatchObject({ name: 'Calculate the usable host range of a /26 subnet', referenceId: C(6), category: null });
    expect(leaf.parent!.ctid).toBe(C(5));
    expect(leaf.parentNodes).toEqual([leaf.parent!.id]);
    expect(leaf.children).toEqual([]);
  });

  it('re-imports in place: same ids, no duplicates, removed competencies marked', async () => {
    const before = new Map<string, string>();
    for (const n of [1, 2, 3, 4, 5, 6]) before.set(C(n), (await skillByCtid(C(n)))!);

    // Upstream changed: the framework node last, lower-case language keys, isPartOf as an
    // array, a label gone, one competency (3) removed, a new one (7) under 4.
    const doc = await fixtureGraph();
    const g = doc['@graph'];
    g.push(g.shift()!);
    const lower = (m: unknown) => Object.fromEntries(Object.entries(m as Record<string, unknown>).map(([k, v]) => [k.toLowerCase(), v]));
    for (const n of g) {
      for (const key of ['ceasn:competencyText', 'ceasn:competencyLabel', 'ceasn:competencyCategory', 'ceasn:name']) if (n[key]) n[key] = lower(n[key]);
      if (typeof n['ceasn:isPartOf'] === 'string') n['ceasn:isPartOf'] = [n['ceasn:isPartOf']];
    }
    const byCtid = (c: string) => g.find((n) => n['ceterms:ctid'] === c)!;
    delete byCtid(C(2))['ceasn:competencyLabel'];
    byCtid(C(1))['ceasn:competencyLabel'] = { 'en-us': 'Operating Systems (revised)' };
    byCtid(C(1))['ceasn:hasChild'] = [`https://credentialengineregistry.org/resources/${C(2)}`];
    const removedIdx = g.indexOf(byCtid(C(3)));
    g.splice(removedIdx, 1);
    const c7 = 'ce-7c1e0007-2b3a-4c5d-8e9f-000000000007';
    g.push({
      '@id': `https://credentialengineregistry.org/resources/${c7}`,
      '@type': 'ceasn:Competency',
      'ceterms:ctid': c7,
      'ceasn:competencyText': { 'en-us': 'Harden a wireless access point' },
      'ceasn:isPartOf': `https://credentialengineregistry.org/resources/${FIXTURE_FRAMEWORK}`,
      'ceasn:isChildOf': `https://credentialengineregistry.org/resources/${C(4)}`,
    });
    reg.routes.set(`/graph/${FIXTURE_FRAMEWORK}`, { body: doc });

    // Given as a registry URL this time.
    const job = await importAndWait([`${reg.url}/resources/${FIXTURE_FRAMEWORK}`]);
    expect(job.state, JSON.stringify(job, null, 2)).toBe('SUCCEEDED');
    expect(resultOf(job).totals).toMatchObject({ competencies: 6, created: 1, updated: 5, removed: 1 });

    const [{ n }] = (await t.database.sql`select count(*)::int as n from skills where framework_ctid = ${FIXTURE_FRAMEWORK}`) as unknown as [{ n: number }];
    expect(n).toBe(7);
    for (const [ctid, id] of before) expect(await skillByCtid(ctid)).toBe(id);

    const live = await viewer.request(SkillsConnectionDocument, { first: 50, filter: { framework: FIXTURE_FRAMEWORK } });
    expect(live.skillsConnection.totalCount).toBe(6);
    expect(live.skillsConnection.nodes.map((s) => s.ctid)).not.toContain(C(3));
    const all = await viewer.request(SkillsConnectionDocument, { first: 50, filter: { framework: FIXTURE_FRAMEWORK, includeRemoved: true } });
    const gone = all.skillsConnection.nodes.find((s) => s.ctid === C(3))!;
    expect(gone.removedUpstream).toBe(true);
    expect(gone.removedAt).not.toBeNull();

    const os = (await viewer.request(SkillDocument, { id: before.get(C(1))! })).skill;
    expect(os.name).toBe('Operating Systems (revised)');
    expect(os.children.map((c) => c.ctid)).toEqual([C(2)]);
    // Label gone: a name from the text.
    expect(os.children[0]!.name).toBe('Describe the role of the kernel, drivers and system calls in an operating system');
    const net = (await viewer.request(SkillDocument, { id: before.get(C(4))! })).skill;
    expect(net.children.map((c) => c.ctid).sort()).toEqual([C(5), c7].sort());
  });

  it('fails each bad framework with a clear error and never reports false success', async () => {
    const notFramework = await fixtureGraph();
    notFramework['@graph'] = notFramework['@graph'].filter((n) => n['@type'] !== 'ceasn:CompetencyFramework');
    reg.routes.set(`/graph/${X(2)}`, { body: { pad: 1 }, delayMs: 1500 });
    reg.routes.set(`/graph/${X(3)}`, { body: '{"@graph": [' });
    reg.routes.set(`/graph/${X(4)}`, { body: notFramework });
    elsewhere.routes.set(`/graph/${X(5)}`, { body: await fixtureGraph() });
    reg.routes.set(`/graph/${X(5)}`, { status: 302, headers: { location: `${elsewhere.url}/graph/${X(5)}` } });

    const job = await importAndWait([FIXTURE_FRAMEWORK, X(1), X(2), X(3), X(4), X(5)]);
    expect(job.state, JSON.stringify(job, null, 2)).toBe('SUCCEEDED_WITH_ERRORS');
    expect(job.error!.code).toBe('SOME_FRAMEWORKS_FAILED');
    expect(job.error!.message).toMatch(/^5 of 6 frameworks failed; first: ce-00000000-0000-4000-8000-000000000001: REGISTRY_NOT_FOUND/);
    const byCtid = new Map(resultOf(job).frameworks.map((f) => [f.ctid, f]));
    expect(byCtid.get(FIXTURE_FRAMEWORK)!.state).toBe('SUCCEEDED');
    expect(byCtid.get(X(1))!.error!.code).toBe('REGISTRY_NOT_FOUND');
    expect(byCtid.get(X(2))!.error!.code).toBe('REGISTRY_TIMEOUT');
    expect(byCtid.get(X(3))!.error!.code).toBe('REGISTRY_BAD_JSON');
    expect(byCtid.get(X(4))!.error).toMatchObject({ code: 'NOT_A_FRAMEWORK', message: expect.stringContaining('contains no ceasn:CompetencyFramework') });
    expect(byCtid.get(X(5))!.error!.code).toBe('REGISTRY_REDIRECT_REFUSED');
    expect(elsewhere.requests).toEqual([]);
    // Items: 6 frameworks, 6 competencies of the one that worked.
    expect(job.progress).toMatchObject({ total: 12, processed: 12, succeeded: 7, failed: 5 });
    const [{ n }] = (await t.database.sql`select count(*)::int as n from skill_frameworks where ce_ctid like 'ce-00000000-%'`) as unknown as [{ n: number }];
    expect(n).toBe(0);
  });

  it('fails compressed and binary replies with a coded problem, never INTERNAL_ERROR', async () => {
    const graph = JSON.stringify(await fixtureGraph());
    // Compressed although Sluice never asked for it (no Accept-Encoding): declared, and undeclared.
    reg.routes.set(`/graph/${X(20)}`, { body: gzipSync(graph), headers: { 'content-encoding': 'gzip' } });
    reg.routes.set(`/graph/${X(21)}`, { body: gzipSync(graph) });
    reg.routes.set(`/graph/${X(22)}`, { body: Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0x02, 0x01, 0x01, 0x00, 0x00, 0x00]) });
    reg.routes.set(`/graph/${X(23)}`, { body: Buffer.concat([Buffer.from('{"@graph": ["'), Buffer.from([0xc3, 0x28]), Buffer.from('"]}')]) });
    reg.routes.set(`/graph/${X(24)}`, { body: graph, headers: { 'content-encoding': 'br' } });
    const job = await importAndWait([X(20), X(21), X(22), X(23), X(24)]);
    expect(job.state, JSON.stringify(job, null, 2)).toBe('FAILED');
    expect(job.error!.code).toBe('SOME_FRAMEWORKS_FAILED');
    const byCtid = new Map(resultOf(job).frameworks.map((f) => [f.ctid, f]));
    expect(byCtid.get(X(20))!.error).toMatchObject({ code: 'REGISTRY_BAD_ENCODING', message: expect.stringContaining('gzip') });
    expect(byCtid.get(X(21))!.error).toMatchObject({ code: 'REGISTRY_BAD_JSON', message: expect.stringContaining('gzip') });
    expect(byCtid.get(X(22))!.error).toMatchObject({ code: 'REGISTRY_BAD_JSON', message: expect.stringContaining('binary') });
    expect(byCtid.get(X(23))!.error).toMatchObject({ code: 'REGISTRY_BAD_JSON', message: expect.stringContaining('UTF-8') });
    expect(byCtid.get(X(24))!.error).toMatchObject({ code: 'REGISTRY_BAD_ENCODING', message: expect.stringContaining('br') });
    for (const f of resultOf(job).frameworks) expect(f.error!.message).not.toMatch(/[\u0000-\u0008\u000e-\u001f\ufffd]/);
  });

  it('leaves nothing half-written when storing a framework fails', async () => {
    await serveFramework(X(10), [
      { 'ceterms:ctid': X(11), 'ceasn:competencyText': { en: 'Stored first' } },
      // PostgreSQL's jsonb refuses \u0000: the second row of the batch fails inside the transaction.
      { 'ceterms:ctid': X(12), 'ceasn:competencyText': { en: 'Poison' }, 'ex:note': 'a\u0000b' },
    ]);
    const job = await importAndWait([X(10)]);
    expect(job.state).toBe('FAILED');
    expect(resultOf(job).frameworks[0]!.error).toMatchObject({ code: 'STORE_FAILED', message: expect.stringContaining('server log') });
    expect(await skillByCtid(X(11))).toBeUndefined();
    const [{ n }] = (await t.database.sql`select count(*)::int as n from skill_frameworks where ce_ctid = ${X(10)}`) as unknown as [{ n: number }];
    expect(n).toBe(0);
  });

  it('ends FAILED when its only framework fails', async () => {
    const job = await importAndWait([X(6)]);
    expect(job.state).toBe('FAILED');
    expect(job.error).toMatchObject({
      code: 'SOME_FRAMEWORKS_FAILED',
      message: expect.stringMatching(/^Framework ce-00000000-0000-4000-8000-000000000006: REGISTRY_NOT_FOUND/),
    });
    expect(job.progress).toMatchObject({ total: 1, processed: 1, succeeded: 0, failed: 1 });
  });

  it('skips invalid competencies and ends SUCCEEDED_WITH_ERRORS', async () => {
    await serveFramework(X(7), [
      { 'ceterms:ctid': X(8), 'ceasn:competencyText': { en: 'Valid one' }, 'ceasn:isPartOf': `https://credentialengineregistry.org/resources/${X(7)}` },
      { 'ceterms:ctid': X(9), 'ceasn:competencyLabel': { en: 'No text' } },
    ]);
    const job = await importAndWait([X(7)]);
    expect(job.state).toBe('SUCCEEDED_WITH_ERRORS');
    expect(job.error!.code).toBe('SOME_COMPETENCIES_INVALID');
    expect(resultOf(job).frameworks[0]!.problems!.map((p) => p.code)).toEqual(['MISSING_TEXT']);
    expect(job.progress).toMatchObject({ total: 3, processed: 3, succeeded: 2, failed: 1 });
    expect(await skillByCtid(X(8))).toBeDefined();
    expect(await skillByCtid(X(9))).toBeUndefined();
  });

  it('reports dangling links and foreign competencies with their CTIDs; serves author, categories, alignments and occupations', async () => {
    const F = X(12);
    await serveFramework(F, [
      {
        'ceterms:ctid': X(13),
        'ceasn:competencyText': { 'en-us': 'Configure a firewall' },
        'ceasn:isPartOf': F.slice(3),
        'ceasn:hasChild': [`https://credentialengineregistry.org/resources/${X(19)}`],
        'ceasn:competencyCategory': [{ 'en-US': 'Networking' }, { 'en-US': 'Security' }],
        'ceasn:author': 'Jane Roe',
        'ceasn:exactAlignment': [{ '@id': 'https://example.org/competency/42' }],
        'ceterms:occupationType': [
          {
            'ceterms:codedNotation': '15-1244.00',
            'ceterms:targetNodeName': { 'en-US': 'Network and Computer Systems Administrators' },
            'ceterms:frameworkName': { 'en-US': 'O*NET' },
          },
        ],
      },
      { 'ceterms:ctid': X(14), 'ceasn:competencyText': { en: 'Not ours' }, 'ceasn:isPartOf': `https://credentialengineregistry.org/resources/${X(15)}` },
    ]);
    const job = await importAndWait([F]);
    expect(job.state).toBe('SUCCEEDED_WITH_ERRORS');
    const fw = resultOf(job).frameworks[0]! as unknown as { problems: Array<{ code: string; ctid: string; skipped: boolean }>; problemCount: number };
    expect(fw.problems.map((p) => [p.code, p.ctid, p.skipped])).toEqual([
      ['OTHER_FRAMEWORK', X(14), true],
      ['DANGLING_REFERENCE', X(13), false],
    ]);
    expect(fw.problemCount).toBe(2);
    expect(resultOf(job).totals).toMatchObject({ competencies: 1, invalidCompetencies: 1, problems: 2 });
    const id = (await skillByCtid(X(13)))!;
    expect(await skillByCtid(X(14))).toBeUndefined();
    const { skill } = await t.admin.request(SkillDocument, { id });
    expect(skill).toMatchObject({
      description: 'Configure a firewall',
      category: 'Networking',
      categories: ['Networking', 'Security'],
      author: ['Jane Roe'],
      creator: [],
      alignments: [{ kind: 'EXACT', uri: 'https://example.org/competency/42', name: null }],
      occupations: [{ code: '15-1244.00', name: 'Network and Computer Systems Administrators', framework: 'O*NET', uri: null }],
      childNodes: [],
    });
  });

  it('refuses bad entries before any job is made, naming them', async () => {
    const [{ n: jobsBefore }] = (await t.database.sql`select count(*)::int as n from jobs`) as unknown as [{ n: number }];
    const requestsBefore = reg.requests.length;
    for (const [entries, pattern] of [
      [
        ['https://evil.example/resources/' + FIXTURE_FRAMEWORK],
        /competencyFrameworks\[0\] "https:\/\/evil\.example\/resources\/ce-5b2f.*is not on the configured registry/,
      ],
      [[FIXTURE_FRAMEWORK, 'not-a-ctid'], /competencyFrameworks\[1\] "not-a-ctid" is neither a CTID/],
      [[`${reg.url}/envelopes/${FIXTURE_FRAMEWORK}`], /competencyFrameworks\[0\] .* must be <registry>\/resources\/<ctid> or <registry>\/graph\/<ctid>/],
      [[`http://localhost:${reg.port}/graph/${FIXTURE_FRAMEWORK}`], /is not on the configured registry/],
      [[], /at least one framework/],
    ] as const) {
      const res = await ingestor.raw(ImportCredentialEngineDocument, { competencyFrameworks: [...entries] });
      expect(codeOf(res.body), JSON.stringify(res.body)).toBe('BAD_USER_INPUT');
      expect(res.body.errors![0]!.message).toMatch(pattern);
    }
    const [{ n: jobsAfter }] = (await t.database.sql`select count(*)::int as n from jobs`) as unknown as [{ n: number }];
    expect(jobsAfter).toBe(jobsBefore);
    expect(reg.requests.length).toBe(requestsBefore);

    const denied = await viewer.raw(ImportCredentialEngineDocument, { competencyFrameworks: [FIXTURE_FRAMEWORK] });
    expect(codeOf(denied.body)).toBe('FORBIDDEN');
  });
});

describe('skills queries', () => {
  const BIG = X(100);

  beforeAll(async () => {
    // A framework of 130 competencies: a chain of 10 tops with 12 children each.
    const fwId = `https://credentialengineregistry.org/resources/${BIG}`;
    const graph: Array<Record<string, unknown>> = [];
    for (let i = 0; i < 130; i++) {
      const ctid = X(1000 + i);
      const parent = i >= 10 ? X(1000 + (i % 10)) : null;
      graph.push({
        '@id': `https://credentialengineregistry.org/resources/${ctid}`,
        '@type': 'ceasn:Competency',
        'ceterms:ctid': ctid,
        'ceasn:competencyText': { 'en-US': `Bulk competency number ${i} 50%_off` },
        'ceasn:codedNotation': `BULK-${i}`,
        'ceasn:isPartOf': fwId,
        ...(parent ? { 'ceasn:isChildOf': [`https://credentialengineregistry.org/resources/${parent}`] } : { 'ceasn:isTopChildOf': fwId }),
      });
    }
    graph.push({ '@id': fwId, '@type': 'ceasn:CompetencyFramework', 'ceterms:ctid': BIG, 'ceasn:name': { en: 'Bulk' } });
    reg.routes.set(`/graph/${BIG}`, { body: { '@graph': graph } });
    const job = await importAndWait([BIG]);
    expect(job.state).toBe('SUCCEEDED');
  });

  it('skills(skip, limit): offset pagination, defaults, cap and errors', async () => {
    const def = await viewer.request(SkillsDocument, {});
    expect(def.skills).toHaveLength(10);
    const capped = await viewer.request(SkillsDocument, { limit: 1000 });
    expect(capped.skills).toHaveLength(100);
    const a = await viewer.request(SkillsDocument, { skip: 0, limit: 30 });
    const b = await viewer.request(SkillsDocument, { skip: 30, limit: 30 });
    const ids = [...a.skills, ...b.skills].map((s) => s.id);
    expect(new Set(ids).size).toBe(60);
    const filtered = await viewer.request(SkillsDocument, { limit: 5, sourceName: 'credential_engine' });
    expect(filtered.skills.every((s) => s.sourceName === 'credential_engine')).toBe(true);
    expect((await viewer.request(SkillsDocument, { sourceName: 'other_source' })).skills).toEqual([]);

    const neg = await viewer.raw(SkillsDocument, { skip: -1 });
    expect(codeOf(neg.body)).toBe('BAD_USER_INPUT');
    expect(neg.body.errors![0]!.message).toMatch(/Invalid value passed to "skip"/);
    const zero = await viewer.raw(SkillsDocument, { limit: 0 });
    expect(codeOf(zero.body)).toBe('BAD_USER_INPUT');
    expect(zero.body.errors![0]!.message).toMatch(/Invalid value passed to "limit"/);
    expect(codeOf((await t.anon.raw(SkillsDocument, {})).body)).toBe('UNAUTHENTICATED');
  });

  it('skillsConnection: cursor pages, total count and filters', async () => {
    const seen = new Set<string>();
    let after: string | null = null;
    let pages = 0;
    for (;;) {
      const res: SkillsConnectionQuery = await viewer.request(SkillsConnectionDocument, { first: 40, after, filter: { framework: BIG } });
      const page = res.skillsConnection;
      expect(page.totalCount).toBe(130);
      for (const s of page.nodes) seen.add(s.id);
      pages++;
      if (!page.pageInfo.hasNextPage) break;
      after = page.pageInfo.endCursor;
    }
    expect(pages).toBe(4);
    expect(seen.size).toBe(130);

    const search = await viewer.request(SkillsConnectionDocument, { first: 10, filter: { search: 'bulk-12' } });
    // BULK-12 and BULK-120..129.
    expect(search.skillsConnection.totalCount).toBe(11);
    const literal = await viewer.request(SkillsConnectionDocument, { first: 1, filter: { search: '50%_off' } });
    expect(literal.skillsConnection.totalCount).toBe(130);
    const none = await viewer.request(SkillsConnectionDocument, { first: 1, filter: { search: '5_%' } });
    expect(none.skillsConnection.totalCount).toBe(0);
    const bySource = await viewer.request(SkillsConnectionDocument, { first: 1, filter: { sourceName: 'credential_engine' } });
    expect(bySource.skillsConnection.totalCount).toBeGreaterThanOrEqual(130);

    for (const [vars, field] of [
      [{ first: 0 }, 'first'],
      [{ first: 101 }, 'first'],
      [{ first: 5, after: 'bogus' }, 'after'],
      [{ first: 5, filter: { framework: 'not-a-ctid' } }, 'framework'],
      [{ first: 5, filter: { sourceName: 'Bad Source!' } }, 'sourceName'],
    ] as const) {
      const res = await viewer.raw(SkillsConnectionDocument, vars);
      expect(codeOf(res.body), JSON.stringify(res.body)).toBe('BAD_USER_INPUT');
      expect(res.body.errors![0]!.extensions!['field']).toBe(field);
    }
  });

  it('skill(id): NOT_FOUND for unknown or malformed ids', async () => {
    expect(codeOf((await viewer.raw(SkillDocument, { id: '00000000-0000-4000-8000-000000000000' })).body)).toBe('NOT_FOUND');
    expect(codeOf((await viewer.raw(SkillDocument, { id: 'nope' })).body)).toBe('NOT_FOUND');
  });

  it('resolves parent and children of a whole page in batched queries, not one per skill', async () => {
    const store = t.app.services.skillsStore;
    const original = store.byIds.bind(store);
    let calls = 0;
    store.byIds = (ids) => {
      calls++;
      return original(ids);
    };
    try {
      const { skillsConnection } = await viewer.request(SkillTreeDocument, { first: 100, filter: { framework: BIG } });
      expect(skillsConnection.nodes).toHaveLength(100);
      const tops = skillsConnection.nodes.filter((n) => n.parent === null);
      const leaves = skillsConnection.nodes.filter((n) => n.parent !== null);
      expect(tops.length + leaves.length).toBe(100);
      for (const top of tops) expect(top.children).toHaveLength(12);
      for (const leaf of leaves) expect(Number(leaf.ctid!.slice(-4)) % 10).toBe(Number(leaf.parent!.ctid!.slice(-4)) % 10);
      // One batch for every parent and child on the page.
      expect(calls).toBe(1);
    } finally {
      store.byIds = original;
    }
  });
});
