import type { RecordedEvent } from '@gatehouse/ledger';
import { readStripeEvent } from '../membership/stripe-event.translate';
import { asStripeShaped } from './migration-fact.translate';

const IMPORTED_AT = Date.UTC(2026, 0, 15);
const sec = (ms: number) => Math.floor(ms / 1000);

function recorded(type: string, data: unknown): RecordedEvent {
  return {
    id: 'migration:c1:sub_1',
    type,
    communityId: 'c1',
    subject: 'm1',
    occurredAt: new Date(IMPORTED_AT).toISOString(),
    recordedAt: new Date(IMPORTED_AT).toISOString(),
    source: 'migration',
    actor: 'admin',
    causationId: null,
    correlationId: null,
    schemaVersion: 1,
    data,
    position: '1',
  };
}

const subscription = {
  id: 'sub_1',
  object: 'subscription',
  customer: 'cus_1',
  status: 'canceled',
  metadata: {},
  cancel_at_period_end: false,
  ended_at: sec(IMPORTED_AT - 86_400_000),
  items: {
    data: [
      {
        id: 'si_1',
        price: { id: 'price_1', product: 'prod_1' },
        quantity: 1,
        current_period_start: sec(IMPORTED_AT - 10 * 86_400_000),
        current_period_end: sec(IMPORTED_AT + 20 * 86_400_000),
      },
    ],
  },
};

describe('migration facts read as Stripe facts', () => {
  it('reads an imported subscription as observed at the import, tied to its member, paid through its period', () => {
    const [customer, sub] = asStripeShaped(
      recorded('SubscriptionImported', {
        communityId: 'c1',
        memberId: 'm1',
        stripeCustomerId: 'cus_1',
        email: 'ada@example.com',
        linkedBy: 'new',
        subscription,
        paidThroughUntil: IMPORTED_AT + 20 * 86_400_000,
        importedAt: IMPORTED_AT,
      }),
    );
    expect(readStripeEvent(customer.data).hints).toEqual({
      memberId: 'm1',
      customerId: 'cus_1',
      email: 'ada@example.com',
    });
    const reading = readStripeEvent(sub.data);
    expect(sub.id).toBe('migration:c1:sub_1');
    expect(reading.hints).toMatchObject({ memberId: 'm1', customerId: 'cus_1', subscriptionId: 'sub_1' });
    expect(reading.fact).toMatchObject({
      type: 'SubscriptionObserved',
      data: {
        status: 'canceled',
        eventId: 'migration:c1:sub_1',
        observedAt: IMPORTED_AT,
        endedAt: IMPORTED_AT + 20 * 86_400_000,
      },
    });
  });

  it('leaves every other event as it is', () => {
    const e = { ...recorded('TierDefined', {}), source: 'admin' as const };
    expect(asStripeShaped(e)).toEqual([e]);
  });
});
