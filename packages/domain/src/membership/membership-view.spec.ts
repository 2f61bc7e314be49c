import { buildCatalog, deleted, invoicePaid, observed, PERIOD, T0 } from '../testing/builders';
import { membershipView } from './membership-view';
import { emptyMemberState, evolveMembership, type MembershipEvent } from './membership.evolve';

const catalog = buildCatalog();
const view = (events: MembershipEvent[], at = T0) =>
  membershipView(events.reduce(evolveMembership, emptyMemberState()), catalog, at);

describe('membershipView', () => {
  it('is NONE without a subscription', () => expect(view([]).status).toBe('NONE'));

  it('shows the tier and price of the subscription', () =>
    expect(view([observed()])).toMatchObject({
      status: 'ACTIVE',
      tierId: 'gold',
      priceId: 'gold-monthly',
      currentPeriodEnd: T0 + PERIOD,
    }));

  it('prefers a live subscription over an ended one', () => {
    const old = deleted({ subscriptionId: 'sub_0', observedAt: T0 + 1000, eventId: 'evt_0' });
    expect(view([old, observed()]).stripeSubscriptionId).toBe('sub_1');
  });

  it('shows installment progress', () =>
    expect(view([observed({ priceId: 'price_gold_3x' }), invoicePaid()])).toMatchObject({
      installmentsPaid: 1,
      installmentsTotal: 3,
    }));

  it('shows a downgrade scheduled for the period end', () => {
    const schedule: MembershipEvent = {
      type: 'ScheduleObserved',
      data: {
        scheduleId: 'sub_sched_1',
        subscriptionId: 'sub_1',
        phases: [
          { priceId: 'price_gold', start: T0, end: T0 + PERIOD },
          { priceId: 'price_basic', start: T0 + PERIOD },
        ],
        observedAt: T0,
        eventId: 'evt_s',
      },
    };
    expect(view([observed(), schedule]).scheduledChange).toEqual({
      toStripePriceId: 'price_basic',
      effectiveAt: T0 + PERIOD,
    });
  });

  describe('a schedule Gatehouse creates and then gives phases, within one second', () => {
    const at = (
      o: Partial<Extract<MembershipEvent, { type: 'ScheduleObserved' }>['data']>,
    ): MembershipEvent => ({
      type: 'ScheduleObserved',
      data: {
        scheduleId: 'sub_sched_2',
        subscriptionId: 'sub_1',
        phases: [{ priceId: 'price_gold', start: T0, end: T0 + PERIOD }],
        observedAt: T0,
        eventId: 'evt_s',
        ...o,
      },
    });
    const twoPhases = [
      { priceId: 'price_gold', start: T0, end: T0 + PERIOD },
      { priceId: 'price_basic', start: T0 + PERIOD },
    ];

    it.each([
      ['evt_a', 'evt_z'],
      ['evt_z', 'evt_a'],
    ])('shows the phases of the update, whichever event id sorts first (%s, %s)', (createdId, updatedId) => {
      const created = at({ eventId: createdId });
      const updated = at({ phases: twoPhases, update: true, eventId: updatedId });
      for (const order of [
        [created, updated],
        [updated, created],
      ]) {
        expect(view([observed(), ...order]).scheduledChange).toEqual({
          toStripePriceId: 'price_basic',
          effectiveAt: T0 + PERIOD,
        });
      }
    });

    it('shows nothing scheduled once the schedule is released, though its phases remain', () => {
      const updated = at({ phases: twoPhases, update: true, eventId: 'evt_u' });
      const released = at({ phases: twoPhases, ended: true, eventId: 'evt_a', observedAt: T0 });
      expect(view([observed(), updated, released]).scheduledChange).toBeUndefined();
      expect(view([observed(), released, updated]).scheduledChange).toBeUndefined();
    });
  });
});
