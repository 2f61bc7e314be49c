import type { EpochMs } from '../time';

/**
 * The contract between `stripe` and `domain`: a small internal view of what happened at Stripe.
 * The stripe package translates each Stripe event into one of these (seconds → ms at that edge);
 * `eventId` is the Stripe `evt_...` id and `observedAt` the Stripe event's `created`.
 */
export type SubscriptionStatus =
  'incomplete' | 'incomplete_expired' | 'trialing' | 'active' | 'past_due' | 'unpaid' | 'paused' | 'canceled';

export type SubscriptionSnapshot = {
  subscriptionId: string;
  customerId: string;
  memberId?: string;
  status: SubscriptionStatus;
  /** Stripe price id (`price_...`). */
  priceId: string;
  /** Stripe product id (`prod_...`). */
  productId: string;
  itemId: string;
  quantity: number;
  currentPeriodStart: EpochMs;
  currentPeriodEnd: EpochMs;
  trialEnd?: EpochMs;
  cancelAtPeriodEnd: boolean;
  cancelAt?: EpochMs;
  endedAt?: EpochMs;
  scheduleId?: string;
  /**
   * Read from `customer.subscription.updated`: it reports a change, so within the second of its
   * creation (Stripe's `created` has no finer grain) it is the later state.
   */
  update?: boolean;
  observedAt: EpochMs;
  eventId: string;
};

export type InvoiceLine = {
  amount: number;
  proration: boolean;
  stripePriceId?: string;
  periodStart: EpochMs;
  periodEnd: EpochMs;
  description: string;
  quantity: number;
};

export type InvoiceFact = {
  invoiceId: string;
  subscriptionId?: string;
  /** Stripe's `billing_reason`: `subscription_create`, `subscription_cycle`, `subscription_update`, `manual`... */
  billingReason: string;
  amountPaid: number;
  currency: string;
  periodEnd?: EpochMs;
  lines: InvoiceLine[];
  observedAt: EpochMs;
  eventId: string;
};

type Fact<Type extends string, Data> = { type: Type; data: Data };

export type SubscriptionObserved = Fact<'SubscriptionObserved', SubscriptionSnapshot>;
export type SubscriptionDeleted = Fact<'SubscriptionDeleted', SubscriptionSnapshot>;
export type InvoicePaid = Fact<'InvoicePaid', InvoiceFact>;
export type InvoicePaymentFailed = Fact<'InvoicePaymentFailed', InvoiceFact>;
export type InvoicePaymentActionRequired = Fact<'InvoicePaymentActionRequired', InvoiceFact>;
/** `paid` is true for `paid` / `no_payment_required`, and for `async_payment_succeeded`. */
export type OneTimePurchaseCompleted = Fact<
  'OneTimePurchaseCompleted',
  {
    checkoutSessionId: string;
    paymentIntentId?: string;
    stripePriceId: string;
    stripeProductId?: string;
    memberId: string;
    paid: boolean;
    observedAt: EpochMs;
    eventId: string;
  }
>;
export type OneTimePurchaseRefunded = Fact<
  'OneTimePurchaseRefunded',
  { paymentIntentId: string; full: boolean; observedAt: EpochMs; eventId: string }
>;
export type DisputeOpened = Fact<
  'DisputeOpened',
  { chargeId: string; paymentIntentId?: string; observedAt: EpochMs; eventId: string }
>;
export type DisputeClosed = Fact<
  'DisputeClosed',
  { chargeId: string; paymentIntentId?: string; status: 'won' | 'lost'; observedAt: EpochMs; eventId: string }
>;
export type SchedulePhase = { priceId: string; start: EpochMs; end?: EpochMs };
export type ScheduleObserved = Fact<
  'ScheduleObserved',
  {
    scheduleId: string;
    subscriptionId: string;
    phases: SchedulePhase[];
    /** Released, canceled or completed: its phases no longer say what comes next. */
    ended?: boolean;
    /** Read from `subscription_schedule.updated` (later than the creation within its second). */
    update?: boolean;
    observedAt: EpochMs;
    eventId: string;
  }
>;

export type StripeFact =
  | SubscriptionObserved
  | SubscriptionDeleted
  | InvoicePaid
  | InvoicePaymentFailed
  | InvoicePaymentActionRequired
  | OneTimePurchaseCompleted
  | OneTimePurchaseRefunded
  | DisputeOpened
  | DisputeClosed
  | ScheduleObserved;

export const STRIPE_FACT_TYPES = [
  'SubscriptionObserved',
  'SubscriptionDeleted',
  'InvoicePaid',
  'InvoicePaymentFailed',
  'InvoicePaymentActionRequired',
  'OneTimePurchaseCompleted',
  'OneTimePurchaseRefunded',
  'DisputeOpened',
  'DisputeClosed',
  'ScheduleObserved',
] as const satisfies readonly StripeFact['type'][];

export function isStripeFact(event: { type: string }): event is StripeFact {
  return (STRIPE_FACT_TYPES as readonly string[]).includes(event.type);
}
