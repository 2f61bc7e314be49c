import type { StripeEvent, StripeObject } from '../stripe-event';
import { FIXED_NOW, randomCode, stripeId } from './stripe-ids';
import {
  buildCharge,
  buildCheckoutSession,
  buildDispute,
  buildInvoice,
  buildSubscription,
  buildSubscriptionSchedule,
  LEGACY_API,
  type ApiVersion,
  type ChargeSpec,
  type CheckoutSessionSpec,
  type DisputeSpec,
  type InvoiceSpec,
  type SubscriptionScheduleSpec,
  type SubscriptionSpec,
} from './stripe-objects';

export type EventOptions = {
  apiVersion?: ApiVersion;
  id?: string;
  /** Unix seconds; the kit's fixed clock by default. */
  created?: number;
  /** A connected account (`acct_…`): the event then comes through Connect. */
  account?: string;
  previousAttributes?: Record<string, unknown>;
  /** The API request that caused it; null for automatic changes (renewals, trial ends, retries). */
  requestId?: string | null;
  pendingWebhooks?: number;
};

/** Wraps an object in an Event envelope shaped like Stripe's. */
export function buildEvent(type: string, object: StripeObject, options: EventOptions = {}): StripeEvent {
  const requestId = options.requestId === undefined ? null : options.requestId;
  const created = options.created ?? FIXED_NOW;
  return {
    // Stripe's event ids carry the second the event was created in.
    id: options.id ?? stripeId('evt', created),
    object: 'event',
    ...(options.account && { account: options.account }),
    api_version: options.apiVersion ?? LEGACY_API,
    created,
    data: { object, ...(options.previousAttributes && { previous_attributes: options.previousAttributes }) },
    livemode: false,
    pending_webhooks: options.pendingWebhooks ?? 1,
    request: { id: requestId, idempotency_key: requestId ? randomCode(24) : null },
    type,
  };
}

type Builder<Spec> = (spec?: Spec, options?: EventOptions) => StripeEvent;

function eventOf<Spec>(
  type: string,
  build: (spec: Spec, apiVersion: ApiVersion) => StripeObject,
): Builder<Spec> {
  return (spec = {} as Spec, options = {}) =>
    buildEvent(type, build(spec, options.apiVersion ?? LEGACY_API), options);
}

export const customerSubscriptionCreated = eventOf<SubscriptionSpec>(
  'customer.subscription.created',
  buildSubscription,
);
export const customerSubscriptionUpdated = eventOf<SubscriptionSpec>(
  'customer.subscription.updated',
  buildSubscription,
);
export const customerSubscriptionDeleted = eventOf<SubscriptionSpec>(
  'customer.subscription.deleted',
  (spec, v) =>
    buildSubscription({ status: 'canceled', endedAt: FIXED_NOW, canceledAt: FIXED_NOW, ...spec }, v),
);
export const customerSubscriptionTrialWillEnd = eventOf<SubscriptionSpec>(
  'customer.subscription.trial_will_end',
  (spec, v) =>
    buildSubscription(
      { status: 'trialing', trialStart: FIXED_NOW - 11 * 86_400, trialEnd: FIXED_NOW + 3 * 86_400, ...spec },
      v,
    ),
);

export const invoicePaid = eventOf<InvoiceSpec>('invoice.paid', buildInvoice);
export const invoicePaymentFailed = eventOf<InvoiceSpec>('invoice.payment_failed', (spec, v) =>
  buildInvoice({ status: 'open', ...spec }, v),
);
export const invoiceFinalized = eventOf<InvoiceSpec>('invoice.finalized', (spec, v) =>
  buildInvoice({ status: 'open', ...spec }, v),
);
export const invoicePaymentActionRequired = eventOf<InvoiceSpec>(
  'invoice.payment_action_required',
  (spec, v) => buildInvoice({ status: 'open', ...spec }, v),
);

export const checkoutSessionCompleted = eventOf<CheckoutSessionSpec>(
  'checkout.session.completed',
  buildCheckoutSession,
);
export const checkoutSessionAsyncPaymentSucceeded = eventOf<CheckoutSessionSpec>(
  'checkout.session.async_payment_succeeded',
  (spec, v) => buildCheckoutSession({ paymentStatus: 'paid', ...spec }, v),
);
export const checkoutSessionAsyncPaymentFailed = eventOf<CheckoutSessionSpec>(
  'checkout.session.async_payment_failed',
  (spec, v) => buildCheckoutSession({ paymentStatus: 'unpaid', ...spec }, v),
);

export const chargeRefunded = eventOf<ChargeSpec>('charge.refunded', (spec, v) =>
  buildCharge({ amountRefunded: spec.amount ?? 5000, ...spec }, v),
);
export const chargeDisputeCreated = eventOf<DisputeSpec>('charge.dispute.created', (spec) =>
  buildDispute(spec),
);
export const chargeDisputeClosed = eventOf<DisputeSpec>('charge.dispute.closed', (spec) =>
  buildDispute({ status: 'lost', ...spec }),
);

export const subscriptionScheduleCreated = eventOf<SubscriptionScheduleSpec>(
  'subscription_schedule.created',
  buildSubscriptionSchedule,
);
export const subscriptionScheduleUpdated = eventOf<SubscriptionScheduleSpec>(
  'subscription_schedule.updated',
  buildSubscriptionSchedule,
);
export const subscriptionScheduleCompleted = eventOf<SubscriptionScheduleSpec>(
  'subscription_schedule.completed',
  (spec, v) => buildSubscriptionSchedule({ status: 'completed', ...spec }, v),
);
