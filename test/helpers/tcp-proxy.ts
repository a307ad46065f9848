import net from 'node:net';

export interface FaultyProxy {
  /** `http://127.0.0.1:<port>`: point a client here instead of at the target. */
  url: string;
  /** Resets (TCP RST) the connection carrying the response once this many more bytes have gone to the client; one entry per reset. */
  resetAfter(...bytes: number[]): void;
  /** Forwards nothing more in either direction, on open and new connections, until `resume`. */
  stall(): void;
  resume(): void;
  /** Connections accepted so far. */
  connections(): number;
  close(): Promise<void>;
}

/**
 * A TCP proxy in front of `target` that can reset or stall connections on demand, to test what a
 * client does when the network fails mid-transfer (a real socket fault, not a mocked library).
 */
export async function startFaultyProxy(target: { host: string; port: number }): Promise<FaultyProxy> {
  const resets: number[] = [];
  let stalled = false;
  let accepted = 0;
  const pairs = new Set<[net.Socket, net.Socket]>();
  const server = net.createServer((client) => {
    accepted++;
    const upstream = net.connect(target.port, target.host);
    const pair: [net.Socket, net.Socket] = [client, upstream];
    pairs.add(pair);
    const drop = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    if (stalled) {
      client.pause();
      upstream.pause();
    }
    client.on('data', (chunk: Buffer) => {
      if (!upstream.destroyed) upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      // resets[0] counts down the bytes still to forward before the next reset.
      if (resets.length && chunk.length >= resets[0]!) {
        const keep = resets.shift()!;
        client.write(chunk.subarray(0, keep), () => {
          client.resetAndDestroy();
          upstream.destroy();
        });
        return;
      }
      if (resets.length) resets[0]! -= chunk.length;
      client.write(chunk);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    resetAfter: (...bytes) => {
      resets.push(...bytes);
    },
    stall: () => {
      stalled = true;
      for (const [a, b] of pairs) {
        a.pause();
        b.pause();
      }
    },
    resume: () => {
      stalled = false;
      for (const [a, b] of pairs) {
        a.resume();
        b.resume();
      }
    },
    connections: () => accepted,
    close: async () => {
      for (const [a, b] of pairs) {
        a.destroy();
        b.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
