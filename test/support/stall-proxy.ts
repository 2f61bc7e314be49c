import net from 'node:net';

// A TCP proxy in front of a server that can stall: it stops passing bytes either way while every
// connection stays open, as a database behind a network that drops its packets does, and passes
// them on again (nothing lost) once healed. Or it fails over: the server's side of every connection
// open then is closed (the old primary is gone, and its sessions with it) while the client's side
// hears nothing more, ever, as across a network that drops the packets of a host no longer there;
// new connections reach the server.

export type StallProxy = {
  /** host:port to connect to instead of the target. */
  readonly port: number;
  stall(): void;
  heal(): void;
  /** Connections open now: the server's side closes, the client's hangs; new ones pass. */
  failover(): void;
  close(): Promise<void>;
};

export async function startStallProxy(target: { host: string; port: number }): Promise<StallProxy> {
  const pairs = new Set<{ client: net.Socket; upstream: net.Socket }>();
  let stalled = false;
  /** Pairs whose server side a failover closed: their client side is never answered. */
  const abandoned = new WeakSet<object>();
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
    client.on('error', end);
    client.on('close', end);
    upstream.on('error', () => abandoned.has(pair) || end());
    upstream.on('close', () => abandoned.has(pair) || end());
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
      for (const pair of pairs) {
        if (abandoned.has(pair)) continue;
        const { client, upstream } = pair;
        client.resume();
        upstream.resume();
      }
    },
    failover() {
      stalled = false;
      for (const pair of pairs) {
        abandoned.add(pair);
        pair.client.pause();
        pair.upstream.destroy();
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
