import { stripeTestKit as kit } from '@gatehouse/stripe';
import { installmentPlanRequest } from './installments';

const START = Date.UTC(2026, 0, 31) / 1000;
const API = '2025-03-31.basil' as const;

function created(extra: Parameters<typeof kit.customerSubscriptionCreated>[0] = {}) {
  const event = kit.customerSubscriptionCreated(
    {
      id: 'sub_plan',
      status: 'active',
      startDate: START,
      periodStart: START,
      metadata: { gatehouse_installments: '3' },
      ...extra,
    },
    { account: 'acct_1', apiVersion: API },
  );
  return { type: event.type, data: event };
}

describe('installmentPlanRequest', () => {
  it('ends a plan N billing months after its start (calendar months, as Stripe counts them)', () => {
    expect(installmentPlanRequest(created())).toEqual({
      subscriptionId: 'sub_plan',
      installments: 3,
      cancelAt: Date.UTC(2026, 3, 30),
      account: 'acct_1',
    });
  });

  it('counts from the end of a trial: the trial is not an installment', () => {
    const trialEnd = START + 14 * 86_400;
    expect(installmentPlanRequest(created({ status: 'trialing', trialEnd }))?.cancelAt).toBe(
      Date.UTC(2026, 4, 14),
    );
  });

  it('asks nothing for a plan already bounded, a plain subscription, or an ended one', () => {
    expect(installmentPlanRequest(created({ cancelAt: START + 86_400 }))).toBeNull();
    expect(installmentPlanRequest(created({ metadata: {} }))).toBeNull();
    expect(installmentPlanRequest(created({ status: 'canceled' }))).toBeNull();
    expect(installmentPlanRequest({ ...created(), type: 'customer.subscription.deleted' })).toBeNull();
  });
});
