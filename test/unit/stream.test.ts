import { describe, expect, it } from 'vitest';
import { PullStream } from '../../src/shared/stream';

describe('PullStream', () => {
  it('reads only when its consumer asks, however often it is woken', async () => {
    let reads = 0;
    let next = 1;
    const stream = new PullStream<number>(async () => {
      reads++;
      return { items: [next++, next++], done: false };
    });
    // A consumer that does not read costs nothing: wakes do not read or queue.
    for (let i = 0; i < 10_000; i++) stream.wake();
    expect(reads).toBe(0);
    expect(await stream.next()).toEqual({ value: 1, done: false });
    expect(await stream.next()).toEqual({ value: 2, done: false });
    expect(reads).toBe(1);
    await stream.return();
  });

  it('waits for a wake after an empty read, serves the initial items first and ends after a done batch', async () => {
    const batches = [
      { items: [] as string[], done: false },
      { items: ['b', 'c'], done: true },
    ];
    let closed = 0;
    const stream = new PullStream<string>(async () => batches.shift()!, { initial: ['a'], onClose: () => closed++ });
    expect(await stream.next()).toEqual({ value: 'a', done: false });
    const pending = stream.next();
    let settled = false;
    void pending.then(() => (settled = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(settled).toBe(false);
    stream.wake();
    expect(await pending).toEqual({ value: 'b', done: false });
    expect(await stream.next()).toEqual({ value: 'c', done: false });
    expect(await stream.next()).toEqual({ value: undefined, done: true });
    expect(closed).toBe(1);
  });

  it('return() ends a waiting consumer and runs onClose once; fail() throws after the held batch', async () => {
    let closed = 0;
    const idle = new PullStream<number>(async () => ({ items: [], done: false }), { onClose: () => closed++ });
    const waiting = idle.next();
    await new Promise((r) => setTimeout(r, 10));
    await idle.return();
    await idle.return();
    expect(await waiting).toEqual({ value: undefined, done: true });
    expect(closed).toBe(1);

    const failing = new PullStream<number>(async () => ({ items: [1], done: false }));
    expect(await failing.next()).toEqual({ value: 1, done: false });
    failing.fail(new Error('behind'));
    await expect(failing.next()).rejects.toThrow('behind');
    expect(await failing.next()).toEqual({ value: undefined, done: true });
  });
});
