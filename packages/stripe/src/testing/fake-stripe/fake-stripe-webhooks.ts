import { signPayload } from '../sign';
import type { FakeObject } from './fake-stripe-store';

/** Where the fake sends its events, signed as Stripe signs them for an endpoint with this secret. */
export type FakeWebhookTarget = { url: string; secret: string };

export type FakeDelivery = {
  eventId: string;
  type: string;
  account: string | null;
  /** The endpoint's HTTP status, or null when no answer came (refused, timed out). */
  status: number | null;
  ok: boolean;
  /** Why no answer came. */
  error?: string;
  ms: number;
};

/** How long an endpoint may take to answer before the delivery counts as failed (Stripe: 10–20 s). */
const DELIVERY_TIMEOUT_MS = 10_000;

/**
 * Sends events one at a time, in the order they were recorded, one attempt each. A failed delivery
 * is reported, not retried: the event stays in the Events API (listed with `delivery_success=false`),
 * which is what a reconciler recovers it from.
 */
export class WebhookSender {
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly onDelivery: (d: FakeDelivery) => void) {}

  send(event: FakeObject, target: FakeWebhookTarget): void {
    this.queue = this.queue.then(() => this.deliver(event, target));
  }

  /** Resolves once every event sent so far has had its attempt. */
  settled(): Promise<void> {
    return this.queue;
  }

  private async deliver(event: FakeObject, target: FakeWebhookTarget): Promise<void> {
    const started = performance.now();
    // Signed when sent, with the wall clock: the receiver checks the timestamp against its own.
    const { rawBody, header } = signPayload(event as never, target.secret, Math.floor(Date.now() / 1000));
    let status: number | null = null;
    let error: string | undefined;
    try {
      const res = await fetch(target.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json; charset=utf-8',
          'stripe-signature': header,
          'user-agent': 'Stripe/1.0 (+https://stripe.com/docs/webhooks)',
        },
        body: rawBody,
        signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS),
      });
      await res.arrayBuffer();
      status = res.status;
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause;
      error = cause?.code ?? (err as Error).message;
    }
    const delivery: FakeDelivery = {
      eventId: event.id,
      type: String(event.type),
      account: typeof event.account === 'string' ? event.account : null,
      status,
      ok: status !== null && status >= 200 && status < 300,
      ...(error !== undefined && { error }),
      ms: performance.now() - started,
    };
    this.onDelivery(delivery);
  }
}
