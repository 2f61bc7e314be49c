import { setTimeout as sleep } from 'node:timers/promises';
import pThrottle from 'p-throttle';
import Stripe from 'stripe';

// Keeping under Stripe's rate limit (25 requests a second to one endpoint, and in test mode 25 to
// all of them; 100 live), and coming back after Stripe refused a request for it.

/**
 * `request`, started at most `perSecond` times within any second however many callers share it (a
 * sliding window; a call waits its turn). `Infinity` leaves it as it is.
 */
export function atMostPerSecond<A extends unknown[], R>(
  perSecond: number,
  request: (...args: A) => Promise<R>,
): (...args: A) => Promise<R> {
  if (!(perSecond >= 1)) throw new RangeError(`requests per second must be at least 1; got ${perSecond}`);
  if (!Number.isFinite(perSecond)) return request;
  // A window of 1,050 ms: timers fire a millisecond either side of the clock, and the SDK and the
  // network add their own jitter before a request reaches Stripe.
  // The throttle calls `request` from a timer: one that throws, rather than rejects, must not escape.
  return pThrottle({ limit: Math.floor(perSecond), interval: 1_050, strict: true })(async (...args: A) =>
    request(...args),
  );
}

/**
 * The waits before each new try of a request Stripe refused for its rate: 1, 2, 4 and 8 s, each
 * lengthened by up to half at random, so that callers refused together do not come back together.
 */
export const RATE_LIMIT_BACKOFF_MS: readonly number[] = [1_000, 2_000, 4_000, 8_000];

/** Stripe refused the request for its rate (429, or `rate_limit`, as the SDK reads it). */
export function isRateLimited(err: unknown): boolean {
  return err instanceof Stripe.errors.StripeRateLimitError;
}

/**
 * `request`, made again while Stripe refuses it for its rate, after each of `backoffMs` in turn
 * (`RATE_LIMIT_BACKOFF_MS`); past the last, or once `signal` is aborted, the refusal is thrown. The
 * SDK's own retries leave a 429 alone: Stripe's advice is to back off.
 */
export function retryingRateLimited<A extends unknown[], R>(
  request: (...args: A) => Promise<R>,
  options: {
    signal?: AbortSignal;
    backoffMs?: readonly number[];
    /** How a wait is made (a timer by default); rejects when `signal` is aborted. */
    wait?: (ms: number, signal?: AbortSignal) => Promise<unknown>;
  } = {},
): (...args: A) => Promise<R> {
  const {
    signal,
    backoffMs = RATE_LIMIT_BACKOFF_MS,
    wait = (ms: number, s?: AbortSignal) => sleep(ms, undefined, { signal: s }),
  } = options;
  return async (...args: A) => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await request(...args);
      } catch (err) {
        if (!isRateLimited(err) || attempt >= backoffMs.length || signal?.aborted) throw err;
        await wait(backoffMs[attempt] * (1 + Math.random() / 2), signal).catch(() => Promise.reject(err));
      }
    }
  };
}
