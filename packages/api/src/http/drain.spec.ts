import {
  createServer,
  request,
  Agent,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { HttpDrain } from './drain';

// A real HTTP server on loopback: requests held open until the test lets them answer.

type Answer = { status: number; connection: string | undefined; body: string };

function get(port: number, path: string, agent?: Agent): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

function collectingLog() {
  const lines: { msg: string; [k: string]: unknown }[] = [];
  const log = pino(
    { level: 'info' },
    { write: (line: string) => void lines.push(JSON.parse(line) as { msg: string }) },
  );
  return { log, lines };
}

describe('HttpDrain', () => {
  let server: Server;
  let port: number;
  let drain: HttpDrain;
  /** Requests to /held wait here until released. */
  let held: { res: ServerResponse; release: () => void }[];
  const arrived = () => held.length;

  beforeEach(async () => {
    drain = new HttpDrain();
    held = [];
    server = createServer(
      drain.track((req: IncomingMessage, res: ServerResponse) => {
        if (req.url === '/held') {
          held.push({ res, release: () => res.end('held answer') });
          return;
        }
        res.end('quick answer');
      }),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });

  afterEach(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const waitFor = async (cond: () => boolean) => {
    for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
    expect(cond()).toBe(true);
  };

  it('answers a request begun before the stop, with Connection: close, and refuses new connections', async () => {
    const { log, lines } = collectingLog();
    const answer = get(port, '/held');
    await waitFor(() => arrived() === 1);
    expect(drain.openRequests).toBe(1);

    let closed = false;
    const closing = drain.close(server, 10_000, log).then(() => (closed = true));
    await expect(get(port, '/quick')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await new Promise((r) => setTimeout(r, 50));
    expect(closed).toBe(false);

    held[0].release();
    await expect(answer).resolves.toEqual({ status: 200, connection: 'close', body: 'held answer' });
    await closing;
    expect(drain.openRequests).toBe(0);
    expect(lines.map((l) => l.msg)).toEqual(['answering open requests']);
    expect(lines[0]).toMatchObject({ openRequests: 1, graceSeconds: 10 });
  });

  it('does not wait for idle keep-alive connections', async () => {
    const agent = new Agent({ keepAlive: true });
    try {
      const first = await get(port, '/quick', agent);
      expect(first.connection).toBe('keep-alive');
      const started = Date.now();
      await drain.close(server, 10_000, pino({ level: 'silent' }));
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      agent.destroy();
    }
  });

  it('cuts what is still open when the grace period ends', async () => {
    const { log, lines } = collectingLog();
    const answer = get(port, '/held');
    await waitFor(() => arrived() === 1);
    const started = Date.now();
    await drain.close(server, 200, log);
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(190);
    expect(took).toBeLessThan(5_000);
    await expect(answer).rejects.toMatchObject({ code: 'ECONNRESET' });
    expect(lines.map((l) => l.msg)).toEqual([
      'answering open requests',
      'requests still open at the end of the shutdown grace period: their connections are closed',
    ]);
    expect(lines[1]).toMatchObject({ cut: 1 });
  });

  it('cut() stops waiting at once', async () => {
    const answer = get(port, '/held');
    await waitFor(() => arrived() === 1);
    const started = Date.now();
    const closing = drain.close(server, 60_000, pino({ level: 'silent' }));
    await new Promise((r) => setTimeout(r, 50));
    drain.cut();
    await closing;
    expect(Date.now() - started).toBeLessThan(5_000);
    await expect(answer).rejects.toMatchObject({ code: 'ECONNRESET' });
  });

  it('with no open request, closes at once and logs nothing', async () => {
    const { log, lines } = collectingLog();
    await drain.close(server, 60_000, log);
    expect(lines).toEqual([]);
    await expect(get(port, '/quick')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });
});
