import { CTID_PATTERN } from './ctdl';

export interface FrameworkRef {
  /** Lower-case CTID. */
  ctid: string;
  /** The entry as the caller gave it. */
  source: string;
}

export interface RefProblem {
  index: number;
  value: string;
  message: string;
}

/** Echoes a value in a message, cut short: an error must not replay a megabyte of input. */
const shown = (v: string) => JSON.stringify(v.length > 200 ? `${v.slice(0, 200)}…` : v);

const PATH = /^\/(resources|graph)\/(ce-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\/?$/i;

/**
 * Reads one `competencyFrameworks` entry: a CTID (`ce-<uuid>`), or a `/resources/<ctid>` or
 * `/graph/<ctid>` URL on the registry origin. Why so strict: the job fetches only
 * `<registry>/graph/<ctid>`; accepting other hosts or paths would turn the import into a proxy.
 */
export function parseFrameworkRef(value: string, registryOrigin: string): FrameworkRef | string {
  const v = value.trim();
  if (!v) return 'is empty';
  if (CTID_PATTERN.test(v)) return { ctid: v.toLowerCase(), source: value };
  if (/^ce-/i.test(v)) return 'is not a CTID (ce- followed by a UUID)';
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    return 'is neither a CTID (ce-<uuid>) nor a URL';
  }
  if (url.origin !== registryOrigin) return `is not on the configured registry ${registryOrigin}`;
  if (url.username || url.password) return 'must not carry credentials';
  if (url.search || url.hash) return 'must not have a query string or fragment';
  const m = PATH.exec(url.pathname);
  if (!m) return 'must be <registry>/resources/<ctid> or <registry>/graph/<ctid>';
  return { ctid: m[2]!.toLowerCase(), source: value };
}

/** All entries, deduplicated by CTID in first-seen order, or every problem found. */
export function parseFrameworkRefs(values: readonly string[], registryOrigin: string): { refs: FrameworkRef[]; problems: RefProblem[] } {
  const refs: FrameworkRef[] = [];
  const problems: RefProblem[] = [];
  const seen = new Set<string>();
  values.forEach((value, index) => {
    const r = parseFrameworkRef(value, registryOrigin);
    if (typeof r === 'string') {
      problems.push({ index, value: value.slice(0, 200), message: `competencyFrameworks[${index}] ${shown(value)} ${r}` });
    } else if (!seen.has(r.ctid)) {
      seen.add(r.ctid);
      refs.push(r);
    }
  });
  return { refs, problems };
}
