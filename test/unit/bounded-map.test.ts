import { describe, expect, it } from 'vitest';
import { BoundedMap } from '../../src/shared/bounded-map';

describe('BoundedMap', () => {
  it('drops the oldest entry when a new key arrives while full, and never grows past its limit', () => {
    const m = new BoundedMap<string, number>(3);
    for (let i = 0; i < 10; i++) m.set(`k${i}`, i);
    expect([...m.entries()]).toEqual([
      ['k7', 7],
      ['k8', 8],
      ['k9', 9],
    ]);
  });

  it('replaces the value of a key it holds without dropping another; delete then set makes a key the newest', () => {
    const m = new BoundedMap<string, number>(2);
    m.set('a', 1).set('b', 2).set('a', 3);
    expect([...m.entries()]).toEqual([
      ['a', 3],
      ['b', 2],
    ]);
    m.delete('a');
    m.set('a', 4);
    m.set('c', 5);
    expect([...m.keys()]).toEqual(['a', 'c']);
  });

  it('at limit 1 holds the latest key', () => {
    const m = new BoundedMap<string, number>(1);
    m.set('a', 1);
    m.set('b', 2);
    expect([...m.keys()]).toEqual(['b']);
  });
});
