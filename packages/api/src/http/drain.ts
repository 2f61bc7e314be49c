import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Logger } from 'pino';

type Listener = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * Graceful stop of an HTTP server: new connections are refused at once, idle keep-alive connections
 * closed, and the requests already being answered are let finish (a webhook whose append is under
 * way gets its 200, a mutation its answer) for up to a grace period, each answered with
 * `Connection: close` so that clients and load balancers go elsewhere. Then whatever is still open is
 * cut.
 */
export class HttpDrain {
  private readonly open = new Set<ServerResponse>();
  private stoppingSince: number | null = null;
  private settled: (() => void) | null = null;

  /** Requests being answered now. */
  get openRequests(): number {
    return this.open.size;
  }

  /** Wraps the server's listener to keep count of the requests being answered. */
  track(listener: Listener): Listener {
    return (req, res) => {
      this.open.add(res);
      // 'close' comes once the response is sent, or once its connection has gone.
      res.once('close', () => {
        this.open.delete(res);
        if (this.open.size === 0) this.settled?.();
      });
      if (this.stoppingSince !== null) res.setHeader('connection', 'close');
      listener(req, res);
    };
  }

  /**
   * Stops `server`: resolves once every request has been answered, or `graceMs` after the call (or
   * at `cut()`), when the connections still open are closed.
   */
  async close(server: Server, graceMs: number, log: Logger): Promise<void> {
    this.stoppingSince = Date.now();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    for (const res of this.open) if (!res.headersSent) res.setHeader('connection', 'close');
    if (this.open.size > 0) {
      log.info({ openRequests: this.open.size, graceSeconds: graceMs / 1000 }, 'answering open requests');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, graceMs);
        this.settled = done;
        function done() {
          clearTimeout(timer);
          resolve();
        }
      });
      this.settled = null;
      if (this.open.size > 0) {
        log.warn(
          { cut: this.open.size, afterMs: Date.now() - this.stoppingSince },
          'requests still open at the end of the shutdown grace period: their connections are closed',
        );
      }
    }
    server.closeAllConnections();
    await closed;
  }

  /** During `close`: stop waiting for open requests (a second stop signal). */
  cut(): void {
    this.settled?.();
  }
}
