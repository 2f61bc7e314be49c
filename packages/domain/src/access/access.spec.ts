import type { CatalogEvent } from '../catalog/catalog.events';
import { emptyMemberState, evolveMembership, type MembershipEvent } from '../membership/membership.evolve';
import { buildCatalog, communityId, deleted, observed, PERIOD, T0 } from '../testing/builders';
import { DAY_MS, HOUR_MS } from '../time';
import type { AccessGrant } from './access-grant';
import { decideAccess } from './decide-access';
import { diffGrants, lapsedGrants } from './diff-grants';
import { grantsFor, INDIA_RENEWAL_ALLOWANCE_MS, RENEWAL_ALLOWANCE_MS } from './grants-for';

const catalog = buildCatalog();
const community = catalog.community!;
const grants = (events: MembershipEvent[], c = community, cat = catalog) =>
  grantsFor(events.reduce(evolveMembership, emptyMemberState()), cat, c);
const COMMUNITY = { kind: 'COMMUNITY' as const };
const until = (events: MembershipEvent[]) =>
  grants(events).find((g) => g.resource.kind === 'COMMUNITY')?.validUntil;

describe('grantsFor: subscriptions', () => {
  it('grants a tier: the community and its groups, to the period end plus the renewal allowance', () =>
    expect(grants([observed()])).toMatchObject([
      {
        resource: COMMUNITY,
        source: 'SUBSCRIPTION',
        validFrom: T0,
        validUntil: T0 + PERIOD + RENEWAL_ALLOWANCE_MS,
        causedBy: 'evt_1',
      },
      { resource: { kind: 'GROUP', id: 'g1' }, validUntil: T0 + PERIOD + RENEWAL_ALLOWANCE_MS },
    ]));

  it('allows a day for the pre-debit notice on renewals in India', () =>
    expect(grants([observed()], { ...community, region: 'in' })[0].validUntil).toBe(
      T0 + PERIOD + INDIA_RENEWAL_ALLOWANCE_MS,
    ));

  it('keeps access until the paid period ends after a cancellation at period end', () =>
    expect(
      until([observed(), observed({ cancelAtPeriodEnd: true, observedAt: T0 + DAY_MS, eventId: 'evt_2' })]),
    ).toBe(T0 + PERIOD));

  it('ends access at ended_at when canceled immediately', () =>
    expect(
      until([
        observed(),
        deleted({ observedAt: T0 + 2 * DAY_MS, endedAt: T0 + 2 * DAY_MS, eventId: 'evt_2' }),
      ]),
    ).toBe(T0 + 2 * DAY_MS));

  it('keeps a past-due member for the community grace period from when payment failed', () =>
    expect(
      until([observed(), observed({ status: 'past_due', observedAt: T0 + 5 * DAY_MS, eventId: 'evt_2' })]),
    ).toBe(T0 + 8 * DAY_MS));

  it('never lets the grace period run past the period end', () =>
    expect(until([observed({ status: 'past_due', observedAt: T0 + PERIOD - HOUR_MS })])).toBe(
      T0 + PERIOD + RENEWAL_ALLOWANCE_MS,
    ));

  it.each(['unpaid', 'paused'] as const)('suspends access from when a subscription turns %s', (status) => {
    const g = grants([observed(), observed({ status, observedAt: T0 + 2 * DAY_MS, eventId: 'evt_2' })])[0];
    expect(g).toMatchObject({ validUntil: T0 + 2 * DAY_MS, suspended: true });
  });

  it.each(['incomplete', 'incomplete_expired'] as const)('grants nothing to an %s subscription', (status) =>
    expect(grants([observed({ status })])).toEqual([]),
  );

  it('maps a grandfathered Stripe price to its tier through the Stripe product', () =>
    expect(grants([observed({ priceId: 'price_legacy' })])[0].resource).toEqual(COMMUNITY));
});

describe('grantsFor: other sources', () => {
  const joined: MembershipEvent = {
    type: 'MemberJoined',
    data: { communityId, memberId: 'm1', joinedAt: T0 },
    metadata: { eventId: 'ev-join' },
  };

  it('gives a free member the community with no end', () =>
    expect(grants([joined])).toMatchObject([
      { resource: COMMUNITY, source: 'FREE_MEMBERSHIP', validUntil: null, causedBy: 'ev-join' },
    ]));

  it('ends free access in a paid-only community at freeMembersUntil', () => {
    const paidOnly: CatalogEvent = {
      type: 'PaidOnlySet',
      data: { communityId, paidOnly: true, freeMembersUntil: T0 + 7 * DAY_MS, at: T0 + DAY_MS },
    };
    const cat = buildCatalog([paidOnly]);
    expect(grants([joined], cat.community!, cat)[0].validUntil).toBe(T0 + 7 * DAY_MS);
  });

  it('ends an event ticket when the event ends', () => {
    const ticket: MembershipEvent = {
      type: 'OneTimePurchaseCompleted',
      data: {
        checkoutSessionId: 'cs_1',
        stripePriceId: 'price_e1',
        memberId: 'm1',
        paid: true,
        observedAt: T0,
        eventId: 'evt_t',
      },
    };
    expect(grants([ticket])).toMatchObject([
      { resource: { kind: 'EVENT', id: 'e1' }, validUntil: T0 + 11 * DAY_MS },
    ]);
  });

  it('ends complimentary access at its end or its revocation, whichever is first', () => {
    const resource = { kind: 'GROUP' as const, id: 'g1' };
    const granted: MembershipEvent = {
      type: 'ComplimentaryAccessGranted',
      data: { communityId, memberId: 'm1', resource, from: T0, until: T0 + 9 * DAY_MS, reason: 'speaker' },
      metadata: { eventId: 'ev-comp' },
    };
    const revoked: MembershipEvent = {
      type: 'ComplimentaryAccessRevoked',
      data: { communityId, memberId: 'm1', resource, at: T0 + 2 * DAY_MS, reason: 'left' },
    };
    expect(grants([granted])[0].validUntil).toBe(T0 + 9 * DAY_MS);
    expect(grants([granted, revoked])[0]).toMatchObject({
      source: 'COMPLIMENTARY',
      validUntil: T0 + 2 * DAY_MS,
    });
  });
});

const grant = (o: Partial<AccessGrant>): AccessGrant => ({
  resource: COMMUNITY,
  source: 'SUBSCRIPTION',
  validFrom: T0,
  validUntil: T0 + PERIOD,
  causedBy: 'evt_1',
  suspended: false,
  ...o,
});

describe('decideAccess', () => {
  it('allows inside a grant and names the source and end', () => {
    const d = decideAccess([grant({})], COMMUNITY, T0 + DAY_MS);
    expect(d).toMatchObject({ allowed: true, validUntil: T0 + PERIOD });
    expect(d.reason).toBe(
      'Allowed: a subscription gives access to the community until 2026-01-31T00:00:00.000Z.',
    );
  });

  it('treats the end of a grant as exclusive', () =>
    expect(decideAccess([grant({})], COMMUNITY, T0 + PERIOD).allowed).toBe(false));

  it('reports the end of chained grants as the access end', () => {
    const later = grant({
      source: 'COMPLIMENTARY',
      validFrom: T0 + PERIOD,
      validUntil: null,
      causedBy: 'ev-c',
    });
    expect(decideAccess([grant({}), later], COMMUNITY, T0).validUntil).toBeNull();
  });

  it('says what ended when access is denied', () =>
    expect(decideAccess([grant({ suspended: true })], COMMUNITY, T0 + PERIOD).reason).toBe(
      'Denied: access to the community through a subscription was suspended at 2026-01-31T00:00:00.000Z.',
    ));

  it('says nothing covers a resource without grants', () => {
    const d = decideAccess([grant({})], { kind: 'GROUP', id: 'g9' }, T0);
    expect(d).toMatchObject({ allowed: false, grants: [], validUntil: null });
    expect(d.reason).toContain('group g9');
  });
});

describe('diffGrants', () => {
  const at = T0 + DAY_MS;
  const kinds = (before: AccessGrant[], after: AccessGrant[], when = at) =>
    diffGrants(before, after, when).map((c) => c.change);

  it('records a first grant as GRANTED', () => expect(kinds([], [grant({})])).toEqual(['GRANTED']));
  it('records a renewal as EXTENDED', () =>
    expect(kinds([grant({})], [grant({ validUntil: T0 + 2 * PERIOD })])).toEqual(['EXTENDED']));
  it('records a cancellation at period end as SHORTENED', () =>
    expect(kinds([grant({})], [grant({ validUntil: T0 + PERIOD - HOUR_MS })])).toEqual(['SHORTENED']));
  it('records an immediate cancellation as REVOKED', () =>
    expect(kinds([grant({})], [grant({ validUntil: at })])).toEqual(['REVOKED']));
  it('records the end of a grace period as SUSPENDED and a later payment as RESTORED', () => {
    const suspended = grant({ validUntil: at, suspended: true });
    expect(kinds([grant({})], [suspended])).toEqual(['SUSPENDED']);
    expect(kinds([suspended], [grant({ causedBy: 'evt_paid' })])).toEqual(['RESTORED']);
  });
  it('records a suspension made final as REVOKED, and a suspension still open as nothing new', () => {
    const later = at + HOUR_MS;
    const suspended = grant({ validUntil: at, suspended: true, causedBy: 'evt_opened' });
    const final = grant({ validUntil: at, causedBy: 'evt_lost' });
    expect(diffGrants([suspended], [final], later).map((c) => [c.change, c.causedBy])).toEqual([
      ['REVOKED', 'evt_lost'],
    ]);
    expect(
      kinds([suspended], [grant({ validUntil: at, suspended: true, causedBy: 'evt_x' })], later),
    ).toEqual([]);
    expect(kinds([final], [grant({ validUntil: at, causedBy: 'evt_y' })], later)).toEqual([]);
  });
  it('finds access that ran out by time alone between two facts, once', () => {
    const graceEnd = at + 3 * DAY_MS;
    const grace = grant({ validUntil: graceEnd, suspended: true, causedBy: 'evt_past_due' });
    expect(lapsedGrants([grace], at, graceEnd + HOUR_MS)).toEqual([
      {
        resource: COMMUNITY,
        change: 'SUSPENDED',
        source: 'SUBSCRIPTION',
        effectiveAt: graceEnd,
        validUntil: null,
        causedBy: 'evt_past_due',
      },
    ]);
    // Ended exactly at the next fact: lapsed too (the end is exclusive).
    expect(lapsedGrants([grace], at, graceEnd).map((c) => c.change)).toEqual(['SUSPENDED']);
    expect(lapsedGrants([grant({ validUntil: graceEnd })], at, graceEnd).map((c) => c.change)).toEqual([
      'REVOKED',
    ]);
    // Still open, already gone when last compared, or compared again at the same instant: nothing.
    expect(lapsedGrants([grace], at, graceEnd - 1)).toEqual([]);
    expect(lapsedGrants([grace], graceEnd, graceEnd + DAY_MS)).toEqual([]);
    expect(lapsedGrants([grace], at, at)).toEqual([]);
    // A chain of grants is one access: it lapses at the end of the last.
    const chained = [
      grant({ validUntil: at + DAY_MS }),
      grant({ validFrom: at + DAY_MS, validUntil: graceEnd }),
    ];
    expect(lapsedGrants(chained, at, graceEnd + 1).map((c) => c.effectiveAt)).toEqual([graceEnd]);
  });
  it('names the grant that ended as the cause of a loss, else the fact applied', () => {
    const cause = (after: AccessGrant[], trigger?: string) =>
      diffGrants([grant({})], after, at, trigger).map((c) => [c.change, c.causedBy]);
    expect(cause([grant({ validUntil: at, causedBy: 'evt_deleted' })], 'evt_deleted')).toEqual([
      ['REVOKED', 'evt_deleted'],
    ]);
    expect(cause([grant({ validUntil: at, suspended: true, causedBy: 'evt_failed' })], 'evt_x')).toEqual([
      ['SUSPENDED', 'evt_failed'],
    ]);
    // Nothing ended: the grant is gone (refunded the second it was bought, say).
    expect(cause([], 'evt_refund')).toEqual([['REVOKED', 'evt_refund']]);
    expect(cause([])).toEqual([['REVOKED', 'evt_1']]);
  });
  it('records nothing when access is unchanged', () =>
    expect(diffGrants([grant({})], [grant({ causedBy: 'evt_twin' })], at)).toEqual([]));
});
