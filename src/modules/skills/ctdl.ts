/**
 * CTDL-ASN parsing: a Credential Engine `/graph/<ctid>` (or `/resources/<ctid>`) document into a
 * framework and its competencies with the tree rebuilt. Pure: no I/O, no database.
 */
import { CodedError } from './coded-error';

/** A CTID: `ce-` and a UUID. */
export const CTID_PATTERN = /^ce-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const CTID_IN_URI = /\/(ce-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\/?$/i;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const UUID_IN_URI = /\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\/?$/i;

/** Why a document could not be read as a framework. Closed: stored in job results. */
export enum CtdlErrorCode {
  /** The document has no `ceasn:CompetencyFramework` node for the requested CTID. */
  NOT_A_FRAMEWORK = 'NOT_A_FRAMEWORK',
  /** The document is JSON but not a JSON-LD object / graph. */
  INVALID_DOCUMENT = 'INVALID_DOCUMENT',
}

export class CtdlError extends CodedError<CtdlErrorCode> {}

/**
 * What was wrong with one competency. `skipped` problems drop the competency (counted as failed;
 * the rest of its framework is kept); the others are reported and the competency is kept.
 * - MISSING_CTID, MISSING_TEXT, DUPLICATE_CTID: skipped.
 * - OTHER_FRAMEWORK: its `ceasn:isPartOf` names only other frameworks, or nothing readable as a
 *   framework reference: skipped.
 * - DANGLING_REFERENCE: a tree link (`isChildOf`, `hasChild`, the framework's `hasTopChild`)
 *   names a node that is not a competency of this framework: the link is dropped.
 */
export interface CompetencyProblem {
  ctid: string | null;
  id: string | null;
  code: 'MISSING_CTID' | 'MISSING_TEXT' | 'DUPLICATE_CTID' | 'OTHER_FRAMEWORK' | 'DANGLING_REFERENCE';
  skipped: boolean;
  message: string;
}

/** An alignment of a competency to another resource (`ceasn:exactAlignment` and its kin). */
export interface CompetencyAlignment {
  kind: 'EXACT' | 'BROAD' | 'NARROW' | 'MAJOR' | 'MINOR' | 'PREREQUISITE';
  uri: string;
  /** The target's name, when the target is a node of the same document. */
  name: string | null;
}

/** An occupation a competency is aligned to (`ceterms:occupationType`), e.g. an O*NET code. */
export interface CompetencyOccupation {
  /** The code (`ceterms:codedNotation`), e.g. 15-1252.00 for O*NET. */
  code: string | null;
  name: string | null;
  /** The coding framework's name, e.g. "Standard Occupational Classification" or O*NET. */
  framework: string | null;
  uri: string | null;
}

export interface ParsedCompetency {
  ctid: string;
  uri: string;
  /** Label, else a short form of the text. */
  name: string;
  /** Competency text in the preferred language. */
  description: string;
  /** codedNotation, else the CTID. */
  referenceId: string;
  keywords: string[];
  /** The first category. */
  category: string | null;
  /** Every category (`ceasn:competencyCategory` may be a list). */
  categories: string[];
  /** CTIDs of parent competencies (empty at the top of the tree). */
  parentCtids: string[];
  /** CTIDs of child competencies. */
  childCtids: string[];
  /** Position in the document. */
  position: number;
  raw: Record<string, unknown>;
}

export interface ParsedFramework {
  ctid: string;
  uri: string;
  name: string | null;
  description: string | null;
  raw: Record<string, unknown>;
  competencies: ParsedCompetency[];
  problems: CompetencyProblem[];
}

type Node = Record<string, unknown>;

const FRAMEWORK_TYPES = new Set(['ceasn:CompetencyFramework', 'CompetencyFramework', 'https://purl.org/ctdlasn/terms/CompetencyFramework']);
const COMPETENCY_TYPES = new Set(['ceasn:Competency', 'Competency', 'https://purl.org/ctdlasn/terms/Competency']);

const isObject = (v: unknown): v is Node => typeof v === 'object' && v !== null && !Array.isArray(v);

function hasType(node: Node, types: Set<string>): boolean {
  const t = node['@type'];
  return (Array.isArray(t) ? t : [t]).some((x) => typeof x === 'string' && types.has(x));
}

/** A URI property: a string, an array of strings, or `{ "@id" }` objects; always an array back. */
export function uriList(v: unknown): string[] {
  const items = Array.isArray(v) ? v : v === undefined || v === null ? [] : [v];
  const out: string[] = [];
  for (const item of items) {
    if (typeof item === 'string' && item.trim()) out.push(item.trim());
    else if (isObject(item) && typeof item['@id'] === 'string') out.push(item['@id'].trim());
  }
  return out;
}

/**
 * The CTID a reference names, lower-cased; null when it names none. Published documents use every
 * form: a CTID (`ce-<uuid>`), a bare UUID (older shapes), or a resource URI ending in either
 * (`…/resources/ce-<uuid>`, `…/graph/ce-<uuid>`, `…/<uuid>`).
 */
export function ctidOf(ref: string): string | null {
  const r = ref.trim();
  if (CTID_PATTERN.test(r)) return r.toLowerCase();
  if (UUID.test(r)) return `ce-${r.toLowerCase()}`;
  const path = r.split(/[?#]/)[0]!;
  const m = CTID_IN_URI.exec(path) ?? UUID_IN_URI.exec(path);
  if (!m) return null;
  const found = m[1]!.toLowerCase();
  return found.startsWith('ce-') ? found : `ce-${found}`;
}

function strings(v: unknown): string[] {
  if (typeof v === 'string') return v.trim() ? [v.trim()] : [];
  if (Array.isArray(v)) return v.flatMap(strings);
  if (isObject(v) && typeof v['@value'] === 'string') return strings(v['@value']);
  return [];
}

/**
 * The values of a language map in the preferred language. Keys match case-insensitively
 * (`en-US` and `en-us` alike); preferences are tried in order, then any language in document
 * order. A plain string or array (no map) is taken as it is.
 */
export function pickLanguage(v: unknown, languages: readonly string[]): string[] {
  // A list of language maps or strings (older documents list categories and keywords so).
  if (Array.isArray(v)) return [...new Set(v.flatMap((x) => pickLanguage(x, languages)))];
  if (!isObject(v) || '@value' in v) return strings(v);
  const keys = Object.keys(v);
  for (const lang of languages) {
    const key = keys.find((k) => k.toLowerCase() === lang.toLowerCase());
    const found = key === undefined ? [] : strings(v[key]);
    if (found.length) return found;
  }
  for (const key of keys) {
    const found = strings(v[key]);
    if (found.length) return found;
  }
  return [];
}

const first = (v: unknown, languages: readonly string[]): string | null => pickLanguage(v, languages)[0] ?? null;

/** A name from competency text: the first sentence or clause, at most `max` characters, cut at a word. */
export function shortName(text: string, max = 80): string {
  const clean = text.replace(/\s+/g, ' ').trim();
  const sentence = /^(.+?[.;:!?])(\s|$)/.exec(clean)?.[1] ?? clean;
  if (sentence.length <= max) return sentence.replace(/[.;:]$/, '');
  const cut = sentence.slice(0, max - 1);
  const space = cut.lastIndexOf(' ');
  return `${(space > max / 2 ? cut.slice(0, space) : cut).replace(/[\s,;:.]+$/, '')}…`;
}

function nodeCtid(node: Node): string | null {
  const own = typeof node['ceterms:ctid'] === 'string' ? node['ceterms:ctid'].trim() : '';
  if (CTID_PATTERN.test(own)) return own.toLowerCase();
  return typeof node['@id'] === 'string' ? ctidOf(node['@id']) : null;
}

function nodesOf(doc: unknown): Node[] {
  if (!isObject(doc)) throw new CtdlError(CtdlErrorCode.INVALID_DOCUMENT, 'The document is not a JSON object');
  const graph = doc['@graph'];
  if (graph !== undefined) {
    if (!Array.isArray(graph)) throw new CtdlError(CtdlErrorCode.INVALID_DOCUMENT, '@graph is not an array');
    return graph.filter(isObject);
  }
  return [doc];
}

/**
 * Reads the framework `ctid` and its competencies from a registry document. The framework is
 * found by `@type` and CTID, wherever it is in `@graph`. Competencies are the graph's
 * `ceasn:Competency` nodes that belong to it (`isPartOf` names it, or is absent). The tree comes
 * from `isChildOf`, `hasChild` and `isTopChildOf`/`hasTopChild` together, so a document that
 * states only one side of a link still yields the whole tree.
 */
export function parseFrameworkDocument(doc: unknown, ctid: string, languages: readonly string[]): ParsedFramework {
  const nodes = nodesOf(doc);
  const wanted = ctid.toLowerCase();
  const frameworks = nodes.filter((n) => hasType(n, FRAMEWORK_TYPES));
  const framework = frameworks.find((n) => nodeCtid(n) === wanted);
  if (!framework) {
    const other = frameworks.map(nodeCtid).filter(Boolean);
    throw new CtdlError(
      CtdlErrorCode.NOT_A_FRAMEWORK,
      other.length
        ? `The registry document for ${ctid} describes framework ${other.join(', ')}, not ${ctid}`
        : `The registry document for ${ctid} contains no ceasn:CompetencyFramework`,
    );
  }
  const frameworkUri = typeof framework['@id'] === 'string' ? framework['@id'] : `/resources/${wanted}`;

  const problems: CompetencyProblem[] = [];
  const byCtid = new Map<string, { node: Node; position: number }>();
  nodes.forEach((node, position) => {
    if (!hasType(node, COMPETENCY_TYPES)) return;
    const id = typeof node['@id'] === 'string' ? node['@id'] : null;
    const c = nodeCtid(node);
    const partOfRefs = uriList(node['ceasn:isPartOf']);
    if (partOfRefs.length && !partOfRefs.some((ref) => ctidOf(ref) === wanted || ref === frameworkUri)) {
      problems.push({
        ctid: c,
        id,
        code: 'OTHER_FRAMEWORK',
        skipped: true,
        message: `Competency ${c ?? id ?? `#${position}`} is not part of framework ${wanted}: ceasn:isPartOf names ${partOfRefs.slice(0, 3).join(', ')}${partOfRefs.length > 3 ? ', …' : ''}`,
      });
      return;
    }
    if (!c) {
      problems.push({ ctid: null, id, code: 'MISSING_CTID', skipped: true, message: `Competency ${id ?? `#${position}`} has no CTID` });
      return;
    }
    if (byCtid.has(c)) {
      problems.push({ ctid: c, id, code: 'DUPLICATE_CTID', skipped: true, message: `Competency ${c} appears more than once; the first is kept` });
      return;
    }
    byCtid.set(c, { node, position });
  });

  // Links between competencies of this framework, from both directions; a link to the framework
  // itself (isChildOf/isTopChildOf the framework) marks a top-level competency.
  const parents = new Map<string, Set<string>>([...byCtid.keys()].map((k) => [k, new Set<string>()]));
  const dangling = (owner: string | null, property: string, ref: string) =>
    problems.push({
      ctid: owner,
      id: owner ? ((byCtid.get(owner)?.node['@id'] as string | undefined) ?? null) : frameworkUri,
      code: 'DANGLING_REFERENCE',
      skipped: false,
      message: `${owner ? `Competency ${owner}` : `Framework ${wanted}`}: ${property} names ${ref}, which is not a competency of framework ${wanted}; the link is dropped`,
    });
  /** `ref` as a competency of this framework, the framework itself ('framework'), or null (dangling, reported). */
  const resolve = (owner: string | null, property: string, ref: string): string | null => {
    const c = ctidOf(ref);
    if (c === wanted || ref === frameworkUri) return 'framework';
    if (c && byCtid.has(c)) return c;
    dangling(owner, property, ref);
    return null;
  };
  for (const [c, { node }] of byCtid) {
    for (const ref of uriList(node['ceasn:isChildOf'])) {
      const p = resolve(c, 'ceasn:isChildOf', ref);
      if (p && p !== 'framework' && p !== c) parents.get(c)!.add(p);
    }
    for (const ref of uriList(node['ceasn:hasChild'])) {
      const ch = resolve(c, 'ceasn:hasChild', ref);
      if (ch && ch !== 'framework' && ch !== c) parents.get(ch)!.add(c);
    }
    for (const ref of uriList(node['ceasn:isTopChildOf'])) resolve(c, 'ceasn:isTopChildOf', ref);
  }
  for (const ref of uriList(framework['ceasn:hasTopChild'])) resolve(null, 'ceasn:hasTopChild', ref);

  const competencies: ParsedCompetency[] = [];
  for (const [c, { node, position }] of byCtid) {
    const id = typeof node['@id'] === 'string' ? node['@id'] : `/resources/${c}`;
    const text = pickLanguage(node['ceasn:competencyText'], languages).join(' ');
    if (!text) {
      problems.push({ ctid: c, id, code: 'MISSING_TEXT', skipped: true, message: `Competency ${c} has no ceasn:competencyText` });
      continue;
    }
    const label = first(node['ceasn:competencyLabel'], languages);
    const categories = pickLanguage(node['ceasn:competencyCategory'], languages);
    const notation = strings(node['ceasn:codedNotation'])[0] ?? null;
    const keywords = [...new Set([...pickLanguage(node['ceasn:conceptKeyword'], languages), ...pickLanguage(node['ceasn:keyword'], languages)])];
    competencies.push({
      ctid: c,
      uri: id,
      name: label ?? shortName(text),
      description: text,
      referenceId: notation ?? c,
      keywords,
      category: categories[0] ?? null,
      categories,
      parentCtids: [...parents.get(c)!].filter((p) => byCtid.has(p)),
      childCtids: [],
      position,
      raw: node,
    });
  }
  // Children are the inverse of parents, over the competencies that were kept.
  const kept = new Map(competencies.map((c) => [c.ctid, c]));
  for (const c of competencies) {
    c.parentCtids = c.parentCtids.filter((p) => kept.has(p));
    for (const p of c.parentCtids) kept.get(p)!.childCtids.push(c.ctid);
  }

  return {
    ctid: wanted,
    uri: frameworkUri,
    name: first(framework['ceasn:name'], languages),
    description: first(framework['ceasn:description'], languages),
    raw: framework,
    competencies,
    problems,
  };
}

const ALIGNMENTS: ReadonlyArray<[string, CompetencyAlignment['kind']]> = [
  ['ceasn:exactAlignment', 'EXACT'],
  ['ceasn:broadAlignment', 'BROAD'],
  ['ceasn:narrowAlignment', 'NARROW'],
  ['ceasn:majorAlignment', 'MAJOR'],
  ['ceasn:minorAlignment', 'MINOR'],
  ['ceasn:prerequisiteAlignment', 'PREREQUISITE'],
];

/** What CTDL-ASN publishes about a competency beyond its text and tree, read from its node. */
export interface CompetencyDetails {
  /** `ceasn:author`: names as published. */
  authors: string[];
  /** `ceasn:creator`: agent URIs. */
  creators: string[];
  /** `ceasn:competencyCategory`, every value. */
  categories: string[];
  alignments: CompetencyAlignment[];
  occupations: CompetencyOccupation[];
}

/**
 * The details of one competency node. Only what the node states: a property it lacks gives an
 * empty list, never an invented value. `names` resolves an alignment target of the same document
 * to its name, where the caller has the document.
 */
export function competencyDetails(node: unknown, languages: readonly string[], names?: (uri: string) => string | null): CompetencyDetails {
  if (!isObject(node)) return { authors: [], creators: [], categories: [], alignments: [], occupations: [] };
  const alignments: CompetencyAlignment[] = [];
  for (const [property, kind] of ALIGNMENTS) {
    for (const uri of uriList(node[property])) alignments.push({ kind, uri, name: names?.(uri) ?? null });
  }
  const occupationItems = Array.isArray(node['ceterms:occupationType'])
    ? node['ceterms:occupationType']
    : node['ceterms:occupationType'] === undefined
      ? []
      : [node['ceterms:occupationType']];
  const occupations: CompetencyOccupation[] = [];
  for (const o of occupationItems) {
    if (typeof o === 'string') {
      occupations.push({ code: null, name: null, framework: null, uri: o });
      continue;
    }
    if (!isObject(o)) continue;
    const occupation = {
      code: strings(o['ceterms:codedNotation'])[0] ?? null,
      name: first(o['ceterms:targetNodeName'], languages),
      framework: first(o['ceterms:frameworkName'], languages),
      uri: uriList(o['ceterms:targetNode'])[0] ?? null,
    };
    if (occupation.code || occupation.name || occupation.uri) occupations.push(occupation);
  }
  return {
    authors: pickLanguage(node['ceasn:author'], languages),
    creators: uriList(node['ceasn:creator']),
    categories: pickLanguage(node['ceasn:competencyCategory'], languages),
    alignments,
    occupations,
  };
}
