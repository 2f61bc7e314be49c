import Stripe from 'stripe';
import { rateLimitedError as rateLimited } from '../testing/stripe-errors';
import { isRateLimited, retryingRateLimited } from './stripe-rate';

/** A request refused for Stripe's rate `refusals` times, then answered; the times it was made. */
function refusedThenAnswered(refusals: number) {
  const made: number[] = [];
  const request = async (answer: string) => {
    made.push(performance.now());
    if (made.length <= refusals) throw rateLimited();
    return answer;
  };
  return { made, request };
}

describe('retryingRateLimited', () => {
  it('makes the request again after each wait while Stripe refuses it for its rate', async () => {
    const { made, request } = refusedThenAnswered(2);
    await expect(retryingRateLimited(request, { backoffMs: [40, 80, 160] })('answered')).resolves.toBe(
      'answered',
    );
    expect(made).toHaveLength(3);
    // Each wait at least the one given (a timer may fire later on a busy machine, never earlier).
    expect(made[1] - made[0]).toBeGreaterThanOrEqual(39);
    expect(made[2] - made[1]).toBeGreaterThanOrEqual(79);
  });

  it('lengthens each wait by at most half, at random', async () => {
    const waits: number[] = [];
    for (let run = 0; run < 50; run++) {
      const { request } = refusedThenAnswered(3);
      await retryingRateLimited(request, {
        backoffMs: [40, 80, 160],
        wait: async (ms) => void waits.push(ms),
      })('answered');
    }
    const nth = (i: number) => waits.filter((_, k) => k % 3 === i);
    [40, 80, 160].forEach((given, i) => {
      expect(Math.min(...nth(i))).toBeGreaterThanOrEqual(given);
      expect(Math.max(...nth(i))).toBeLessThanOrEqual(given * 1.5);
    });
    // Not the same for every caller: refused together, they do not come back together.
    expect(new Set(nth(0)).size).toBeGreaterThan(1);
  });

  it('throws the refusal once past the last wait', async () => {
    const { made, request } = refusedThenAnswered(3);
    await expect(retryingRateLimited(request, { backoffMs: [10, 10] })('never')).rejects.toBeInstanceOf(
      Stripe.errors.StripeRateLimitError,
    );
    expect(made).toHaveLength(3);
  });

  it('throws any other error at once', async () => {
    let made = 0;
    const failing = async () => {
      made++;
      throw new Stripe.errors.StripeAPIError({ statusCode: 500, message: 'boom' });
    };
    await expect(retryingRateLimited(failing, { backoffMs: [10] })()).rejects.toThrow('boom');
    expect(made).toBe(1);
  });

  it('stops waiting when its signal is aborted, throwing the refusal', async () => {
    const { made, request } = refusedThenAnswered(5);
    const stop = new AbortController();
    const started = performance.now();
    const attempt = retryingRateLimited(request, { backoffMs: [5_000], signal: stop.signal })('never');
    setTimeout(() => stop.abort(new Error('stopping')), 50);
    await expect(attempt).rejects.toBeInstanceOf(Stripe.errors.StripeRateLimitError);
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(made).toHaveLength(1);
  });

  it('knows a refusal for the rate from other errors', () => {
    expect(isRateLimited(rateLimited())).toBe(true);
    expect(isRateLimited(new Stripe.errors.StripeAPIError({ statusCode: 500, message: 'boom' }))).toBe(false);
    expect(isRateLimited(new Error('rate limit'))).toBe(false);
  });
});
