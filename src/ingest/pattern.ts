/**
 * Screening of user `pattern`s before they run against millions of cells.
 *
 * V8's regex engine backtracks, so a pattern such as `(a+)+$` takes exponential time on a
 * cell like `aaaaaaaaaaaaaaaaaaaaaaaaaaaa!` and would stall a worker. Proving a regex safe is hard,
 * so this is a conservative heuristic that rejects the known catastrophic shapes:
 *
 * 1. longer than MAX_PATTERN_LENGTH characters;
 * 2. backreferences (`\1`..`\9`, `\k<name>`): they defeat every backtracking bound;
 * 3. a group that can repeat (`*`, `+`, `{n,}`, `{n,m}` with m > 1) whose body contains a
 *    variable-length quantifier (`*`, `+`, `?`, `{n,m}` with n != m) or an alternation `|`:
 *    `(a+)+`, `(a*)*`, `(a|aa)+`, `(\w?)+`, `((ab)*c)+`.
 *
 * 4. more than two variable-length parts in a row that can match the same characters
 *    (`\d+\d+\d+x`, `\d*5\d*5\d*`): each such part multiplies the backtracking by the length of
 *    the cell. An unanchored pattern (no leading `^`) counts one more, since it is tried at every
 *    position: `\d+\d+x` is refused, `^\d+\d+x` is not. Parts separated by a character neither
 *    can match (`^\w+@\w+\.\w+$`) do not chain.
 *
 * It also rejects some safe patterns (`(ab|cd)+`, where the branches cannot overlap); a character
 * class or a fixed-width group (`[abcd]+`, `(\d{3}-)+`) usually says the same thing.
 * What passes backtracks at most quadratically in the cell length, and cells longer than
 * MAX_PATTERN_INPUT_LENGTH are refused (TOO_LONG) before the pattern runs, so one cell costs at
 * most about a millisecond.
 */
export const MAX_PATTERN_LENGTH = 200;

/** Longest cell (UTF-16 units) a pattern is run on; longer cells are a TOO_LONG row error. */
export const MAX_PATTERN_INPUT_LENGTH = 1000;

/** The bound for a stored pattern that the screen refuses today (registered before rule 4). */
export const LEGACY_PATTERN_INPUT_LENGTH = 64;

/** Variable-length parts in a row that may match the same characters (see rule 4). */
const MAX_BACKTRACK_DEGREE = 2;

export type PatternCheck = { ok: true; regex: RegExp } | { ok: false; code: 'UNSAFE_PATTERN' | 'INVALID_PATTERN'; message: string };

interface Quantifier {
  min: number;
  max: number;
  /** Characters the quantifier occupies, including a lazy `?` suffix. */
  length: number;
}

interface GroupFrame {
  /** The body contains a variable-length quantifier or an alternation. */
  ambiguous: boolean;
}

/** Compiles `pattern` with the `u` flag if it passes the screen above. */
export function checkPattern(pattern: string): PatternCheck {
  if (pattern.length > MAX_PATTERN_LENGTH) {
    return {
      ok: false,
      code: 'UNSAFE_PATTERN',
      message: `pattern is ${pattern.length} characters long; the limit is ${MAX_PATTERN_LENGTH}`,
    };
  }
  let regex: RegExp;
  try {
    regex = new RegExp(pattern, 'u');
  } catch (err) {
    return { ok: false, code: 'INVALID_PATTERN', message: `pattern ${JSON.stringify(pattern)} is not a valid regular expression: ${(err as Error).message}` };
  }
  const unsafe = findUnsafeConstruct(pattern) ?? polynomialConstruct(pattern);
  if (unsafe) return { ok: false, code: 'UNSAFE_PATTERN', message: `pattern ${JSON.stringify(pattern)} ${unsafe}` };
  return { ok: true, regex };
}

/**
 * Walks a pattern that already compiled with the `u` flag (so escapes, classes and braces are
 * well formed) and describes the first unsafe construct, or returns null.
 */
function findUnsafeConstruct(pattern: string): string | null {
  const stack: GroupFrame[] = [{ ambiguous: false }];
  const starts: number[] = [];
  let i = 0;
  while (i < pattern.length) {
    const ch = pattern[i];
    const frame = stack[stack.length - 1]!;
    if (ch === '\\') {
      const next = pattern[i + 1] ?? '';
      if (/[1-9]/.test(next) || (next === 'k' && pattern[i + 2] === '<')) {
        return `uses a backreference (\\${next}${next === 'k' ? '<...>' : ''}), which can backtrack without bound`;
      }
      // \u{...}, \p{...} and friends: skip the braces so they are not read as a quantifier.
      i += pattern[i + 2] === '{' && /[upPx]/.test(next) ? pattern.indexOf('}', i) + 1 - i : 2;
      i += quantifierAfter(pattern, i, frame);
      continue;
    }
    if (ch === '[') {
      i = endOfClass(pattern, i);
      i += quantifierAfter(pattern, i, frame);
      continue;
    }
    if (ch === '(') {
      stack.push({ ambiguous: false });
      starts.push(i);
      i += 1;
      // Group prefixes `?:`, `?=`, `?!`, `?<=`, `?<!`, `?<name>`: the `?` is not a quantifier.
      if (pattern[i] === '?') {
        i += 1;
        if (pattern[i] === '<' && pattern[i + 1] !== '=' && pattern[i + 1] !== '!') i = pattern.indexOf('>', i) + 1;
        else i += pattern[i] === '<' ? 2 : 1;
      }
      continue;
    }
    if (ch === ')') {
      const group = stack.pop()!;
      const start = starts.pop()!;
      const parent = stack[stack.length - 1]!;
      const q = parseQuantifier(pattern, i + 1);
      if (q && q.max > 1 && group.ambiguous) {
        return `repeats the group ${JSON.stringify(pattern.slice(start, i + 1))}, whose body has a variable-length quantifier or an alternation (nested quantifiers can backtrack exponentially)`;
      }
      parent.ambiguous ||= group.ambiguous || (q !== null && q.min !== q.max);
      i += 1 + (q?.length ?? 0);
      continue;
    }
    if (ch === '|') {
      frame.ambiguous = true;
      i += 1;
      continue;
    }
    // A literal character, `.`, `^` or `$`.
    i += 1;
    i += quantifierAfter(pattern, i, frame);
  }
  return null;
}

/** Consumes a quantifier on a plain atom and records it in the enclosing group; returns its length. */
function quantifierAfter(pattern: string, at: number, frame: GroupFrame): number {
  const q = parseQuantifier(pattern, at);
  if (!q) return 0;
  if (q.min !== q.max) frame.ambiguous = true;
  return q.length;
}

function parseQuantifier(pattern: string, at: number): Quantifier | null {
  const ch = pattern[at];
  let q: Quantifier | null = null;
  if (ch === '*') q = { min: 0, max: Infinity, length: 1 };
  else if (ch === '+') q = { min: 1, max: Infinity, length: 1 };
  else if (ch === '?') q = { min: 0, max: 1, length: 1 };
  else if (ch === '{') {
    const m = /^\{(\d+)(,(\d*))?\}/.exec(pattern.slice(at));
    if (m) {
      const min = Number(m[1]);
      const max = m[2] === undefined ? min : m[3] === '' || m[3] === undefined ? Infinity : Number(m[3]);
      q = { min, max, length: m[0].length };
    }
  }
  if (q && pattern[at + q.length] === '?') q.length += 1; // lazy form: same repetition bounds
  return q;
}

/** Index just past the `]` closing the class that opens at `at`. */
function endOfClass(pattern: string, at: number): number {
  let i = at + 1;
  while (i < pattern.length) {
    if (pattern[i] === '\\') i += 2;
    else if (pattern[i] === ']') return i + 1;
    else i += 1;
  }
  return pattern.length;
}

// --- Rule 4: chains of overlapping variable-length parts ------------------------------------

/** An over-approximation of the characters an atom can match: ASCII bits plus "anything else". */
class CharSet {
  readonly bits = new Uint32Array(4);
  high = false;
  static full(): CharSet {
    const s = new CharSet();
    s.bits.fill(0xffffffff);
    s.high = true;
    return s;
  }
  static of(code: number): CharSet {
    return new CharSet().add(code, code);
  }
  add(from: number, to: number): this {
    if (to >= 128) this.high = true;
    for (let c = from; c <= Math.min(to, 127); c++) this.bits[c >>> 5]! |= 1 << (c & 31);
    return this;
  }
  addSet(other: CharSet): this {
    for (let w = 0; w < 4; w++) this.bits[w]! |= other.bits[w]!;
    this.high ||= other.high;
    return this;
  }
  complement(): this {
    for (let w = 0; w < 4; w++) this.bits[w] = ~this.bits[w]! >>> 0;
    this.high = true; // the non-ASCII part is not tracked: assume it may match
    return this;
  }
  overlaps(other: CharSet): boolean {
    if (this.high && other.high) return true;
    for (let w = 0; w < 4; w++) if ((this.bits[w]! & other.bits[w]!) !== 0) return true;
    return false;
  }
  copy(): CharSet {
    return new CharSet().addSet(this);
  }
}

const DIGITS = () => new CharSet().add(48, 57);
const WORD = () => new CharSet().add(48, 57).add(65, 90).add(97, 122).add(95, 95);
const SPACE = () => new CharSet().add(9, 13).add(32, 32).add(128, 0x10ffff);

/** The set of a class escape (`\d`, `\W`, ...) or null when `ch` is not one. */
function classEscape(ch: string): CharSet | null {
  switch (ch) {
    case 'd':
      return DIGITS();
    case 'D':
      return DIGITS().complement();
    case 'w':
      return WORD();
    case 'W':
      return WORD().complement();
    case 's':
      return SPACE();
    case 'S':
      return SPACE().complement();
    default:
      return null;
  }
}

/** An escape at `pattern[at] === '\\'`: its set (null when zero-width) and its length. */
function escapeAtom(pattern: string, at: number): { set: CharSet | null; length: number } {
  const next = pattern[at + 1] ?? '';
  if (next === 'b' || next === 'B') return { set: null, length: 2 };
  const cls = classEscape(next);
  if (cls) return { set: cls, length: 2 };
  if (/[upPx]/.test(next) && pattern[at + 2] === '{') return { set: CharSet.full(), length: pattern.indexOf('}', at) + 1 - at };
  if (next === 'u') return { set: CharSet.of(parseInt(pattern.slice(at + 2, at + 6), 16) || 0), length: 6 };
  if (next === 'x') return { set: CharSet.of(parseInt(pattern.slice(at + 2, at + 4), 16) || 0), length: 4 };
  if (next === 'c') return { set: CharSet.full(), length: 3 };
  const controls: Record<string, number> = { n: 10, r: 13, t: 9, f: 12, v: 11, '0': 0 };
  const code = controls[next] ?? next.codePointAt(0) ?? 0;
  return { set: CharSet.of(code), length: 1 + (next.length || 1) };
}

/** The set of the class `[...]` opening at `at`, and the index past its `]`. */
function classAtom(pattern: string, at: number): { set: CharSet; end: number } {
  const end = endOfClass(pattern, at);
  let i = at + 1;
  const negated = pattern[i] === '^';
  if (negated) i++;
  const set = new CharSet();
  let prev = -1;
  while (i < end - 1) {
    if (pattern[i] === '-' && prev >= 0 && i + 1 < end - 1) {
      // A range prev-to: the upper end is a character or a simple escape.
      i++;
      let to: number;
      if (pattern[i] === '\\') {
        const e = escapeAtom(pattern, i);
        i += e.length;
        if (!e.set || e.set.high) return { set: CharSet.full(), end };
        to = highestBit(e.set);
      } else {
        to = pattern.codePointAt(i)!;
        i += to > 0xffff ? 2 : 1;
      }
      set.add(prev, to);
      prev = -1;
      continue;
    }
    if (pattern[i] === '\\') {
      const e = escapeAtom(pattern, i);
      i += e.length;
      if (!e.set) return { set: CharSet.full(), end }; // [\b] is a backspace: not worth the detail
      set.addSet(e.set);
      prev = !e.set.high && countBits(e.set) === 1 ? highestBit(e.set) : -1;
      continue;
    }
    const code = pattern.codePointAt(i)!;
    i += code > 0xffff ? 2 : 1;
    set.add(code, code);
    prev = code;
  }
  return { set: negated ? set.complement() : set, end };
}

function countBits(s: CharSet): number {
  let n = 0;
  for (const w of s.bits) for (let v = w; v !== 0; v &= v - 1) n++;
  return n;
}

function highestBit(s: CharSet): number {
  for (let w = 3; w >= 0; w--) if (s.bits[w] !== 0) return w * 32 + 31 - Math.clz32(s.bits[w]!);
  return 0;
}

/** A run of atoms being read: the set its variable-length parts can absorb, and how many there are. */
interface Chain {
  set: CharSet | null;
  degree: number;
}

/**
 * Describes a chain of more than MAX_BACKTRACK_DEGREE overlapping variable-length parts (rule 4),
 * or returns null. Groups count as one atom in their parent (their own body is judged on its own);
 * lookarounds are judged on their body only. Runs on patterns that compiled with the `u` flag.
 */
function polynomialConstruct(pattern: string): string | null {
  let worst = 0;
  // Each frame: the chain of the branch being read, and the union of everything in the group.
  interface Frame {
    chain: Chain;
    all: CharSet;
    variable: boolean;
    lookaround: boolean;
  }
  const startChain = (at: number, top: boolean): Chain => (top && pattern[at] !== '^' ? { set: CharSet.full(), degree: 1 } : { set: null, degree: 0 });
  const stack: Frame[] = [{ chain: startChain(0, true), all: new CharSet(), variable: false, lookaround: false }];
  let offender = '';
  const atom = (frame: Frame, set: CharSet, variable: boolean, to: number) => {
    frame.all.addSet(set);
    const c = frame.chain;
    if (variable) {
      frame.variable = true;
      if (c.set && c.set.overlaps(set)) {
        c.degree++;
        c.set.addSet(set);
      } else {
        c.set = set.copy();
        c.degree = 1;
      }
      if (c.degree > worst) {
        worst = c.degree;
        offender = pattern.slice(0, to);
      }
    } else if (c.set && !c.set.overlaps(set)) {
      c.set = null;
      c.degree = 0;
    }
  };
  let i = 0;
  while (i < pattern.length) {
    const frame = stack[stack.length - 1]!;
    const ch = pattern[i]!;
    let set: CharSet | null = null;
    let end = i + 1;
    if (ch === '\\') {
      const e = escapeAtom(pattern, i);
      set = e.set;
      end = i + e.length;
    } else if (ch === '[') {
      const c = classAtom(pattern, i);
      set = c.set;
      end = c.end;
    } else if (ch === '(') {
      let body = i + 1;
      let lookaround = false;
      if (pattern[body] === '?') {
        body++;
        if (pattern[body] === '<' && pattern[body + 1] !== '=' && pattern[body + 1] !== '!') body = pattern.indexOf('>', body) + 1;
        else {
          lookaround = pattern[body] !== ':';
          body += pattern[body] === '<' ? 2 : 1;
        }
      }
      stack.push({ chain: { set: null, degree: 0 }, all: new CharSet(), variable: false, lookaround });
      i = body;
      continue;
    } else if (ch === ')') {
      const group = stack.pop()!;
      const parent = stack[stack.length - 1]!;
      const q = parseQuantifier(pattern, i + 1);
      end = i + 1 + (q?.length ?? 0);
      if (!group.lookaround) atom(parent, group.all, group.variable || (q !== null && q.min !== q.max), end);
      i = end;
      continue;
    } else if (ch === '|') {
      frame.variable = true; // branches of different lengths, as far as this check knows
      frame.chain = stack.length === 1 ? startChain(i + 1, true) : { set: null, degree: 0 };
      i++;
      continue;
    } else if (ch === '^' || ch === '$') {
      i++;
      continue;
    } else if (ch === '.') {
      set = CharSet.full();
    } else {
      const code = pattern.codePointAt(i)!;
      set = CharSet.of(code);
      end = i + (code > 0xffff ? 2 : 1);
    }
    const q = parseQuantifier(pattern, end);
    const next = end + (q?.length ?? 0);
    if (set) atom(frame, set, q !== null && q.min !== q.max, next);
    i = next;
  }
  if (worst <= MAX_BACKTRACK_DEGREE) return null;
  const unanchored = pattern[0] !== '^' ? ' (an unanchored pattern counts one more: it is tried at every position; start it with ^)' : '';
  return `has ${worst} variable-length parts in a row that can match the same characters, ending at ${JSON.stringify(offender)}${unanchored}; each one multiplies the backtracking by the cell length, and at most ${MAX_BACKTRACK_DEGREE} are allowed`;
}
