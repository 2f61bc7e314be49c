import net from 'node:net';

// A TCP proxy in front of a server that can stall: it stops passing bytes either way while every
// connection stays open, as a database behind a network that drops its packets does, and passes
// them on again (nothing lost) once healed.

export type StallProxy = {
  /** host:port to connect to instead of the target. */
  readonly port: number;
  stall(): void;
  heal(): void;
  close(): Promise<void>;
};

export async function startStallProxy(target: { host: string; port: number }): Promise<StallProxy> {
  const pairs = new Set<{ client: net.Socket; upstream: net.Socket }>();
  let stalled = false;
  const server = net.createServer((client) => {
    const upstream = net.connect(target);
    const pair = { client, upstream };
    pairs.add(pair);
    // A paused socket reads nothing more: the bytes wait in the kernel's buffers, then TCP's window.
    // (No pipe(): its backpressure handling would resume a stalled socket.)
    client.on('data', (d: Buffer) => upstream.write(d));
    upstream.on('data', (d: Buffer) => client.write(d));
    if (stalled) {
      client.pause();
      upstream.pause();
    }
    const end = () => {
      client.destroy();
      upstream.destroy();
      pairs.delete(pair);
    };
    for (const s of [client, upstream]) {
      s.on('error', end);
      s.on('close', end);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    stall() {
      stalled = true;
      for (const { client, upstream } of pairs) {
        client.pause();
        upstream.pause();
      }
    },
    heal() {
      stalled = false;
      for (const { client, upstream } of pairs) {
        client.resume();
        upstream.resume();
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const { client, upstream } of pairs) {
          client.destroy();
          upstream.destroy();
        }
        server.close(() => resolve());
      }),
  };
}
