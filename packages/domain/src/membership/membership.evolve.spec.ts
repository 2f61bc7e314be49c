import { diffGrants } from '../access/diff-grants';
import { grantsFor } from '../access/grants-for';
import { buildCatalog, deleted, invoicePaid, observed, PERIOD, T0 } from '../testing/builders';
import { DAY_MS, HOUR_MS } from '../time';
import {
  emptyMemberState,
  evolveMembership,
  installmentsPaid,
  type MembershipEvent,
} from './membership.evolve';

const catalog = buildCatalog();
const community = catalog.community!;
const fold = (events: MembershipEvent[]) => events.reduce(evolveMembership, emptyMemberState());
const communityUntil = (events: MembershipEvent[]) =>
  grantsFor(fold(events), catalog, community).find((g) => g.resource.kind === 'COMMUNITY')?.validUntil;

describe('membership fold: subscriptions', () => {
  it('never rolls back to a snapshot observed earlier', () => {
    const renewed = observed({
      currentPeriodStart: T0 + PERIOD,
      currentPeriodEnd: T0 + 2 * PERIOD,
      observedAt: T0 + PERIOD,
      eventId: 'evt_2',
    });
    const stale = observed({ status: 'past_due', observedAt: T0 + DAY_MS, eventId: 'evt_3' });
    expect(fold([renewed, stale]).subscriptions.sub_1.latest.eventId).toBe('evt_2');
    expect(fold([stale, renewed])).toEqual(fold([renewed, stale]));
  });

  it('orders same-second snapshots by the later period end', () => {
    const a = observed({ observedAt: T0, eventId: 'evt_b' });
    const b = observed({ observedAt: T0, currentPeriodEnd: T0 + 2 * PERIOD, eventId: 'evt_a' });
    expect(fold([b, a]).subscriptions.sub_1.latest.eventId).toBe('evt_a');
    expect(fold([a, b]).subscriptions.sub_1.latest.eventId).toBe('evt_a');
  });

  it('takes an update made in the second of the creation as the later state, whatever the event ids', () => {
    for (const [createdId, updatedId] of [
      ['evt_a', 'evt_z'],
      ['evt_z', 'evt_a'],
    ]) {
      const created = observed({ eventId: createdId });
      const updated = observed({ cancelAtPeriodEnd: true, update: true, eventId: updatedId });
      expect(fold([created, updated]).subscriptions.sub_1.latest.cancelAtPeriodEnd).toBe(true);
      expect(fold([updated, created]).subscriptions.sub_1.latest.cancelAtPeriodEnd).toBe(true);
    }
  });

  it('orders same-second snapshots of one period by status precedence', () => {
    const active = observed({ status: 'active', eventId: 'evt_z' });
    const pastDue = observed({ status: 'past_due', eventId: 'evt_a' });
    expect(fold([pastDue, active]).subscriptions.sub_1.latest.status).toBe('past_due');
    expect(fold([active, pastDue]).subscriptions.sub_1.latest.status).toBe('past_due');
  });

  it('gives twin events one effect, whichever arrives first', () => {
    const twinA = observed({ cancelAtPeriodEnd: true, observedAt: T0 + DAY_MS, eventId: 'evt_a' });
    const twinB = observed({ cancelAtPeriodEnd: true, observedAt: T0 + DAY_MS, eventId: 'evt_b' });
    expect(fold([observed(), twinA, twinB])).toEqual(fold([observed(), twinB, twinA]));
    expect(communityUntil([observed(), twinA, twinB])).toBe(T0 + PERIOD);
  });

  it('changes nothing when the same event arrives twice', () => {
    const e = observed({ status: 'past_due', observedAt: T0 + DAY_MS, eventId: 'evt_2' });
    expect(fold([observed(), e, e])).toEqual(fold([observed(), e]));
  });

  it('never revives a canceled subscription from a later active snapshot', () => {
    const canceled = deleted({ observedAt: T0 + DAY_MS, endedAt: T0 + DAY_MS, eventId: 'evt_del' });
    const late = observed({ observedAt: T0 + 2 * DAY_MS, eventId: 'evt_late' });
    expect(fold([canceled, late]).subscriptions.sub_1.latest.status).toBe('canceled');
  });

  it('revokes a past-due subscription suspended after its grace once it is canceled', () => {
    const pastDue = observed({ status: 'past_due', observedAt: T0 + DAY_MS, eventId: 'evt_pd' });
    const canceled = deleted({ observedAt: T0 + 6 * DAY_MS, endedAt: T0 + 6 * DAY_MS, eventId: 'evt_del' });
    const communityGrants = (events: MembershipEvent[]) =>
      grantsFor(fold(events), catalog, community).filter((g) => g.resource.kind === 'COMMUNITY');
    const suspended = communityGrants([observed(), pastDue]);
    expect(suspended).toMatchObject([{ validUntil: T0 + 4 * DAY_MS, suspended: true }]);
    const history = diffGrants(
      suspended,
      communityGrants([observed(), pastDue, canceled]),
      T0 + 6 * DAY_MS,
      'evt_del',
    );
    expect(history.map((c) => [c.change, c.causedBy])).toEqual([['REVOKED', 'evt_del']]);
  });

  it('remembers when past due began even when the later snapshot arrives first', () => {
    const first = observed({ status: 'past_due', observedAt: T0 + DAY_MS, eventId: 'evt_pd1' });
    const again = observed({ status: 'past_due', observedAt: T0 + 2 * DAY_MS, eventId: 'evt_pd2' });
    expect(communityUntil([again, first])).toBe(T0 + DAY_MS + 3 * DAY_MS);
  });
});

describe('membership fold: installment plans', () => {
  const plan = (o = {}) => observed({ priceId: 'price_gold_3x', ...o });
  const paid = (n: number) =>
    invoicePaid({ invoiceId: `in_${n}`, eventId: `evt_in_${n}`, observedAt: T0 + (n - 1) * PERIOD });
  const end = deleted({
    priceId: 'price_gold_3x',
    observedAt: T0 + 3 * PERIOD,
    endedAt: T0 + 3 * PERIOD,
    eventId: 'evt_end',
  });

  it('counts each paid invoice once', () => {
    expect(installmentsPaid(fold([paid(1), paid(1), paid(2)]), 'sub_1')).toBe(2);
  });

  it('keeps access for good once every installment is paid, even after the closing deletion', () => {
    const grants = grantsFor(fold([plan(), paid(1), paid(2), paid(3), end]), catalog, community);
    expect(grants.map((g) => [g.resource.kind, g.source, g.validUntil])).toEqual([
      ['COMMUNITY', 'INSTALLMENT_PLAN', null],
      ['GROUP', 'INSTALLMENT_PLAN', null],
    ]);
    expect(grants[0].causedBy).toBe('evt_in_3');
  });

  it('grants for good even when the deletion arrives before the last invoice', () => {
    expect(communityUntil([end, paid(3), plan(), paid(2), paid(1)])).toBeNull();
  });

  it('revokes a plan that ended before every installment was paid', () => {
    expect(communityUntil([plan(), paid(1), paid(2), end])).toBe(T0 + 3 * PERIOD);
  });

  it('does not count the $0 invoice Stripe pays when a trial starts, so a trial does not pay an installment', () => {
    const trialStart = invoicePaid({
      invoiceId: 'in_trial',
      eventId: 'evt_in_trial',
      billingReason: 'subscription_create',
      amountPaid: 0,
      lines: [
        {
          amount: 0,
          proration: false,
          periodStart: T0,
          periodEnd: T0 + 7 * DAY_MS,
          description: 'Trial period for Gold',
          quantity: 1,
        },
      ],
    });
    expect(installmentsPaid(fold([trialStart, paid(1), paid(2)]), 'sub_1')).toBe(2);
    // Two of three installments paid after a trial: the plan's end still revokes.
    expect(communityUntil([plan(), trialStart, paid(1), paid(2), end])).toBe(T0 + 3 * PERIOD);
    // A 100 %-off coupon brings an installment to 0: it is paid all the same.
    const free = invoicePaid({
      invoiceId: 'in_free',
      eventId: 'evt_in_free',
      observedAt: T0 + 2 * PERIOD,
      amountPaid: 0,
      lines: [
        {
          amount: 1000,
          proration: false,
          periodStart: T0 + 2 * PERIOD,
          periodEnd: T0 + 3 * PERIOD,
          description: '1 × Gold',
          quantity: 1,
        },
      ],
    });
    expect(communityUntil([plan(), trialStart, paid(1), paid(2), free, end])).toBeNull();
  });

  it('does not count proration invoices as installments', () => {
    const proration = invoicePaid({ invoiceId: 'in_p', billingReason: 'subscription_update' });
    expect(installmentsPaid(fold([paid(1), proration]), 'sub_1')).toBe(1);
  });
});

describe('membership fold: one-time purchases', () => {
  const purchase = (paid: boolean, eventId: string, observedAt = T0): MembershipEvent => ({
    type: 'OneTimePurchaseCompleted',
    data: {
      checkoutSessionId: 'cs_1',
      paymentIntentId: 'pi_1',
      stripePriceId: 'price_g1_once',
      memberId: 'm1',
      paid,
      observedAt,
      eventId,
    },
  });
  const groupGrants = (events: MembershipEvent[]) =>
    grantsFor(fold(events), catalog, community).filter((g) => g.resource.kind === 'GROUP');

  it('grants nothing until the payment succeeds', () => {
    expect(groupGrants([purchase(false, 'evt_c')])).toEqual([]);
    expect(groupGrants([purchase(false, 'evt_c'), purchase(true, 'evt_async', T0 + HOUR_MS)])).toMatchObject([
      { source: 'ONE_TIME', validFrom: T0 + HOUR_MS, validUntil: null, causedBy: 'evt_async' },
    ]);
  });

  it('revokes on a full refund, not on a partial one', () => {
    const refund = (full: boolean): MembershipEvent => ({
      type: 'OneTimePurchaseRefunded',
      data: { paymentIntentId: 'pi_1', full, observedAt: T0 + DAY_MS, eventId: 'evt_r' },
    });
    expect(groupGrants([purchase(true, 'evt_c'), refund(false)])[0]).toMatchObject({
      validUntil: null,
      causedBy: 'evt_c',
    });
    // The refund is what ended it, whichever was recorded first.
    expect(groupGrants([refund(true), purchase(true, 'evt_c')])[0]).toMatchObject({
      validUntil: T0 + DAY_MS,
      causedBy: 'evt_r',
    });
    expect(groupGrants([purchase(true, 'evt_c'), refund(true)])[0].causedBy).toBe('evt_r');
  });

  const opened: MembershipEvent = {
    type: 'DisputeOpened',
    data: { chargeId: 'ch_1', paymentIntentId: 'pi_1', observedAt: T0 + DAY_MS, eventId: 'evt_do' },
  };
  const closed = (status: 'won' | 'lost'): MembershipEvent => ({
    type: 'DisputeClosed',
    data: {
      chargeId: 'ch_1',
      paymentIntentId: 'pi_1',
      status,
      observedAt: T0 + 5 * DAY_MS,
      eventId: 'evt_dc',
    },
  });

  it('suspends access while a dispute is open, for the dispute', () =>
    expect(groupGrants([purchase(true, 'evt_c'), opened])).toMatchObject([
      { validUntil: T0 + DAY_MS, suspended: true, causedBy: 'evt_do' },
    ]));

  it('restores access when the dispute is won', () =>
    expect(groupGrants([purchase(true, 'evt_c'), closed('won'), opened])).toMatchObject([
      { validFrom: T0, validUntil: T0 + DAY_MS, suspended: false, causedBy: 'evt_do' },
      { validFrom: T0 + 5 * DAY_MS, validUntil: null, causedBy: 'evt_dc' },
    ]));

  it('revokes access from the dispute when it is lost, for the loss', () =>
    expect(groupGrants([purchase(true, 'evt_c'), opened, closed('lost')])).toMatchObject([
      { validUntil: T0 + DAY_MS, suspended: false, causedBy: 'evt_dc' },
    ]));

  it('a refund after a won dispute still ends the purchase, for the refund', () => {
    const later: MembershipEvent = {
      type: 'OneTimePurchaseRefunded',
      data: { paymentIntentId: 'pi_1', full: true, observedAt: T0 + 9 * DAY_MS, eventId: 'evt_r' },
    };
    expect(groupGrants([purchase(true, 'evt_c'), opened, closed('won'), later])).toMatchObject([
      { validUntil: T0 + DAY_MS, causedBy: 'evt_do' },
      { validFrom: T0 + 5 * DAY_MS, validUntil: T0 + 9 * DAY_MS, causedBy: 'evt_r' },
    ]);
  });
});
