import Stripe from 'stripe';
import type { StripeEvent } from '../stripe-event';
import { FIXED_NOW } from './stripe-ids';

const stripe = new Stripe('sk_test_signing_only');

export type SignedPayload = { rawBody: Buffer; header: string };

/**
 * Serialises a payload as Stripe would send it and signs it with Stripe's own scheme
 * (`stripe.webhooks.generateTestHeaderString`). `timestamp` is unix seconds, by default the kit's clock.
 */
export function signPayload(
  payload: StripeEvent | string,
  secret: string,
  timestamp: number = FIXED_NOW,
): SignedPayload {
  const text = typeof payload === 'string' ? payload : JSON.stringify(payload, null, 2);
  const header = stripe.webhooks.generateTestHeaderString({ payload: text, secret, timestamp });
  return { rawBody: Buffer.from(text, 'utf8'), header };
}
