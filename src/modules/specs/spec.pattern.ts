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
 * It also rejects some safe patterns (`(ab|cd)+`, where the branches cannot overlap); a character
 * class or a fixed-width group (`[abcd]+`, `(\d{3}-)+`) usually says the same thing.
 * Not covered: polynomial blow-ups from adjacent overlapping quantifiers (`\d+\d+\d+x`), which
 * stay cheap at cell lengths.
 */
export const MAX_PATTERN_LENGTH = 200;

export type PatternCheck =
  | { ok: true; regex: RegExp }
  | { ok: false; code: 'UNSAFE_PATTERN' | 'INVALID_PATTERN'; message: string };

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
  const unsafe = findUnsafeConstruct(pattern);
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
