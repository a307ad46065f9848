/**
 * The set of composite unique keys seen in one file, with the line of each key's first row.
 *
 * Why not `Map<string, number>`: measured on 1M rows with a 3-column key, the Map (joined key
 * strings, one heap string and entry per row) cost ~1.5 s of a 3.2 s run, mostly hashing ropes and
 * garbage collection of a million retained strings. Here keys live as UTF-16 code units in one
 * growing typed array, with an open-addressing table of entry numbers: no per-key objects,
 * nothing for the GC to trace.
 *
 * Memory: about 2 bytes per key character + 32 bytes per key (for 1M keys of 30 characters,
 * ~85 MB), growing with the number of distinct keys, never with the file size otherwise.
 */
export class KeyIndex {
  private chars = new Uint16Array(64 * 1024);
  private used = 0;
  private offsets = new Uint32Array(1024);
  private lengths = new Uint32Array(1024);
  private lines = new Float64Array(1024);
  private count = 0;
  /**
   * Open addressing with linear probing: slot i is `[entry + 1, hash]` at 2i, 2i+1 (entry 0 =
   * empty). The hash sits beside the entry so a probe compares it without a second cache miss.
   * Kept at most half full so probe runs stay short.
   */
  private slots = new Int32Array(2 * 2048);
  private slotCount = 2048;

  get size(): number {
    return this.count;
  }

  /**
   * Adds the key made of `values[indexes[0]], values[indexes[1]], ...` for a row at `line`.
   * Returns -1 when the key is new, otherwise the line where it was first seen (and adds nothing).
   * Parts are separated by NUL, which never occurs inside a value, so `("a","bc")` != `("ab","c")`.
   */
  firstLineOf(values: readonly string[], indexes: readonly number[], line: number): number {
    let needed = indexes.length;
    for (let k = 0; k < indexes.length; k++) needed += values[indexes[k]!]!.length;
    if (this.used + needed > this.chars.length) this.chars = grow(this.chars, this.used + needed);

    const chars = this.chars;
    const start = this.used;
    let end = start;
    let h = 0x811c9dc5; // FNV-1a over UTF-16 code units
    for (let k = 0; k < indexes.length; k++) {
      if (k > 0) {
        chars[end++] = 0;
        h = Math.imul(h, 0x01000193);
      }
      const part = values[indexes[k]!]!;
      for (let i = 0; i < part.length; i++) {
        const unit = part.charCodeAt(i);
        chars[end++] = unit;
        h = Math.imul(h ^ unit, 0x01000193);
      }
    }
    h = mix(h);
    const length = end - start;

    const slots = this.slots;
    const mask = this.slotCount - 1;
    let slot = h & mask;
    for (let e = slots[2 * slot]!; e !== 0; e = slots[2 * slot]!) {
      const entry = e - 1;
      if (slots[2 * slot + 1] === h && this.lengths[entry] === length && sameChars(chars, this.offsets[entry]!, start, length)) {
        return this.lines[entry]!;
      }
      slot = (slot + 1) & mask;
    }

    if (this.count === this.offsets.length) this.growEntries();
    const entry = this.count++;
    this.offsets[entry] = start;
    this.lengths[entry] = length;
    this.lines[entry] = line;
    slots[2 * slot] = entry + 1;
    slots[2 * slot + 1] = h;
    this.used = end;
    if (this.count * 2 > this.slotCount) this.rehash();
    return -1;
  }

  private growEntries(): void {
    const size = this.offsets.length * 2;
    this.offsets = grow(this.offsets, size);
    this.lengths = grow(this.lengths, size);
    this.lines = grow(this.lines, size);
  }

  private rehash(): void {
    const old = this.slots;
    const slotCount = this.slotCount * 2;
    const slots = new Int32Array(2 * slotCount);
    const mask = slotCount - 1;
    for (let i = 0; i < old.length; i += 2) {
      if (old[i] === 0) continue;
      const h = old[i + 1]!;
      let slot = h & mask;
      while (slots[2 * slot] !== 0) slot = (slot + 1) & mask;
      slots[2 * slot] = old[i]!;
      slots[2 * slot + 1] = h;
    }
    this.slots = slots;
    this.slotCount = slotCount;
  }
}

type TypedArray = Uint16Array | Uint32Array | Float64Array;

/** A copy of `array` with room for at least `minLength` items (doubling, to amortise copies). */
function grow<T extends TypedArray>(array: T, minLength: number): T {
  let length = array.length * 2;
  while (length < minLength) length *= 2;
  const bigger = new (array.constructor as new (n: number) => T)(length);
  bigger.set(array as never);
  return bigger;
}

function sameChars(chars: Uint16Array, a: number, b: number, length: number): boolean {
  for (let i = 0; i < length; i++) if (chars[a + i] !== chars[b + i]) return false;
  return true;
}

/** murmur3's finaliser: spreads FNV's weak low bits, which pick the slot. */
function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}
