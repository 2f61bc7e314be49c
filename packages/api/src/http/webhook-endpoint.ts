import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Metrics } from './metrics';

/** The Stripe webhook ingestor (from @gatehouse/stripe), framework-free. */
export type WebhookIngest = (
  raw: Buffer,
  signature: string | undefined,
) => Promise<{ status: number; body: unknown }>;

export const WEBHOOK_PATH = '/webhooks/stripe';

/** A caller's `x-request-id` when it is a sane token, else a new one. */
export function requestIdOf(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && /^[A-Za-z0-9._-]{1,100}$/.test(given) ? given : randomUUID();
}

/**
 * One access-log line and the HTTP metrics when the response is sent, without a child logger per
 * request; headers are never logged (they carry tokens and Stripe signatures).
 */
export function trackRequest(
  req: IncomingMessage,
  res: ServerResponse,
  id: string,
  route: string,
  log: Logger,
  metrics: Metrics,
  options: { logged?: boolean } = {},
): void {
  const started = process.hrtime.bigint();
  res.on('finish', () => {
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    metrics.httpDuration.observe({ route }, seconds);
    metrics.httpRequests.inc({ route, status: String(res.statusCode) });
    if (options.logged === false) return;
    const level = res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'info';
    if (!log.isLevelEnabled(level)) return;
    log[level](
      {
        req: { id, method: req.method, url: req.url },
        res: { statusCode: res.statusCode },
        responseTime: seconds * 1000,
      },
      'request completed',
    );
  });
}

function send(res: ServerResponse, status: number, body: unknown, close = false): void {
  const json = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(json),
    ...(close && { connection: 'close' }),
  });
  res.end(json);
}

/**
 * `POST /webhooks/stripe`, served by Node's HTTP server ahead of Express: the hot path of ingest
 * (Stripe delivers every event here) costs a fraction of a routed request. The raw bytes go to the
 * ingestor untouched, as Stripe signed them; a body over the limit is refused with 413 unread.
 * Answers `false` for any other request, which then goes to Express.
 */
export function webhookEndpoint(opts: {
  ingest: WebhookIngest | undefined;
  log: Logger;
  metrics: Metrics;
  bodyLimitBytes: number;
}): (req: IncomingMessage, res: ServerResponse) => boolean {
  const { ingest, log, metrics, bodyLimitBytes } = opts;
  const tooLarge = { error: 'request body too large' };
  return (req, res) => {
    if (req.method !== 'POST') return false;
    const url = req.url ?? '';
    if (url !== WEBHOOK_PATH && !url.startsWith(`${WEBHOOK_PATH}?`)) return false;

    const id = requestIdOf(req);
    res.setHeader('x-request-id', id);
    trackRequest(req, res, id, WEBHOOK_PATH, log, metrics);
    if (!ingest) {
      send(res, 503, { error: 'webhooks are not configured: set STRIPE_WEBHOOK_SECRET' });
      return true;
    }
    const declared = Number(req.headers['content-length']);
    if (declared > bodyLimitBytes) {
      send(res, 413, tooLarge, true);
      return true;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    req.on('data', (chunk: Buffer) => {
      if (refused) return;
      size += chunk.length;
      if (size > bodyLimitBytes) {
        refused = true;
        chunks.length = 0;
        send(res, 413, tooLarge, true);
        return;
      }
      chunks.push(chunk);
    });
    req.on('error', () => undefined);
    req.on('end', () => {
      if (refused) return;
      const raw = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size);
      const signature = req.headers['stripe-signature'];
      ingest(raw, typeof signature === 'string' ? signature : undefined).then(
        (result) => {
          metrics.webhooks.inc({ outcome: String(result.status) });
          send(res, result.status, result.body);
        },
        (err: unknown) => {
          log.error({ err, url }, 'unhandled HTTP error');
          send(res, 500, { error: 'internal error' });
        },
      );
    });
    return true;
  };
}
