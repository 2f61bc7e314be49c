import { signPayload } from '../sign';
import type { FakeObject } from './fake-stripe-store';

/** Where the fake sends its events, signed as Stripe signs them for an endpoint with this secret. */
export type FakeWebhookTarget = { url: string; secret: string };

export type FakeDelivery = {
  eventId: string;
  type: string;
  account: string | null;
  /** 1 for the first delivery of the event, then one more for each retry. */
  attempt: number;
  /** The endpoint's HTTP status, or null when no answer came (refused, timed out). */
  status: number | null;
  ok: boolean;
  /** Why no answer came. */
  error?: string;
  ms: number;
  /** For a failed attempt that will be retried: when (the fake's time, unix seconds). */
  nextAttemptAt?: number;
};

/**
 * After a failed attempt, the next one waits this long (seconds, by the fake's time): three retries
 * over a few hours, as Stripe retries in test mode (it publishes no intervals; these are the fake's).
 */
export const FAKE_RETRY_DELAYS_SECONDS: readonly number[] = [3_600, 2 * 3_600, 3 * 3_600];

/** How long an endpoint may take to answer before the delivery counts as failed (Stripe: 10–20 s). */
const DELIVERY_TIMEOUT_MS = 10_000;

/**
 * Sends events one at a time, in the order they are handed over. Each call is one attempt; the fake
 * decides whether and when a failed one is tried again.
 */
export class WebhookSender {
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly onDelivery: (d: FakeDelivery) => void) {}

  send(event: FakeObject, target: FakeWebhookTarget, attempt = 1): void {
    this.queue = this.queue.then(() => this.deliver(event, target, attempt));
  }

  /** Resolves once every event sent so far has had its attempt. */
  settled(): Promise<void> {
    return this.queue;
  }

  private async deliver(event: FakeObject, target: FakeWebhookTarget, attempt: number): Promise<void> {
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
      attempt,
      status,
      ok: status !== null && status >= 200 && status < 300,
      ...(error !== undefined && { error }),
      ms: performance.now() - started,
    };
    this.onDelivery(delivery);
  }
}
