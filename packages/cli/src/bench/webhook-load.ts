import { Worker } from 'node:worker_threads';
import { p99 } from './http-load';

// The load generator runs on its own thread so the server's event loop is not also the client's. It
// writes each request, built before the clock starts, in one piece on a keep-alive socket and reads
// only the status line and framing of the answer. On two shared cores the ingest bench measured
// 0.63–0.73 ms of CPU per webhook with Node's HTTP client and 0.63–0.93 ms with undici's, against
// 0.43–0.57 ms with this one: the client's cost is charged to the server under test, which shares
// the cores.
const LOAD_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const net = require('node:net');
function connect(host, port) {
  const socket = net.connect({ host, port });
  socket.setNoDelay(true);
  const conn = { socket, buf: null, waiting: null, dead: null };
  const fail = (err) => {
    conn.dead = err;
    const w = conn.waiting;
    conn.waiting = null;
    if (w) w.reject(err);
  };
  socket.on('error', fail);
  socket.on('close', () => fail(new Error('connection closed')));
  socket.on('data', (chunk) => {
    conn.buf = conn.buf ? Buffer.concat([conn.buf, chunk]) : chunk;
    const end = conn.buf.indexOf('\\r\\n\\r\\n');
    if (end < 0 || !conn.waiting) return;
    const head = conn.buf.toString('latin1', 0, end);
    const length = /\\r\\ncontent-length: *(\\d+)/i.exec(head);
    if (!length) return fail(new Error('an answer without content-length: ' + head));
    const total = end + 4 + Number(length[1]);
    if (conn.buf.length < total) return;
    conn.buf = conn.buf.length > total ? conn.buf.subarray(total) : null;
    const w = conn.waiting;
    conn.waiting = null;
    w.resolve({ status: Number(head.slice(9, 12)), close: /\\r\\nconnection: *close/i.test(head) });
  });
  return conn;
}
function send(conn, request) {
  if (conn.dead) return Promise.reject(conn.dead);
  return new Promise((resolve, reject) => {
    conn.waiting = { resolve, reject };
    conn.socket.write(request);
  });
}
(async () => {
  const { url, bodies, headers, concurrency } = workerData;
  const u = new URL(url);
  const requests = bodies.map((body, i) =>
    Buffer.from(
      'POST ' + u.pathname + ' HTTP/1.1\\r\\nhost: ' + u.host +
        '\\r\\ncontent-type: application/json\\r\\ncontent-length: ' + Buffer.byteLength(body) +
        '\\r\\nstripe-signature: ' + headers[i] + '\\r\\n\\r\\n' + body,
    ),
  );
  const latencies = new Float64Array(bodies.length);
  const statuses = {};
  let next = 0;
  let errors = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    // A connection the server closed is opened again only for a next request.
    let conn = null;
    for (;;) {
      const i = next++;
      if (i >= bodies.length) break;
      if (!conn) conn = connect(u.hostname, Number(u.port));
      const t0 = performance.now();
      try {
        const { status, close } = await send(conn, requests[i]);
        statuses[status] = (statuses[status] || 0) + 1;
        if (close) {
          conn.socket.destroy();
          conn = null;
        }
      } catch (err) {
        errors++;
        conn.socket.destroy();
        conn = null;
      }
      latencies[i] = performance.now() - t0;
    }
    if (conn) conn.socket.destroy();
  }));
  parentPort.postMessage({ elapsedMs: performance.now() - started, latencies, statuses, errors });
})();
`;

export type LoadRun = {
  /** Answers with status 200 per second, from the first request to the last answer. */
  perSecond: number;
  p99Ms: number;
  /** Requests not answered 200 (other statuses, broken connections). */
  failures: number;
  /** Answers by status. */
  statuses: Record<string, number>;
};

/**
 * Posts each body once, with its `Stripe-Signature` header, keeping `concurrency` requests in flight
 * on keep-alive connections, from a worker thread.
 */
export function postAll(
  url: string,
  bodies: readonly string[],
  headers: readonly string[],
  concurrency: number,
): Promise<LoadRun> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(LOAD_WORKER, { eval: true, workerData: { url, bodies, headers, concurrency } });
    worker.once('error', reject);
    worker.once(
      'message',
      (m: {
        elapsedMs: number;
        latencies: Float64Array;
        statuses: Record<string, number>;
        errors: number;
      }) => {
        void worker.terminate();
        const ok = m.statuses['200'] ?? 0;
        resolve({
          perSecond: (ok / m.elapsedMs) * 1000,
          p99Ms: p99(m.latencies),
          failures: bodies.length - ok,
          statuses: m.statuses,
        });
      },
    );
  });
}
