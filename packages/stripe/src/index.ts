export * from './stripe.errors';
export * from './stripe-event';
export * from './webhook/verify-signature';
export * from './webhook/community-directory.port';
export * from './webhook/ingest.handler';
export * from './quarantine/quarantine.port';
export * from './quarantine/adapters/postgres-quarantine';
export * from './quarantine/release-quarantine';
export * from './translate/stripe-fields';
export * from './translate/subscription.translate';
export * from './translate/invoice.translate';
export * from './translate/checkout-session.translate';
export * from './translate/charge.translate';
export * from './translate/dispute.translate';
export * from './translate/subscription-schedule.translate';
export * from './translate/customer.translate';
export * from './translate/stripe-event.translate';
export * from './reconcile/reconciler';
export * from './reconcile/stripe-rate';
export * from './reconcile/reconcile-windows';
export {
  startFakeStripe,
  stripeConfigForApiBase,
  FAKE_STRIPE_API_VERSION,
  FAKE_RETRY_DELAYS_SECONDS,
  FAKE_PAYMENT_RETRY_DAYS,
  type CheckoutPayment,
  type FakeDelivery,
  type FakeStripe,
  type FakeStripeOptions,
  type FakeWebhookTarget,
} from './testing/fake-stripe/fake-stripe';
export * as stripeTestKit from './testing';
