import type { MemberAdminEvent, ResourceRef } from '../catalog/catalog.events';
import type { EpochMs } from '../time';
import type { InvoiceFact, SchedulePhase, StripeFact, SubscriptionSnapshot } from './membership.events';
import { compareSnapshots, isTerminal } from './subscription-order';

/** Admin facts carry the ledger's event id in `metadata` (decide cannot know it). */
export type MembershipEvent = StripeFact | (MemberAdminEvent & { metadata?: { eventId: string } });

export type SubscriptionState = {
  /** The greatest snapshot under `compareSnapshots`. */
  latest: SubscriptionSnapshot;
  /** Earliest time each `status@periodEnd` was seen: when past-due (or unpaid, paused) began. */
  firstSeen: Record<string, EpochMs>;
  /** Earliest period start seen in a state that had access. */
  startedAt?: EpochMs;
};

export type PaidInvoice = {
  invoiceId: string;
  billingReason: string;
  amountPaid: number;
  paidAt: EpochMs;
  eventId: string;
};
export type Purchase = {
  checkoutSessionId: string;
  stripePriceId: string;
  stripeProductId?: string;
  paymentIntentId?: string;
  /** Earliest confirmation of payment; absent while unpaid (e.g. a delayed bank debit). */
  paidAt?: EpochMs;
  eventId: string;
};
export type Dispute = {
  chargeId: string;
  paymentIntentId?: string;
  openedAt?: EpochMs;
  closed?: { status: 'won' | 'lost'; at: EpochMs; eventId: string };
  eventId: string;
};
export type ComplimentaryGrant = {
  resource: ResourceRef;
  from: EpochMs;
  until?: EpochMs;
  revokedAt?: EpochMs;
  reason: string;
  eventId: string;
};
export type Schedule = {
  subscriptionId: string;
  phases: SchedulePhase[];
  ended?: boolean;
  update?: boolean;
  observedAt: EpochMs;
  eventId: string;
};

/**
 * Order of two observations of one schedule: the later second; within a second, an end beats an
 * update, which beats the creation (Gatehouse creates a schedule and sets its phases in one go, so
 * both events usually share their `created`); then the event id, so twins resolve alike.
 */
function compareSchedules(a: Schedule, b: Schedule): number {
  return (
    a.observedAt - b.observedAt ||
    Number(a.ended === true) - Number(b.ended === true) ||
    Number(a.update === true) - Number(b.update === true) ||
    (a.eventId < b.eventId ? -1 : a.eventId > b.eventId ? 1 : 0)
  );
}

export type MemberState = {
  subscriptions: Record<string, SubscriptionState>;
  /** subscriptionId → invoiceId → paid invoice; kept apart because `invoice.paid` may precede the subscription. */
  paidInvoices: Record<string, Record<string, PaidInvoice>>;
  purchases: Record<string, Purchase>;
  /** paymentIntentId → the earliest full refund. */
  refunds: Record<string, { at: EpochMs; eventId: string }>;
  disputes: Record<string, Dispute>;
  complimentary: ComplimentaryGrant[];
  freeMembership?: { joinedAt: EpochMs; eventId: string };
  schedules: Record<string, Schedule>;
};

export function emptyMemberState(): MemberState {
  return {
    subscriptions: {},
    paidInvoices: {},
    purchases: {},
    refunds: {},
    disputes: {},
    complimentary: [],
    schedules: {},
  };
}

// Billing reasons of invoices that pay a period (not proration or manual invoices): installments count these.
const PERIOD_INVOICE_REASONS = new Set(['subscription_create', 'subscription_cycle', 'subscription']);

/**
 * Did this invoice charge for a period? Not the $0 invoice Stripe makes (and reports paid) when a
 * trial starts; an invoice a 100 %-off coupon brought to 0 still did: its lines carry the price.
 */
function chargesForAPeriod(d: InvoiceFact): boolean {
  return d.amountPaid > 0 || d.lines.some((l) => !l.proration && l.amount > 0);
}

/** Whether (atA, idA) comes no later than (atB, idB): earliest time first, then the smaller event id. */
const isFirst = (atA: EpochMs, idA: string, atB: EpochMs, idB: string): boolean =>
  atA < atB || (atA === atB && idA <= idB);

const sameResource = (a: ResourceRef, b: ResourceRef): boolean =>
  a.kind === b.kind && (a.id ?? null) === (b.id ?? null);

function observeSubscription(state: MemberState, snap: SubscriptionSnapshot): MemberState {
  const prev = state.subscriptions[snap.subscriptionId];
  const key = `${snap.status}@${snap.currentPeriodEnd}`;
  const firstSeen = {
    ...prev?.firstSeen,
    [key]: Math.min(prev?.firstSeen[key] ?? Infinity, snap.observedAt),
  };
  const hadAccess = !['incomplete', 'incomplete_expired'].includes(snap.status);
  const startedAt = hadAccess
    ? Math.min(prev?.startedAt ?? Infinity, snap.currentPeriodStart)
    : prev?.startedAt;
  const latest = prev && compareSnapshots(prev.latest, snap) >= 0 ? prev.latest : snap;
  return {
    ...state,
    subscriptions: { ...state.subscriptions, [snap.subscriptionId]: { latest, firstSeen, startedAt } },
  };
}

export function evolveMembership(state: MemberState, event: MembershipEvent): MemberState {
  switch (event.type) {
    case 'SubscriptionObserved':
      return observeSubscription(state, event.data);
    case 'SubscriptionDeleted': {
      const d = event.data;
      // A deletion is terminal whatever status the snapshot was rendered with.
      const status = isTerminal(d.status) ? d.status : 'canceled';
      return observeSubscription(state, { ...d, status, endedAt: d.endedAt ?? d.observedAt });
    }
    case 'InvoicePaid': {
      const d = event.data;
      if (!d.subscriptionId || !PERIOD_INVOICE_REASONS.has(d.billingReason) || !chargesForAPeriod(d))
        return state;
      const forSub = state.paidInvoices[d.subscriptionId] ?? {};
      const prev = forSub[d.invoiceId];
      const paid: PaidInvoice = {
        invoiceId: d.invoiceId,
        billingReason: d.billingReason,
        amountPaid: d.amountPaid,
        paidAt: d.observedAt,
        eventId: d.eventId,
      };
      const invoice = prev && isFirst(prev.paidAt, prev.eventId, paid.paidAt, paid.eventId) ? prev : paid;
      return {
        ...state,
        paidInvoices: { ...state.paidInvoices, [d.subscriptionId]: { ...forSub, [d.invoiceId]: invoice } },
      };
    }
    case 'InvoicePaymentFailed':
    case 'InvoicePaymentActionRequired':
      // Access follows the subscription's status (past_due, incomplete), which Stripe changes alongside.
      return state;
    case 'OneTimePurchaseCompleted': {
      const d = event.data;
      const prev = state.purchases[d.checkoutSessionId];
      const paidAt = d.paid ? Math.min(prev?.paidAt ?? Infinity, d.observedAt) : prev?.paidAt;
      const purchase: Purchase = {
        checkoutSessionId: d.checkoutSessionId,
        stripePriceId: d.stripePriceId,
        ...((d.stripeProductId ?? prev?.stripeProductId) && {
          stripeProductId: d.stripeProductId ?? prev?.stripeProductId,
        }),
        ...((d.paymentIntentId ?? prev?.paymentIntentId) && {
          paymentIntentId: d.paymentIntentId ?? prev?.paymentIntentId,
        }),
        ...(paidAt !== undefined && { paidAt }),
        // The event that granted: the earliest paid one (ties by id); while unpaid, the smallest id seen.
        eventId: !prev
          ? d.eventId
          : d.paid &&
              (prev.paidAt === undefined || !isFirst(prev.paidAt, prev.eventId, d.observedAt, d.eventId))
            ? d.eventId
            : !d.paid && prev.paidAt === undefined && d.eventId < prev.eventId
              ? d.eventId
              : prev.eventId,
      };
      return { ...state, purchases: { ...state.purchases, [d.checkoutSessionId]: purchase } };
    }
    case 'OneTimePurchaseRefunded': {
      const d = event.data;
      if (!d.full) return state;
      const prev = state.refunds[d.paymentIntentId];
      const next = { at: d.observedAt, eventId: d.eventId };
      const refund = prev && isFirst(prev.at, prev.eventId, next.at, next.eventId) ? prev : next;
      return { ...state, refunds: { ...state.refunds, [d.paymentIntentId]: refund } };
    }
    case 'DisputeOpened': {
      const d = event.data;
      const prev = state.disputes[d.chargeId];
      const openedAt = Math.min(prev?.openedAt ?? Infinity, d.observedAt);
      const dispute: Dispute = {
        ...prev,
        chargeId: d.chargeId,
        paymentIntentId: d.paymentIntentId ?? prev?.paymentIntentId,
        openedAt,
        eventId:
          prev?.openedAt !== undefined && isFirst(prev.openedAt, prev.eventId, d.observedAt, d.eventId)
            ? prev.eventId
            : d.eventId,
      };
      return { ...state, disputes: { ...state.disputes, [d.chargeId]: dispute } };
    }
    case 'DisputeClosed': {
      const d = event.data;
      const prev = state.disputes[d.chargeId];
      const closed = { status: d.status, at: d.observedAt, eventId: d.eventId };
      // A dispute closes once; should twins disagree, the later word (then the greater id) stands.
      const keep =
        prev?.closed &&
        (prev.closed.at > closed.at ||
          (prev.closed.at === closed.at && prev.closed.eventId >= closed.eventId));
      const winner = keep && prev?.closed ? prev.closed : closed;
      const dispute: Dispute = {
        chargeId: d.chargeId,
        paymentIntentId: d.paymentIntentId ?? prev?.paymentIntentId,
        ...(prev?.openedAt !== undefined && { openedAt: prev.openedAt }),
        closed: winner,
        eventId: prev?.openedAt !== undefined ? prev.eventId : winner.eventId,
      };
      return { ...state, disputes: { ...state.disputes, [d.chargeId]: dispute } };
    }
    case 'ScheduleObserved': {
      const d = event.data;
      const prev = state.schedules[d.scheduleId];
      const schedule: Schedule = {
        subscriptionId: d.subscriptionId,
        phases: d.phases,
        ...(d.ended && { ended: true }),
        ...(d.update && { update: true }),
        observedAt: d.observedAt,
        eventId: d.eventId,
      };
      if (prev && compareSchedules(prev, schedule) >= 0) return state;
      return { ...state, schedules: { ...state.schedules, [d.scheduleId]: schedule } };
    }
    case 'MemberJoined': {
      if (state.freeMembership) return state;
      const eventId = event.metadata?.eventId ?? `MemberJoined:${event.data.memberId}:${event.data.joinedAt}`;
      return { ...state, freeMembership: { joinedAt: event.data.joinedAt, eventId } };
    }
    case 'ComplimentaryAccessGranted': {
      const d = event.data;
      const eventId = event.metadata?.eventId ?? `ComplimentaryAccessGranted:${d.memberId}:${d.from}`;
      if (state.complimentary.some((g) => g.eventId === eventId)) return state;
      const grant: ComplimentaryGrant = {
        resource: d.resource,
        from: d.from,
        ...(d.until !== undefined && { until: d.until }),
        reason: d.reason,
        eventId,
      };
      return { ...state, complimentary: [...state.complimentary, grant] };
    }
    case 'ComplimentaryAccessRevoked': {
      const d = event.data;
      // Admin facts arrive in ledger order: a revocation ends every grant of that resource made before it.
      const complimentary = state.complimentary.map((g) =>
        sameResource(g.resource, d.resource) && g.from <= d.at && g.revokedAt === undefined
          ? { ...g, revokedAt: d.at }
          : g,
      );
      return { ...state, complimentary };
    }
  }
}

/** Distinct period invoices paid on a subscription (idempotent per invoice id). */
export function installmentsPaid(state: MemberState, subscriptionId: string): number {
  return Object.keys(state.paidInvoices[subscriptionId] ?? {}).length;
}
