import Stripe from 'stripe';
import jwt from 'jsonwebtoken';
import { Client } from 'pg';
import { startFakeStripe, stripeConfigForApiBase, stripeTestKit, type FakeStripe } from '@gatehouse/stripe';
import { createTestDatabase, eventually, type TestDatabase } from '@test/support';
import { startServerProcess, type ServerProcess } from './support/server-process';

// Members moving between tiers through the started server, the fake Stripe and signed webhooks built
// with the test kit from what the fake recorded.

const secret = 'tiers-e2e-secret-'.padEnd(40, 'x');
const whsec = 'whsec_tiers_e2e';
const account = 'acct_tierse2e';
const adminToken = jwt.sign({ roles: ['platform-admin'] }, secret, { algorithm: 'HS256', subject: 'root' });
const memberToken = (communityId: string, memberId: string) =>
  jwt.sign({ roles: [`member:${communityId}`] }, secret, { algorithm: 'HS256', subject: memberId });

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Loose = Record<string, any>;

describe('tiers end to end', () => {
  let db: TestDatabase;
  let fake: FakeStripe;
  let server: ServerProcess;
  let stripe: Stripe;
  let pg: Client;
  let communityId: string;
  let groupId: string;
  const tiers: Record<string, string> = {};
  const prices: Record<string, { id: string; stripePriceId: string }> = {};

  async function gql(
    query: string,
    variables: Record<string, unknown> = {},
    token = adminToken,
  ): Promise<Loose> {
    const res = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query, variables }),
    });
    const r = (await res.json()) as { data?: Loose; errors?: unknown[] };
    if (r.errors) throw new Error(JSON.stringify(r.errors));
    return r.data!;
  }
  // Each event a second after the previous one: Stripe's `created` orders the snapshots of a subscription.
  let lastCreated = 0;
  async function webhook(type: string, object: Loose): Promise<void> {
    lastCreated = Math.max(Math.floor(Date.now() / 1000), lastCreated + 1);
    const event = stripeTestKit.buildEvent(type, object, {
      account,
      apiVersion: stripeTestKit.BASIL_API,
      created: lastCreated,
    });
    const signed = stripeTestKit.signPayload(event, whsec, Math.floor(Date.now() / 1000));
    const res = await fetch(`${server.url}/webhooks/stripe`, {
      method: 'POST',
      headers: { 'stripe-signature': signed.header, 'content-type': 'application/json' },
      body: signed.rawBody,
    });
    expect(res.status).toBe(200);
  }
  const MEMBERSHIP = `query($c: ID!, $m: ID!) { membership(communityId: $c, memberId: $m) {
    status tier { name } price { id } currentPeriodEnd scheduledChange { toPrice { id } effectiveAt } } }`;
  const membership = async (memberId: string) =>
    (await gql(MEMBERSHIP, { c: communityId, m: memberId })).membership as Loose;
  const subscriptionUpdates = (subId: string) =>
    fake.requests.filter(
      (r) => r.method === 'POST' && r.path === `/v1/subscriptions/${subId}` && r.status === 200,
    );

  /** A member with a live subscription in the fake, announced by a signed webhook. */
  async function subscribe(memberId: string, priceKey: string): Promise<Loose> {
    const customer = await stripe.customers.create(
      { email: `${memberId}@example.com` },
      { stripeAccount: account },
    );
    const sub = await stripe.subscriptions.create(
      {
        customer: customer.id,
        items: [{ price: prices[priceKey].stripePriceId, quantity: 1 }],
        metadata: { gatehouse_member_id: memberId },
      },
      { stripeAccount: account },
    );
    await webhook('customer.subscription.created', fake.get(sub.id, account)!);
    await eventually(async () => ((await membership(memberId)).status === 'ACTIVE' ? true : undefined));
    return fake.get(sub.id, account)!;
  }

  beforeAll(async () => {
    db = await createTestDatabase('tiers_e2e');
    pg = new Client({ connectionString: db.url });
    await pg.connect();
    fake = await startFakeStripe();
    stripe = new Stripe('sk_test_tiers_e2e', stripeConfigForApiBase(fake.url));
    const started = await startServerProcess({
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      DATABASE_URL: db.url,
      GATEHOUSE_JWT_SECRET: secret,
      STRIPE_SECRET_KEY: 'sk_test_tiers_e2e',
      STRIPE_API_BASE: fake.url,
      STRIPE_WEBHOOK_SECRET: whsec,
      LOG_LEVEL: 'warn',
      PORT: '0',
      HOST: '127.0.0.1',
    });
    if (!started.ok) throw new Error(`server did not start:\n${started.output}`);
    server = started.server;

    communityId = (
      await gql(
        `mutation { createCommunity(input: { name: "Heartbeat", region: EU, stripeAccountId: "${account}" }) { id } }`,
      )
    ).createCommunity.id;
    groupId = (
      await gql(`mutation($c: ID!) { createGroup(input: { communityId: $c, name: "Studio" }) { id } }`, {
        c: communityId,
      })
    ).createGroup.id;
    for (const [name, rank, groupIds] of [
      ['Bronze', 1, []],
      ['Gold', 2, [groupId]],
    ] as const) {
      const d = await gql(`mutation($i: CreateTierInput!) { createTier(input: $i) { id } }`, {
        i: { communityId, name, rank, groupIds },
      });
      tiers[name] = d.createTier.id;
    }
    for (const [key, kind, id, amount] of [
      ['bronze', 'TIER', tiers.Bronze, 1000],
      ['gold', 'TIER', tiers.Gold, 3000],
      ['studio', 'GROUP', groupId, 1500],
    ] as const) {
      const d = await gql(`mutation($i: CreatePriceInput!) { createPrice(input: $i) { id stripePriceId } }`, {
        i: { communityId, product: { kind, id }, amount, currency: 'eur', frequency: 'MONTHLY' },
      });
      prices[key] = d.createPrice;
    }
  }, 180_000);

  afterAll(async () => {
    await server?.stop('SIGINT');
    await fake?.close();
    await pg?.end();
    await db?.drop();
  });

  it('upgrades at once with the previewed proration date, and the invoice Stripe sends back matches the preview to the cent', async () => {
    const sub = await subscribe('m_up', 'bronze');
    const item = sub.items.data[0];
    const token = memberToken(communityId, 'm_up');
    const { previewTierChange: preview } = await gql(
      `query($c: ID!, $m: ID!, $p: ID!) { previewTierChange(communityId: $c, memberId: $m, toPriceId: $p) {
         prorationDate credit charge net dueNow currency timing lines { amount } } }`,
      { c: communityId, m: 'm_up', p: prices.gold.id },
      token,
    );
    expect(preview.timing).toBe('IMMEDIATE');
    await gql(
      `mutation($i: ChangeTierInput!) { changeTier(input: $i) { status } }`,
      {
        i: { communityId, memberId: 'm_up', toPriceId: prices.gold.id, prorationDate: preview.prorationDate },
      },
      token,
    );
    const req = subscriptionUpdates(sub.id).at(-1)!;
    const prorationDate = Math.floor(Date.parse(preview.prorationDate) / 1000);
    expect(req.idempotencyKey).toMatch(/^gatehouse:tier-change:/);
    expect(req.params).toMatchObject({
      items: [{ id: item.id, price: prices.gold.stripePriceId, quantity: '1' }],
      proration_behavior: 'always_invoice',
      proration_date: String(prorationDate),
    });

    // Stripe's lines for that request: per second, each rounded on its own.
    const [start, end] = [item.current_period_start as number, item.current_period_end as number];
    const share = (amount: number) => Math.round((amount * (end - prorationDate)) / (end - start));
    const lines = [
      {
        amount: -share(1000),
        proration: true,
        priceId: prices.bronze.stripePriceId,
        periodStart: prorationDate,
        periodEnd: end,
      },
      {
        amount: share(3000),
        proration: true,
        priceId: prices.gold.stripePriceId,
        periodStart: prorationDate,
        periodEnd: end,
      },
    ];
    const invoice = stripeTestKit.buildInvoice(
      {
        subscription: sub.id,
        customer: sub.customer,
        billingReason: 'subscription_update',
        currency: 'eur',
        lines,
      },
      stripeTestKit.BASIL_API,
    );
    await webhook('invoice.paid', invoice);
    await webhook('customer.subscription.updated', fake.get(sub.id, account)!);

    const outcome = await eventually(async () => {
      const d = await gql(
        `query($c: ID!, $m: ID) { prorationOutcomes(communityId: $c, memberId: $m) {
           stripeInvoiceId credit charge net currency previewMatched fromPrice { id } toPrice { id } causedBy { type } } }`,
        { c: communityId, m: 'm_up' },
      );
      return d.prorationOutcomes[0] as Loose | undefined;
    });
    expect(outcome).toEqual({
      stripeInvoiceId: invoice.id,
      credit: preview.credit,
      charge: preview.charge,
      net: preview.net,
      currency: 'eur',
      previewMatched: true,
      fromPrice: { id: prices.bronze.id },
      toPrice: { id: prices.gold.id },
      causedBy: { type: 'invoice.paid' },
    });
    expect([outcome.credit, outcome.charge]).toEqual([lines[0].amount, lines[1].amount]);
    await eventually(async () => ((await membership('m_up')).tier?.name === 'Gold' ? true : undefined));
  }, 60_000);

  it('downgrades at the period end: a schedule alone changes nothing, the boundary update changes the tier', async () => {
    const sub = await subscribe('m_down', 'gold');
    const end = sub.items.data[0].current_period_end as number;
    const token = memberToken(communityId, 'm_down');
    await gql(
      `mutation($i: ChangeTierInput!) { changeTier(input: $i) { tier { name } } }`,
      { i: { communityId, memberId: 'm_down', toPriceId: prices.bronze.id } },
      token,
    );

    const created = fake.requests.find(
      (r) => r.path === '/v1/subscription_schedules' && (r.params as Loose).from_subscription === sub.id,
    )!;
    expect(created.status).toBe(200);
    const scheduleId = fake.get(sub.id, account)!.schedule as string;
    const phases = (
      fake.requests.filter((r) => r.path === `/v1/subscription_schedules/${scheduleId}`).at(-1)!
        .params as Loose
    ).phases;
    expect(phases[0]).toMatchObject({ items: [{ price: prices.gold.stripePriceId }], end_date: String(end) });
    expect(phases[1]).toMatchObject({ items: [{ price: prices.bronze.stripePriceId }] });
    expect(subscriptionUpdates(sub.id)).toHaveLength(0);

    await webhook('subscription_schedule.updated', fake.get(scheduleId, account)!);
    const scheduled = await eventually(async () => {
      const m = await membership('m_down');
      return m.scheduledChange ? m : undefined;
    });
    expect(scheduled.tier.name).toBe('Gold');
    expect(scheduled.scheduledChange).toEqual({
      toPrice: { id: prices.bronze.id },
      effectiveAt: new Date(end * 1000).toISOString(),
    });

    // Stripe moves to the next phase at the boundary.
    const next = stripeTestKit.buildSubscription(
      {
        id: sub.id,
        customer: sub.customer,
        itemId: sub.items.data[0].id,
        priceId: prices.bronze.stripePriceId,
        productId: fake.get(prices.bronze.stripePriceId, account)!.product as string,
        unitAmount: 1000,
        currency: 'eur',
        periodStart: end,
        periodEnd: end + 30 * 86_400,
        schedule: scheduleId,
        metadata: { gatehouse_member_id: 'm_down' },
      },
      stripeTestKit.BASIL_API,
    );
    await webhook('customer.subscription.updated', next);
    await eventually(async () => ((await membership('m_down')).tier?.name === 'Bronze' ? true : undefined));
  }, 60_000);

  /** Every knowledge state of the group's grants covers every instant from the first grant to `until`. */
  async function assertContinuousGroupAccess(memberId: string, until: number): Promise<void> {
    const { rows } = await pg.query<{
      valid_from: Date;
      valid_until: Date | null;
      suspended: boolean;
      recorded_at: Date;
      superseded_at: Date | null;
    }>(
      `SELECT valid_from, valid_until, suspended, recorded_at, superseded_at FROM access_grants
        WHERE community_id = $1 AND member_id = $2 AND resource_kind = 'GROUP' AND resource_id = $3`,
      [communityId, memberId, groupId],
    );
    expect(rows.length).toBeGreaterThan(0);
    const t = (d: Date | null) => (d === null ? Infinity : d.getTime());
    const start = Math.min(...rows.map((r) => t(r.valid_from)));
    const knownAt = [...new Set(rows.map((r) => t(r.recorded_at)))].sort((a, b) => a - b);
    const edges = [
      ...new Set(
        rows.flatMap((r) => [t(r.valid_from), t(r.valid_until)]).filter((x) => x >= start && x <= until),
      ),
    ].sort((a, b) => a - b);
    const instants = [...edges, ...edges.slice(1).map((x, i) => (x + edges[i]) / 2), until];
    for (const k of knownAt) {
      const believed = rows.filter((r) => t(r.recorded_at) <= k && t(r.superseded_at) > k && !r.suspended);
      // Only the versions written since the member first had the group are checked.
      if (!believed.length) continue;
      const from = Math.min(...believed.map((r) => t(r.valid_from)));
      for (const x of instants.filter((i) => i >= from)) {
        expect([k, x, believed.some((r) => t(r.valid_from) <= x && t(r.valid_until) > x)]).toEqual([
          k,
          x,
          true,
        ]);
      }
    }
  }

  it('moves the subscribers of a paid group to a tier that grants it, without a gap in group access', async () => {
    const sub = await subscribe('m_group', 'studio');
    const { migrateGroupToTiers: report } = await gql(
      `mutation($i: MigrateGroupToTiersInput!) { migrateGroupToTiers(input: $i) { linked skipped problems } }`,
      {
        i: {
          communityId,
          groupId,
          timing: 'IMMEDIATE',
          priceMap: [{ fromPriceId: prices.studio.id, toPriceId: prices.gold.id }],
        },
      },
    );
    expect(report).toEqual({ linked: 1, skipped: 0, problems: [] });
    expect(subscriptionUpdates(sub.id).at(-1)!.params).toMatchObject({
      items: [{ id: sub.items.data[0].id, price: prices.gold.stripePriceId }],
      proration_behavior: 'none',
    });
    await webhook('customer.subscription.updated', fake.get(sub.id, account)!);
    await eventually(async () => ((await membership('m_group')).tier?.name === 'Gold' ? true : undefined));
    await assertContinuousGroupAccess('m_group', (sub.items.data[0].current_period_end as number) * 1000);

    // A second run finds nobody left to move.
    const again = await gql(
      `mutation($i: MigrateGroupToTiersInput!) { migrateGroupToTiers(input: $i) { linked skipped } }`,
      {
        i: {
          communityId,
          groupId,
          timing: 'IMMEDIATE',
          priceMap: [{ fromPriceId: prices.studio.id, toPriceId: prices.gold.id }],
        },
      },
    );
    expect(again.migrateGroupToTiers).toEqual({ linked: 0, skipped: 0 });
  }, 60_000);

  it('a price change grandfathers or migrates existing subscribers, who keep their tier and group throughout', async () => {
    const kept = await subscribe('m_kept', 'gold');
    const { changePrice: grandfathered } = await gql(
      `mutation($i: ChangePriceInput!) { changePrice(input: $i) { id stripePriceId amount active } }`,
      { i: { communityId, priceId: prices.gold.id, amount: 3500, existingSubscribers: 'GRANDFATHER' } },
    );
    expect(grandfathered).toMatchObject({ amount: 3500, active: true });
    expect(subscriptionUpdates(kept.id)).toHaveLength(0);
    expect((await membership('m_kept')).tier.name).toBe('Gold');

    const moved = await subscribe('m_moved', 'bronze');
    const { changePrice: next } = await gql(
      `mutation($i: ChangePriceInput!) { changePrice(input: $i) { id stripePriceId amount } }`,
      {
        i: {
          communityId,
          priceId: prices.bronze.id,
          amount: 1200,
          existingSubscribers: 'MIGRATE_AT_RENEWAL',
        },
      },
    );
    expect(subscriptionUpdates(moved.id).at(-1)!.params).toMatchObject({
      items: [{ id: moved.items.data[0].id, price: next.stripePriceId }],
      proration_behavior: 'none',
    });
    await webhook('customer.subscription.updated', fake.get(moved.id, account)!);
    await eventually(async () => ((await membership('m_moved')).price?.id === next.id ? true : undefined));
    expect((await membership('m_moved')).tier.name).toBe('Bronze');
    await assertContinuousGroupAccess('m_kept', (kept.items.data[0].current_period_end as number) * 1000);
  }, 60_000);

  /** The price new buyers of a tier get now (an earlier test supersedes the first Gold price). */
  async function currentPrice(tier: string): Promise<{ id: string; amount: number; stripePriceId: string }> {
    const d = await gql(
      `query($c: ID!) { community(id: $c) { tiers { name prices { id amount active stripePriceId } } } }`,
      {
        c: communityId,
      },
    );
    return d.community.tiers.find((t: Loose) => t.name === tier).prices.find((p: Loose) => p.active);
  }

  it('a failed payment for an immediate upgrade leaves the member past due on the new tier, within the grace period', async () => {
    const sub = await subscribe('m_fail', 'bronze');
    const gold = await currentPrice('Gold');
    const token = memberToken(communityId, 'm_fail');
    await gql(
      `mutation($i: ChangeTierInput!) { changeTier(input: $i) { status } }`,
      { i: { communityId, memberId: 'm_fail', toPriceId: gold.id } },
      token,
    );
    const updated = fake.get(sub.id, account)!;
    await webhook(
      'invoice.payment_failed',
      stripeTestKit.buildInvoice(
        {
          subscription: sub.id,
          customer: sub.customer,
          billingReason: 'subscription_update',
          currency: 'eur',
          status: 'open',
          lines: [{ amount: 1500, priceId: gold.stripePriceId }],
        },
        stripeTestKit.BASIL_API,
      ),
    );
    await webhook('customer.subscription.updated', { ...updated, status: 'past_due' });
    const m = await eventually(async () => {
      const r = await membership('m_fail');
      return r.status === 'PAST_DUE' ? r : undefined;
    });
    expect(m.tier).toEqual({ name: 'Gold' });
    const access = (at?: string) =>
      gql(
        `query($c: ID!, $m: ID!, $at: DateTime) { canAccess(communityId: $c, memberId: $m, resource: { kind: GROUP, id: "${groupId}" }, at: $at) { allowed validUntil } }`,
        { c: communityId, m: 'm_fail', at },
      ).then((d) => d.canAccess as Loose);
    const now = await access();
    expect(now.allowed).toBe(true);
    // The community's grace period (3 days by default) and not a day more.
    expect(Date.parse(now.validUntil)).toBeLessThanOrEqual(Date.now() + 3 * 86_400_000 + 60_000);
    expect((await access(new Date(Date.now() + 4 * 86_400_000).toISOString())).allowed).toBe(false);
  }, 60_000);

  it('offers a member the higher tier with its proration preview, and the group they lack', async () => {
    await subscribe('m_upsell', 'bronze');
    const current = await currentPrice('Gold');
    const token = memberToken(communityId, 'm_upsell');
    const { upsellOffers } = await gql(
      `query($c: ID!, $m: ID!) { upsellOffers(communityId: $c, memberId: $m) {
         product { __typename ... on Tier { name } ... on Group { name } } price { id amount } trialDays
         preview { timing net toPrice { id } } } }`,
      { c: communityId, m: 'm_upsell' },
      token,
    );
    const gold = upsellOffers.find((o: Loose) => o.product.__typename === 'Tier');
    expect(gold).toMatchObject({
      product: { name: 'Gold' },
      price: { id: current.id, amount: current.amount },
    });
    expect(gold.preview).toMatchObject({ timing: 'IMMEDIATE', toPrice: { id: current.id } });
    expect(gold.preview.net).toBeGreaterThan(0);
    expect(upsellOffers.map((o: Loose) => o.product.name)).not.toContain('Bronze');
    const group = upsellOffers.find((o: Loose) => o.product.__typename === 'Group');
    expect(group).toMatchObject({
      product: { name: 'Studio' },
      price: { id: prices.studio.id },
      preview: null,
    });
  }, 60_000);
});
