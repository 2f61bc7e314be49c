import {
  toStripeSeconds,
  type MemberImported,
  type MigrationFact,
  type SubscriptionImported,
} from '@gatehouse/domain';
import type { RecordedEvent } from '@gatehouse/ledger';

/**
 * Migration facts in the shape the membership projection folds Stripe facts in: an imported
 * subscription reads as the subscription object Stripe listed, observed at the import, tied to its
 * member by `gatehouse_member_id`; an imported member (or one found by email) reads as its customer,
 * so later webhooks of that customer, email or subscription resolve to the member. The result is a
 * reading, never appended: the ledger keeps the migration fact.
 */
export function asStripeShaped(event: RecordedEvent): RecordedEvent[] {
  if (event.source !== 'migration') return [event];
  if (event.type === 'MemberImported') {
    const d = (event as unknown as RecordedEvent<MemberImported['data']>).data;
    return [customerReading(event, event.id, d.stripeCustomerId, d.memberId, d.email, d.importedAt)];
  }
  if (event.type === 'SubscriptionImported') {
    const d = (event as unknown as RecordedEvent<SubscriptionImported['data']>).data;
    const sub = d.subscription;
    const metadata = typeof sub.metadata === 'object' && sub.metadata !== null ? sub.metadata : {};
    const object = {
      ...sub,
      customer: d.stripeCustomerId,
      metadata: { ...metadata, gatehouse_member_id: d.memberId },
      ...(d.paidThroughUntil !== undefined && { ended_at: toStripeSeconds(d.paidThroughUntil) }),
    };
    const subscription = stripeShaped(event, event.id, 'customer.subscription.updated', d.importedAt, object);
    return d.email
      ? [
          customerReading(
            event,
            `${event.id}#customer`,
            d.stripeCustomerId,
            d.memberId,
            d.email,
            d.importedAt,
          ),
          subscription,
        ]
      : [subscription];
  }
  return [event];
}

function customerReading(
  event: RecordedEvent,
  id: string,
  customerId: string,
  memberId: string,
  email: string,
  at: number,
): RecordedEvent {
  return stripeShaped(event, id, 'customer.updated', at, {
    id: customerId,
    object: 'customer',
    email,
    metadata: { gatehouse_member_id: memberId },
  });
}

function stripeShaped(
  event: RecordedEvent,
  id: string,
  type: string,
  at: number,
  object: Record<string, unknown>,
): RecordedEvent {
  return {
    ...event,
    id,
    source: 'stripe',
    data: { id, object: 'event', type, created: toStripeSeconds(at), data: { object } },
  };
}

export function isMigrationRecord(event: RecordedEvent): event is RecordedEvent<MigrationFact['data']> {
  return (
    event.source === 'migration' && (event.type === 'MemberImported' || event.type === 'SubscriptionImported')
  );
}
