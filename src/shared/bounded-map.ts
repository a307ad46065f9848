/**
 * A Map of at most `limit` entries: setting a key it does not hold while full first drops the
 * oldest entry (the first in iteration order, as a Map keeps insertion order). A caller that
 * wants "recently used" order deletes a key before setting it again. For the process's small
 * caches, so that a client cycling through distinct keys cannot grow them.
 */
export class BoundedMap<K, V> extends Map<K, V> {
  constructor(private readonly limit: number) {
    super();
  }

  override set(key: K, value: V): this {
    if (this.size >= this.limit && !this.has(key)) {
      const oldest = this.keys().next();
      if (!oldest.done) this.delete(oldest.value);
    }
    return super.set(key, value);
  }
}
