import { startProjectionHarness, type ProjectionHarness } from '../testing/projection-harness';
import type { CheckoutStarted, InvitationLinkCreated, PromoCodeCreated } from '@gatehouse/domain';
import { PostgresLedger, type NewEvent } from '@gatehouse/ledger';
import { createTestDatabase, type TestDatabase } from '@test/support';
import type { DataSource } from 'typeorm';
import { Projector } from '../runtime/projector';
import { CommerceProjection } from './commerce.projection';
import { CommerceQuery } from './commerce.query';

const T0 = Date.UTC(2026, 0, 1);
const community = 'com_commerce';
let seq = 0;

function admin(type: string, data: unknown, occurredAt = T0): NewEvent {
  return {
    type,
    communityId: community,
    occurredAt: new Date(occurredAt).toISOString(),
    source: 'admin',
    actor: 'usr_admin',
    data,
  };
}

function stripe(type: string, object: Record<string, unknown>, id = `evt_commerce_${++seq}`): NewEvent {
  return {
    id,
    type,
    communityId: community,
    subject: String(object.id),
    occurredAt: new Date(T0 + seq * 1000).toISOString(),
    source: 'stripe',
    data: {
      id,
      object: 'event',
      type,
      created: T0 / 1000 + seq,
      api_version: '2025-03-31.basil',
      data: { object },
    },
  };
}

const link = (o: Partial<InvitationLinkCreated['data']> = {}): InvitationLinkCreated['data'] => ({
  communityId: community,
  linkId: 'link_1',
  token: 'tok_1',
  audience: 'ANYONE',
  priceIds: ['p1'],
  maxUses: 5,
  createdAt: T0,
  ...o,
});

const promo: PromoCodeCreated['data'] = {
  communityId: community,
  promoCodeId: 'pc_1',
  code: 'Spring',
  codeKey: 'SPRING',
  stripeCouponId: 'co_1',
  stripePromotionCodeId: 'promo_1',
  percentOff: 20,
  duration: 'REPEATING',
  durationInMonths: 3,
  firstTimeOnly: false,
  createdAt: T0,
};

describe('commerce projection', () => {
  let db: TestDatabase;
  let harness: ProjectionHarness;
  let ds: DataSource;
  let ledger: PostgresLedger;
  let projector: Projector;
  let query: CommerceQuery;

  async function append(events: NewEvent[]): Promise<string[]> {
    const results = await ledger.append(events);
    expect(await projector.waitFor({ eventIds: results.map((r) => r.id) }, 15_000)).toBe(true);
    return results.map((r) => r.id);
  }

  beforeAll(async () => {
    db = await createTestDatabase('commerce_proj');
    harness = await startProjectionHarness({
      databaseUrl: db.url,
      projections: (logger) => [new CommerceProjection({ logger })],
      maxBatch: 7,
    });
    ({ ds, ledger, projector } = harness);
    query = new CommerceQuery(ds);
  });

  afterAll(async () => {
    await harness.close();
    await db.drop();
  });

  it('accepts exactly maxUses of 20 concurrent redemptions, in log order, and a rebuild decides the same', async () => {
    await append([admin('InvitationLinkCreated', link())]);
    const ids = Array.from({ length: 20 }, (_, i) => `red_${i}`);
    await Promise.all(
      ids.map((redemptionId, i) =>
        append([
          admin('InvitationLinkRedeemed', {
            communityId: community,
            linkId: 'link_1',
            redemptionId,
            memberId: `m${i}`,
            at: T0 + 1,
          }),
        ]),
      ),
    );
    const outcomes = async () =>
      Promise.all(ids.map(async (id) => (await query.redemption(community, id))?.outcome));
    const live = await outcomes();
    expect(live.filter((o) => o === 'ACCEPTED')).toHaveLength(5);
    expect(live.filter((o) => o === 'USED_UP')).toHaveLength(15);
    expect((await query.invitationLinkByToken('tok_1'))?.uses).toBe(5);

    // The five accepted are the first five in the log.
    const logged: string[] = [];
    for await (const e of ledger.read({ communityId: community, types: ['InvitationLinkRedeemed'] })) {
      logged.push((e.data as { redemptionId: string }).redemptionId);
    }
    const accepted = ids.filter((_, i) => live[i] === 'ACCEPTED').sort();
    expect(logged.slice(0, 5).sort()).toEqual(accepted);

    await projector.rebuild('commerce');
    expect(await outcomes()).toEqual(live);
    expect((await query.invitationLinkByToken('tok_1'))?.uses).toBe(5);
  }, 60_000);

  it('refuses a redemption made after the expiry without using the link', async () => {
    await append([
      admin('InvitationLinkCreated', link({ linkId: 'link_exp', token: 'tok_exp', expiresAt: T0 + 10 })),
    ]);
    await append([
      admin('InvitationLinkRedeemed', {
        communityId: community,
        linkId: 'link_exp',
        redemptionId: 'red_late',
        memberId: 'm',
        at: T0 + 10,
      }),
    ]);
    expect((await query.redemption(community, 'red_late'))?.outcome).toBe('EXPIRED');
    expect((await query.invitationLink(community, 'link_exp'))?.uses).toBe(0);
  });

  it('gives a use back when Stripe expires the session that held it unpaid, once; a paid session keeps its use', async () => {
    await append([
      admin('InvitationLinkCreated', link({ linkId: 'link_hold', token: 'tok_hold', maxUses: 1 })),
    ]);
    const redeem = (redemptionId: string, memberId: string) =>
      admin('InvitationLinkRedeemed', {
        communityId: community,
        linkId: 'link_hold',
        redemptionId,
        memberId,
        at: T0 + 1,
      });
    const started = (redemptionId: string, memberId: string, session: string): NewEvent =>
      admin('CheckoutStarted', {
        communityId: community,
        checkoutId: `chk_${session}`,
        memberId,
        priceId: 'p1',
        stripePriceId: 'price_1',
        stripeCheckoutSessionId: session,
        mode: 'subscription',
        invitationLinkId: 'link_hold',
        redemptionId,
        startedAt: T0 + 1,
      } satisfies CheckoutStarted['data']);
    const session = (type: string, id: string) =>
      stripe(type, { id, object: 'checkout.session', mode: 'subscription', status: 'expired' });
    const uses = async () => (await query.invitationLink(community, 'link_hold'))?.uses;

    await append([redeem('red_hold_1', 'm_hold_1'), started('red_hold_1', 'm_hold_1', 'cs_hold_1')]);
    await append([redeem('red_hold_2', 'm_hold_2')]);
    expect(await uses()).toBe(1);
    expect((await query.redemption(community, 'red_hold_2'))?.outcome).toBe('USED_UP');

    const expired = session('checkout.session.expired', 'cs_hold_1');
    await append([expired]);
    expect(await uses()).toBe(0);
    expect((await query.redemption(community, 'red_hold_1'))?.outcome).toBe('RELEASED');
    expect((await query.checkouts(community, 'm_hold_1'))[0].expiredAt).toBe(Date.parse(expired.occurredAt!));
    // Stripe's twin of the same expiry, or the same event again: nothing more is given back.
    await append([session('checkout.session.expired', 'cs_hold_1')]);
    expect(await uses()).toBe(0);

    // The use is free again; this buyer pays, and a late expiry of a paid session changes nothing.
    await append([redeem('red_hold_3', 'm_hold_3'), started('red_hold_3', 'm_hold_3', 'cs_hold_3')]);
    expect((await query.redemption(community, 'red_hold_3'))?.outcome).toBe('ACCEPTED');
    await append([session('checkout.session.completed', 'cs_hold_3')]);
    await append([session('checkout.session.expired', 'cs_hold_3')]);
    expect(await uses()).toBe(1);
    expect((await query.redemption(community, 'red_hold_3'))?.outcome).toBe('ACCEPTED');
    // An expiry of a session we did not start is ignored.
    await append([session('checkout.session.expired', 'cs_unknown')]);
    expect(await uses()).toBe(1);

    await projector.rebuild('commerce');
    expect(await uses()).toBe(1);
    expect((await query.redemption(community, 'red_hold_1'))?.outcome).toBe('RELEASED');
    expect((await query.redemption(community, 'red_hold_2'))?.outcome).toBe('USED_UP');
  });

  it('counts a promo code once per subscription or payment, from sessions and invoices, duplicates ignored', async () => {
    await append([admin('PromoCodeCreated', promo)]);
    const started: CheckoutStarted['data'] = {
      communityId: community,
      checkoutId: 'chk_1',
      memberId: 'm_promo',
      priceId: 'p1',
      stripePriceId: 'price_1',
      stripeCheckoutSessionId: 'cs_1',
      mode: 'subscription',
      promoCodeId: 'pc_1',
      stripePromotionCodeId: 'promo_1',
      startedAt: T0,
    };
    await append([admin('CheckoutStarted', started)]);
    expect((await query.promoCodeByKey(community, 'SPRING'))?.timesRedeemed).toBe(0);

    // The session payload does not echo the pre-applied code: the checkout we started knows it.
    const completed = stripe('checkout.session.completed', {
      id: 'cs_1',
      object: 'checkout.session',
      mode: 'subscription',
      customer: 'cus_promo',
      subscription: 'sub_promo',
      client_reference_id: 'm_promo',
      metadata: { gatehouse_member_id: 'm_promo' },
    });
    await append([completed]);
    await append([{ ...completed }]);
    const renewal = (n: number) =>
      stripe('invoice.paid', {
        id: `in_${n}`,
        object: 'invoice',
        customer: 'cus_promo',
        parent: { subscription_details: { subscription: 'sub_promo' } },
        discounts: [{ id: `di_${n}`, object: 'discount', promotion_code: 'promo_1' }],
      });
    await append([renewal(1), renewal(2)]);
    expect((await query.promoCodeByKey(community, 'SPRING'))?.timesRedeemed).toBe(1);

    // A legacy invoice of another purchase, with the singular `discount`.
    await append([
      stripe('invoice.paid', {
        id: 'in_once',
        object: 'invoice',
        discount: { promotion_code: { id: 'promo_1' } },
      }),
    ]);
    expect((await query.promoCode(community, 'pc_1'))?.timesRedeemed).toBe(2);
    expect((await query.checkouts(community, 'm_promo'))[0].completedAt).not.toBeNull();
  });

  it('learns a member’s Stripe customer and trials from Stripe facts', async () => {
    await append([
      stripe('checkout.session.completed', {
        id: 'cs_2',
        object: 'checkout.session',
        mode: 'subscription',
        customer: 'cus_trial',
        client_reference_id: 'm_trial',
        metadata: { gatehouse_member_id: 'm_trial', gatehouse_price_id: 'p_gold' },
      }),
      stripe('customer.subscription.created', {
        id: 'sub_trial',
        object: 'subscription',
        customer: 'cus_trial',
        status: 'trialing',
        trial_end: T0 / 1000 + 14 * 86400,
        metadata: { gatehouse_member_id: 'm_trial', gatehouse_price_id: 'p_gold' },
      }),
    ]);
    expect(await query.stripeCustomerId(community, 'm_trial')).toBe('cus_trial');
    expect(await query.trialedPriceIds(community, 'm_trial')).toEqual(['p_gold']);
    expect(await query.stripeCustomerId(community, 'm_nobody')).toBeNull();
    expect(await query.isKnownMember(community, 'm_trial')).toBe(true);
    expect(await query.isKnownMember(community, 'm_nobody')).toBe(false);
  });

  it('keeps the first Stripe customer learned for a member, also within one batch and across batches', async () => {
    const sub = (id: string, customer: string) =>
      stripe('customer.subscription.updated', {
        id,
        object: 'subscription',
        customer,
        status: 'active',
        metadata: { gatehouse_member_id: 'm_two' },
      });
    await append([sub('sub_two_a', 'cus_first'), sub('sub_two_b', 'cus_second')]);
    await append([sub('sub_two_c', 'cus_third')]);
    expect(await query.stripeCustomerId(community, 'm_two')).toBe('cus_first');
  });
});
