import { startProjectionHarness, type ProjectionHarness } from '../testing/projection-harness';
import type { TierChangeRequested } from '@gatehouse/domain';
import { PostgresLedger, type NewEvent } from '@gatehouse/ledger';
import { stripeTestKit } from '@gatehouse/stripe';
import { createTestDatabase, type TestDatabase } from '@test/support';
import type { DataSource } from 'typeorm';
import { Projector } from '../runtime/projector';
import { TiersProjection } from './tiers.projection';
import { TiersQuery } from './tiers.query';

const community = 'com_tiers';
const T = 1_767_225_600; // 2026-01-01, Stripe seconds
const END = T + 30 * 86_400;
const DATE = T + 10 * 86_400;
let seq = 0;

function stripe(
  type: string,
  object: Record<string, unknown>,
  apiVersion: stripeTestKit.ApiVersion,
): NewEvent {
  const event = stripeTestKit.buildEvent(type, object as never, { apiVersion, created: T + ++seq });
  return {
    id: event.id,
    type,
    communityId: community,
    occurredAt: new Date((T + seq) * 1000).toISOString(),
    source: 'stripe',
    data: event,
  };
}

function requested(subscriptionId: string, preview: { credit: number; charge: number }): NewEvent {
  const data: TierChangeRequested['data'] = {
    communityId: community,
    memberId: `m_${subscriptionId}`,
    subscriptionId,
    itemId: 'si_1',
    fromStripePriceId: 'price_bronze',
    toPriceId: 'gold',
    toStripePriceId: 'price_gold',
    quantity: 1,
    timing: 'IMMEDIATE',
    prorationDate: DATE * 1000,
    preview: {
      ...preview,
      net: preview.credit + preview.charge,
      dueNow: preview.credit + preview.charge,
      currency: 'usd',
      lines: [],
    },
  };
  return {
    type: 'TierChangeRequested',
    communityId: community,
    occurredAt: new Date(DATE * 1000).toISOString(),
    source: 'admin',
    actor: 'm',
    data,
  };
}

function invoice(
  type: string,
  subscription: string,
  apiVersion: stripeTestKit.ApiVersion,
  amounts = [-667, 2000],
): NewEvent {
  const lines = [
    { amount: amounts[0], proration: true, priceId: 'price_bronze', periodStart: DATE, periodEnd: END },
    { amount: amounts[1], proration: true, priceId: 'price_gold', periodStart: DATE, periodEnd: END },
  ];
  return stripe(
    type,
    stripeTestKit.buildInvoice(
      { id: `in_${subscription}`, subscription, billingReason: 'subscription_update', lines },
      apiVersion,
    ),
    apiVersion,
  );
}

describe('tiers projection', () => {
  let db: TestDatabase;
  let harness: ProjectionHarness;
  let ds: DataSource;
  let ledger: PostgresLedger;
  let projector: Projector;
  let query: TiersQuery;

  async function append(events: NewEvent[]): Promise<void> {
    const results = await ledger.append(events);
    expect(await projector.waitFor({ eventIds: results.map((r) => r.id) }, 15_000)).toBe(true);
  }
  const outcome = async (sub: string) =>
    (await query.outcomes(community)).find((o) => o.subscriptionId === sub);

  beforeAll(async () => {
    db = await createTestDatabase('tiers_proj');
    harness = await startProjectionHarness({
      databaseUrl: db.url,
      projections: (logger) => [new TiersProjection({ logger })],
      maxBatch: 3,
    });
    ({ ds, ledger, projector } = harness);
    query = new TiersQuery(ds);
  });

  afterAll(async () => {
    await harness.close();
    await db.drop();
  });

  it.each([stripeTestKit.LEGACY_API, stripeTestKit.BASIL_API])(
    'records the proration of a %s invoice once (finalized, then paid) and matches it with the preview of the same proration date',
    async (api) => {
      const sub = `sub_${api.slice(0, 4)}`;
      await append([
        requested(sub, { credit: -667, charge: 2000 }),
        invoice('invoice.finalized', sub, api),
        invoice('invoice.paid', sub, api),
      ]);
      const o = await outcome(sub);
      expect(o).toMatchObject({
        memberId: `m_${sub}`,
        credit: -667,
        charge: 2000,
        net: 1333,
        currency: 'usd',
        previewMatched: true,
      });
      expect(o?.effectiveAt.getTime()).toBe(DATE * 1000);
      expect(o?.causedBy.type).toBe('invoice.finalized');
      expect((await query.outcomes(community)).filter((x) => x.subscriptionId === sub)).toHaveLength(1);
    },
  );

  it('reports a mismatch when the invoice differs from the preview by a cent', async () => {
    await append([
      requested('sub_off', { credit: -667, charge: 2000 }),
      invoice('invoice.paid', 'sub_off', stripeTestKit.BASIL_API, [-666, 2000]),
    ]);
    expect(await outcome('sub_off')).toMatchObject({ credit: -666, previewMatched: false });
  });

  it('leaves previewMatched empty without a preview, and fills it when the request is recorded after the invoice', async () => {
    await append([invoice('invoice.paid', 'sub_late', stripeTestKit.BASIL_API)]);
    expect(await outcome('sub_late')).toMatchObject({ previewMatched: null, memberId: null });
    await append([requested('sub_late', { credit: -667, charge: 2000 })]);
    expect(await outcome('sub_late')).toMatchObject({ previewMatched: true, memberId: 'm_sub_late' });
  });

  it('names the member of an invoice from a subscription event earlier in the same batch, and keeps the first link of a key', async () => {
    const subscription = (member: string) =>
      stripe(
        'customer.subscription.updated',
        stripeTestKit.buildSubscription(
          { id: 'sub_linked', customer: 'cus_linked', metadata: { gatehouse_member_id: member } },
          stripeTestKit.BASIL_API,
        ),
        stripeTestKit.BASIL_API,
      );
    // One batch (maxBatch 3): the link is learned and used before it is written.
    await append([
      subscription('m_first'),
      subscription('m_second'),
      invoice('invoice.paid', 'sub_linked', stripeTestKit.BASIL_API),
    ]);
    expect(await outcome('sub_linked')).toMatchObject({ memberId: 'm_first', previewMatched: null });
    const links = await ds.query<{ stripe_key: string; member_id: string }[]>(
      `SELECT stripe_key, member_id FROM tier_links WHERE community_id = $1 AND stripe_key IN ('sub_linked', 'cus_linked')
        ORDER BY stripe_key`,
      [community],
    );
    expect(links).toEqual([
      { stripe_key: 'cus_linked', member_id: 'm_first' },
      { stripe_key: 'sub_linked', member_id: 'm_first' },
    ]);
  });

  it('ignores invoices without proration lines', async () => {
    await append([
      stripe(
        'invoice.paid',
        stripeTestKit.buildInvoice({ subscription: 'sub_plain' }, stripeTestKit.BASIL_API),
        stripeTestKit.BASIL_API,
      ),
    ]);
    expect(await outcome('sub_plain')).toBeUndefined();
  });
});
