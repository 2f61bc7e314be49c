import Stripe from 'stripe';
import {
  startFakeStripe,
  stripeConfigForApiBase,
  type FakeStripe,
  type FakeStripeOptions,
} from './fake-stripe';

/** A fake Stripe on a fixed clock (unix seconds) and the real SDK pointed at it, without retries. */
export async function fakeStripeWithSdk(
  now: number,
  options: Omit<FakeStripeOptions, 'clock'> = {},
): Promise<{ fake: FakeStripe; stripe: Stripe }> {
  const fake = await startFakeStripe({ ...options, clock: () => now });
  const stripe = new Stripe('sk_test_fake', { ...stripeConfigForApiBase(fake.url), maxNetworkRetries: 0 });
  return { fake, stripe };
}

/** What the fake records, in order, when it invoices a period and the card pays it at once. */
export const PAID_INVOICE_EVENTS = [
  'invoice.created',
  'invoice.finalized',
  'payment_intent.created',
  'charge.succeeded',
  'payment_intent.succeeded',
  'invoice_payment.paid',
  'invoice.paid',
  'invoice.payment_succeeded',
] as const;
