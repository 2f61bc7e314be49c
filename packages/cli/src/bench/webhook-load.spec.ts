import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { postAll } from './webhook-load';

type Received = { body: string; signature: string | undefined; type: string | undefined };

async function serve(answer: (req: IncomingMessage, body: string, res: ServerResponse) => void): Promise<{
  url: string;
  received: Received[];
  connections: () => number;
  /** Connections that carried at least one request. */
  used: () => number;
  close(): Promise<void>;
}> {
  const received: Received[] = [];
  const sockets = new Set<unknown>();
  let connections = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      sockets.add(req.socket);
      const body = Buffer.concat(chunks).toString('utf8');
      received.push({
        body,
        signature: req.headers['stripe-signature'] as string | undefined,
        type: req.headers['content-type'],
      });
      answer(req, body, res);
    });
  });
  server.on('connection', () => connections++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/webhooks/stripe`,
    received,
    connections: () => connections,
    used: () => sockets.size,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

function send(res: ServerResponse, status: number, body: string, close = false) {
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    ...(close && { connection: 'close' }),
  });
  res.end(body);
}

describe('postAll (the ingest bench’s load generator)', () => {
  it('sends every body once with its signature and counts the answers by status', async () => {
    // Bodies of several sizes, some above one TCP segment, and answers that close their connection.
    const bodies = Array.from({ length: 400 }, (_, i) =>
      JSON.stringify({ id: `evt_${i}`, pad: 'é'.repeat(i % 7 === 0 ? 40_000 : i) }),
    );
    const headers = bodies.map((_, i) => `t=1,v1=sig${i}`);
    const server = await serve((_req, body, res) => {
      const i = Number(/evt_(\d+)/.exec(body)![1]);
      if (i % 3 === 0) send(res, 400, JSON.stringify({ error: 'bad signature', detail: 'x'.repeat(i) }));
      else send(res, 200, JSON.stringify({ received: true }), i % 10 === 1);
    });
    try {
      const run = await postAll(server.url, bodies, headers, 8);
      expect(run.statuses).toEqual({ '200': 266, '400': 134 });
      expect(run.failures).toBe(134);
      expect(run.perSecond).toBeGreaterThan(0);
      expect(run.p99Ms).toBeGreaterThan(0);
      expect(server.received).toHaveLength(400);
      const byId = new Map(server.received.map((r) => [JSON.parse(r.body).id as string, r]));
      bodies.forEach((body, i) => {
        expect(byId.get(`evt_${i}`)).toEqual({ body, signature: headers[i], type: 'application/json' });
      });
      // Kept alive: 8 connections, and one more after each 200 that closed its own when its lane has
      // a next request (a lane's last answer may be one of them), none opened for nothing.
      const closing = bodies.filter((_, i) => i % 3 !== 0 && i % 10 === 1).length;
      expect(closing).toBe(27);
      expect(server.connections()).toBe(server.used());
      expect(server.connections()).toBeGreaterThanOrEqual(closing);
      expect(server.connections()).toBeLessThanOrEqual(8 + closing);
    } finally {
      await server.close();
    }
  }, 30_000);

  it('counts an answer it cannot frame as a failure instead of waiting for it', async () => {
    const server = await serve((_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }); // chunked: no content-length
      res.end('{}');
    });
    try {
      const run = await postAll(
        server.url,
        ['{"id":"evt_1"}', '{"id":"evt_2"}'],
        ['t=1,v1=a', 't=1,v1=b'],
        2,
      );
      expect(run.failures).toBe(2);
      expect(run.statuses).toEqual({});
    } finally {
      await server.close();
    }
  }, 30_000);
});
