/** Estimated entropy below which a configured secret is refused, in bits (a random 32-character hex string scores about 110, rarely below 90). */
export const MIN_SECRET_ENTROPY_BITS = 80;
/** Fewest distinct characters a configured secret may use. */
export const MIN_SECRET_DISTINCT_CHARS = 8;

/**
 * Why `secret` is too weak to sign with, or undefined. Length alone lets `' '.repeat(32)` or
 * `'a'.repeat(40)` through; this also refuses whitespace-only strings, few distinct characters,
 * a short pattern repeated, mostly-sequential text (`abcdef…`, `123456…`), and low estimated
 * entropy (the Shannon entropy of its characters times its length, an upper bound for text
 * a person typed).
 */
export function secretWeakness(secret: string): string | undefined {
  const chars = [...secret];
  if (chars.length === 0 || /^\s*$/u.test(secret)) return 'is only whitespace';
  const counts = new Map<string, number>();
  for (const c of chars) counts.set(c, (counts.get(c) ?? 0) + 1);
  if (counts.size < MIN_SECRET_DISTINCT_CHARS) {
    return `uses only ${counts.size} distinct character${counts.size === 1 ? '' : 's'}; at least ${MIN_SECRET_DISTINCT_CHARS} are needed`;
  }
  for (let period = 1; period <= chars.length / 2; period++) {
    let i = period;
    while (i < chars.length && chars[i] === chars[i - period]) i++;
    if (i === chars.length) return `repeats a ${period}-character pattern`;
  }
  let steps = 0;
  for (let i = 1; i < chars.length; i++) {
    if (Math.abs(chars[i]!.codePointAt(0)! - chars[i - 1]!.codePointAt(0)!) <= 1) steps++;
  }
  if (steps / (chars.length - 1) > 0.6) return 'is mostly a simple sequence (abc…, 123…) or repeated characters';
  let bitsPerChar = 0;
  for (const n of counts.values()) {
    const p = n / chars.length;
    bitsPerChar -= p * Math.log2(p);
  }
  const bits = Math.floor(bitsPerChar * chars.length);
  if (bits < MIN_SECRET_ENTROPY_BITS) return `has an estimated ${bits} bits of entropy; at least ${MIN_SECRET_ENTROPY_BITS} are needed`;
  return undefined;
}
