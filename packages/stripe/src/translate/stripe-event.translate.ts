import type {
  EpochMs,
  InvoiceFact,
  StripeFact,
  SubscriptionSnapshot,
  SubscriptionStatus,
} from '@gatehouse/domain';
import type { StripeEvent } from '../stripe-event';
import { translateCharge } from './charge.translate';
import { translateCheckoutSession } from './checkout-session.translate';
import { translateDispute } from './dispute.translate';
import { translateInvoice } from './invoice.translate';
import { translateSubscriptionSchedule } from './subscription-schedule.translate';
import { translateSubscription } from './subscription.translate';

/** Metadata Gatehouse puts on the Stripe objects it creates (see the contract's "Stripe metadata"). */
export const GATEHOUSE_METADATA = {
  communityId: 'gatehouse_community_id',
  memberId: 'gatehouse_member_id',
  priceId: 'gatehouse_price_id',
  /** The Stripe price of a one-time Checkout: webhooks do not carry a session's line items. */
  stripePriceId: 'gatehouse_stripe_price_id',
} as const;

export type StripeTranslation = { kind: 'fact'; fact: StripeFact } | { kind: 'ignored'; reason: string };

const STATUSES: readonly SubscriptionStatus[] = [
  'incomplete',
  'incomplete_expired',
  'trialing',
  'active',
  'past_due',
  'unpaid',
  'paused',
  'canceled',
];

const fact = (f: StripeFact): StripeTranslation => ({ kind: 'fact', fact: f });
const ignored = (reason: string): StripeTranslation => ({ kind: 'ignored', reason });

function snapshotOf(event: StripeEvent, observedAt: EpochMs): SubscriptionSnapshot | string {
  const sub = translateSubscription(event.data.object);
  const item = sub.items[0];
  if (!item?.priceId || !item.productId) return 'subscription has no priced item';
  if (!sub.customerId) return 'subscription has no customer';
  if (sub.currentPeriodStart === null || sub.currentPeriodEnd === null)
    return 'subscription has no current period';
  if (!(STATUSES as readonly string[]).includes(sub.status))
    return `unknown subscription status ${sub.status}`;
  const memberId = sub.metadata[GATEHOUSE_METADATA.memberId];
  return {
    subscriptionId: sub.id,
    customerId: sub.customerId,
    ...(memberId && { memberId }),
    status: sub.status as SubscriptionStatus,
    priceId: item.priceId,
    productId: item.productId,
    itemId: item.itemId,
    quantity: item.quantity,
    currentPeriodStart: item.currentPeriodStart ?? sub.currentPeriodStart,
    currentPeriodEnd: item.currentPeriodEnd ?? sub.currentPeriodEnd,
    ...(sub.trialEnd !== null && { trialEnd: sub.trialEnd }),
    cancelAtPeriodEnd: sub.cancelAtPeriodEnd,
    ...(sub.cancelAt !== null && { cancelAt: sub.cancelAt }),
    ...(sub.endedAt !== null && { endedAt: sub.endedAt }),
    ...(sub.scheduleId && { scheduleId: sub.scheduleId }),
    observedAt,
    eventId: event.id,
  };
}

function invoiceFactOf(event: StripeEvent, observedAt: EpochMs): InvoiceFact {
  const inv = translateInvoice(event.data.object);
  // The paid-through date of a subscription invoice is the end of its (non-proration) lines; the
  // invoice's own period_end is the previous period for renewals.
  const lineEnds = inv.lines
    .filter((l) => !l.proration && l.periodEnd !== null)
    .map((l) => l.periodEnd as number);
  const periodEnd = lineEnds.length ? Math.max(...lineEnds) : inv.periodEnd;
  return {
    invoiceId: inv.id,
    ...(inv.subscriptionId && { subscriptionId: inv.subscriptionId }),
    billingReason: inv.billingReason ?? 'manual',
    amountPaid: inv.amountPaid,
    currency: inv.currency,
    ...(periodEnd !== null && { periodEnd }),
    lines: inv.lines.map((l) => ({
      amount: l.amount,
      proration: l.proration,
      ...(l.priceId && { stripePriceId: l.priceId }),
      periodStart: l.periodStart ?? observedAt,
      periodEnd: l.periodEnd ?? observedAt,
      description: l.description,
      quantity: l.quantity,
    })),
    observedAt,
    eventId: event.id,
  };
}

function oneTimePurchase(
  event: StripeEvent,
  observedAt: EpochMs,
  asyncSucceeded: boolean,
): StripeTranslation {
  const cs = translateCheckoutSession(event.data.object);
  if (cs.mode !== 'payment') return ignored(`checkout in ${cs.mode} mode: its subscription events carry it`);
  const stripePriceId = cs.lineItemPriceIds[0] ?? cs.metadata[GATEHOUSE_METADATA.stripePriceId];
  if (!stripePriceId)
    return ignored(`checkout session has no line items and no ${GATEHOUSE_METADATA.stripePriceId} metadata`);
  const memberId = cs.metadata[GATEHOUSE_METADATA.memberId] ?? cs.clientReferenceId;
  if (!memberId) return ignored('checkout session names no member');
  // Delayed methods (bank debits) complete unpaid and finish with async_payment_succeeded.
  const paid = asyncSucceeded || cs.paymentStatus === 'paid' || cs.paymentStatus === 'no_payment_required';
  return fact({
    type: 'OneTimePurchaseCompleted',
    data: {
      checkoutSessionId: cs.id,
      ...(cs.paymentIntentId && { paymentIntentId: cs.paymentIntentId }),
      stripePriceId,
      memberId,
      paid,
      observedAt,
      eventId: event.id,
    },
  });
}

/**
 * The domain's view of a Stripe event (see `@gatehouse/domain` `StripeFact`), or why it has none.
 * Pure; seconds become milliseconds here. Reads both the pre-2025 and the basil/clover shapes.
 */
export function translateStripeEvent(event: StripeEvent): StripeTranslation {
  const observedAt = event.created * 1000;
  switch (event.type) {
    case 'customer.subscription.created':
    case 'customer.subscription.updated':
    case 'customer.subscription.paused':
    case 'customer.subscription.resumed':
    case 'customer.subscription.deleted': {
      const snap = snapshotOf(event, observedAt);
      if (typeof snap === 'string') return ignored(snap);
      return fact({
        type: event.type === 'customer.subscription.deleted' ? 'SubscriptionDeleted' : 'SubscriptionObserved',
        data: snap,
      });
    }
    case 'customer.subscription.trial_will_end':
      return ignored('a notice three days before the trial ends; access does not change');
    case 'invoice.paid':
      return fact({ type: 'InvoicePaid', data: invoiceFactOf(event, observedAt) });
    case 'invoice.payment_failed':
      return fact({ type: 'InvoicePaymentFailed', data: invoiceFactOf(event, observedAt) });
    case 'invoice.payment_action_required':
      return fact({ type: 'InvoicePaymentActionRequired', data: invoiceFactOf(event, observedAt) });
    case 'checkout.session.completed':
      return oneTimePurchase(event, observedAt, false);
    case 'checkout.session.async_payment_succeeded':
      return oneTimePurchase(event, observedAt, true);
    case 'charge.refunded': {
      const ch = translateCharge(event.data.object);
      if (!ch.paymentIntentId) return ignored('refunded charge has no payment intent');
      return fact({
        type: 'OneTimePurchaseRefunded',
        data: { paymentIntentId: ch.paymentIntentId, full: ch.refunded, observedAt, eventId: event.id },
      });
    }
    case 'charge.dispute.created': {
      const dp = translateDispute(event.data.object);
      if (!dp.chargeId) return ignored('dispute has no charge');
      return fact({
        type: 'DisputeOpened',
        data: {
          chargeId: dp.chargeId,
          ...(dp.paymentIntentId && { paymentIntentId: dp.paymentIntentId }),
          observedAt,
          eventId: event.id,
        },
      });
    }
    case 'charge.dispute.closed': {
      const dp = translateDispute(event.data.object);
      if (!dp.chargeId) return ignored('dispute has no charge');
      // `warning_closed` (an inquiry that never became a dispute) decides nothing.
      if (dp.status !== 'won' && dp.status !== 'lost') return ignored(`dispute closed as ${dp.status}`);
      return fact({
        type: 'DisputeClosed',
        data: {
          chargeId: dp.chargeId,
          ...(dp.paymentIntentId && { paymentIntentId: dp.paymentIntentId }),
          status: dp.status,
          observedAt,
          eventId: event.id,
        },
      });
    }
    case 'subscription_schedule.created':
    case 'subscription_schedule.updated':
    case 'subscription_schedule.completed':
    case 'subscription_schedule.released':
    case 'subscription_schedule.canceled': {
      const sched = translateSubscriptionSchedule(event.data.object);
      if (!sched.subscriptionId) return ignored('schedule has no subscription (not started)');
      const phases = [];
      for (const p of sched.phases) {
        const priceId = p.items[0]?.priceId;
        if (!priceId || p.start === null) return ignored('schedule phase without a price or a start');
        phases.push({ priceId, start: p.start, ...(p.end !== null && { end: p.end }) });
      }
      return fact({
        type: 'ScheduleObserved',
        data: {
          scheduleId: sched.id,
          subscriptionId: sched.subscriptionId,
          phases,
          observedAt,
          eventId: event.id,
        },
      });
    }
    default:
      return ignored(`no translation for ${event.type}`);
  }
}
