import Stripe from 'stripe';
import { stripeTestKit } from '@gatehouse/stripe';
import { GatehouseError } from '../graphql/errors';
import { callStripe } from './catalog.service';

/** Refused for Stripe's rate `refusals` times, then answered. */
function refusedThenAnswered(refusals: number) {
  let made = 0;
  return {
    made: () => made,
    request: async () => {
      if (++made <= refusals) throw stripeTestKit.rateLimitedError();
      return 'cs_answered';
    },
  };
}

describe('callStripe', () => {
  it('makes a request Stripe refused for its rate again, shortly: someone waits for it', async () => {
    const { made, request } = refusedThenAnswered(2);
    const started = performance.now();
    await expect(callStripe('create a Checkout session', request)).resolves.toBe('cs_answered');
    expect(made()).toBe(3);
    // 250 ms, then 500 ms, each up to half again.
    expect(performance.now() - started).toBeGreaterThanOrEqual(740);
    expect(performance.now() - started).toBeLessThan(1_500);
  });

  it('answers STRIPE_ERROR with Stripe’s message once refused past the last wait', async () => {
    const { made, request } = refusedThenAnswered(10);
    const err = await callStripe('create a Checkout session', request, [1, 1]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GatehouseError);
    expect(err).toMatchObject({
      code: 'STRIPE_ERROR',
      message: 'Stripe refused to create a Checkout session: Request rate limit exceeded.',
    });
    expect(made()).toBe(3);
  });

  it('answers any other Stripe error at once, and lets other errors through', async () => {
    let made = 0;
    const declined = async () => {
      made++;
      throw new Stripe.errors.StripeCardError({ message: 'Your card was declined.', code: 'card_declined' });
    };
    await expect(callStripe('pay', declined)).rejects.toMatchObject({
      code: 'STRIPE_ERROR',
      message: 'Stripe refused to pay: Your card was declined.',
    });
    expect(made).toBe(1);
    await expect(callStripe('pay', async () => Promise.reject(new Error('socket closed')))).rejects.toThrow(
      'socket closed',
    );
  });
});
