import jwt from 'jsonwebtoken';
import { stripeTestKit as kit } from '@gatehouse/stripe';
import { eventually } from '@test/support';
import { startGatehouseUnderTest, type GatehouseUnderTest } from './support/gatehouse-server';
import { graphqlAs, stripeSender } from './support/e2e-calls';

// "May this member see this thing, and why?" through the started server: signed webhooks in,
// GraphQL out.

const secret = 'access-e2e-secret-'.padEnd(40, 'x');
const whsec = 'whsec_access_e2e';
const account = 'acct_accesse2e';
const admin = jwt.sign({ roles: ['platform-admin'] }, secret, { algorithm: 'HS256', subject: 'root' });
const DAY = 86_400;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Loose = Record<string, any>;

describe('access decisions end to end', () => {
  let gh: GatehouseUnderTest;
  let c: string;
  let group: string;
  const now = Math.floor(Date.now() / 1000);

  const gql = graphqlAs(() => gh.server.url, admin);

  const send = stripeSender(() => gh.server.url, whsec);

  const canAccess = (member: string, resource: Loose, extra: Loose = {}) =>
    gql(
      `query($c: ID!, $m: ID!, $r: ResourceInput!, $at: DateTime, $k: DateTime) {
        canAccess(communityId: $c, memberId: $m, resource: $r, at: $at, asKnownAt: $k) {
          allowed reason validUntil grants { source validFrom validUntil causedBy { id type } }
        }
      }`,
      { c, m: member, r: resource, ...extra },
    ).then((d) => d.canAccess);

  const subscription = (member: string, extra: Loose = {}) => ({
    id: `sub_${member}`,
    customer: `cus_${member}`,
    priceId: 'price_accessGold',
    productId: 'prod_accessGold',
    status: 'active' as const,
    periodStart: now - DAY,
    periodEnd: now + 29 * DAY,
    metadata: { gatehouse_member_id: member },
    ...extra,
  });

  beforeAll(async () => {
    gh = await startGatehouseUnderTest(
      { GATEHOUSE_JWT_SECRET: secret, STRIPE_WEBHOOK_SECRET: whsec },
      'gh_access',
    );
    c = (
      await gql(
        `mutation { createCommunity(input: { name: "Access", region: EU, stripeAccountId: "${account}", pastDueGraceDays: 3 }) { id } }`,
      )
    ).createCommunity.id;
    group = (await gql(`mutation { createGroup(input: { communityId: "${c}", name: "Workshop" }) { id } }`))
      .createGroup.id;
    const tier = (
      await gql(
        `mutation { createTier(input: { communityId: "${c}", name: "Gold", rank: 3, groupIds: ["${group}"], stripeProductId: "prod_accessGold" }) { id } }`,
      )
    ).createTier.id;
    await gql(
      `mutation { createPrice(input: { communityId: "${c}", product: { kind: TIER, id: "${tier}" }, amount: 2500, currency: "eur", frequency: MONTHLY, stripePriceId: "price_accessGold" }) { id } }`,
    );
  }, 120_000);

  afterAll(() => gh?.close());

  it('grants the community and the tier’s groups for the paid period, naming the Stripe event behind it', async () => {
    const created = kit.customerSubscriptionCreated(subscription('ann'), {
      account,
      created: now,
      apiVersion: '2025-03-31.basil',
    });
    await send(created);
    const decision = await eventually(async () => {
      const d = await canAccess('ann', { kind: 'COMMUNITY' });
      return d.allowed ? d : undefined;
    });
    expect(decision.reason).toMatch(/subscription/i);
    // The paid period ends at periodEnd; access runs a small renewal allowance past it.
    const until = Date.parse(decision.validUntil);
    expect(until).toBeGreaterThanOrEqual((now + 29 * DAY) * 1000);
    expect(until).toBeLessThanOrEqual((now + 29 * DAY) * 1000 + 6 * 3600_000);
    expect(decision.grants[0]).toMatchObject({
      source: 'SUBSCRIPTION',
      causedBy: { id: created.id, type: 'customer.subscription.created' },
    });
    expect((await canAccess('ann', { kind: 'GROUP', id: group })).allowed).toBe(true);

    const m = (
      await gql(
        `query { membership(communityId: "${c}", memberId: "ann") { status tier { name } stripeSubscriptionId cancelAtPeriodEnd } }`,
      )
    ).membership;
    expect(m).toEqual({
      status: 'ACTIVE',
      tier: { name: 'Gold' },
      stripeSubscriptionId: 'sub_ann',
      cancelAtPeriodEnd: false,
    });
  }, 60_000);

  it('ignores a stale snapshot delivered late', async () => {
    await send(
      kit.customerSubscriptionUpdated(subscription('ann', { status: 'past_due' }), {
        account,
        created: now - 3600,
      }),
    );
    await send(
      kit.customerSubscriptionUpdated(subscription('ann', { cancelAtPeriodEnd: true }), {
        account,
        created: now + 1,
      }),
    );
    await eventually(async () => {
      const m = (
        await gql(`query { membership(communityId: "${c}", memberId: "ann") { status cancelAtPeriodEnd } }`)
      ).membership;
      return m.cancelAtPeriodEnd ? m : undefined;
    });
    const m = (await gql(`query { membership(communityId: "${c}", memberId: "ann") { status } }`)).membership;
    expect(m.status).toBe('ACTIVE');
  }, 60_000);

  it('keeps a past-due member in for the grace period only: a missed webhook fails closed', async () => {
    await send(
      kit.customerSubscriptionCreated(subscription('bea', { status: 'past_due' }), { account, created: now }),
    );
    const inGrace = await eventually(async () => {
      const d = await canAccess('bea', { kind: 'COMMUNITY' });
      return d.allowed ? d : undefined;
    });
    expect(Date.parse(inGrace.validUntil)).toBeLessThanOrEqual((now + 3 * DAY) * 1000 + 1000);
    const later = new Date((now + 4 * DAY) * 1000).toISOString();
    expect((await canAccess('bea', { kind: 'COMMUNITY' }, { at: later })).allowed).toBe(false);
  }, 60_000);

  it('ends access at the cancellation, keeps what was believed before it, and records the history', async () => {
    await send(kit.customerSubscriptionCreated(subscription('cal'), { account, created: now }));
    await eventually(async () =>
      (await canAccess('cal', { kind: 'COMMUNITY' })).allowed ? true : undefined,
    );
    await new Promise((r) => setTimeout(r, 1100));
    const beforeCancel = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 1100));
    await send(
      kit.customerSubscriptionDeleted(
        subscription('cal', { status: 'canceled', endedAt: now - 60, canceledAt: now - 60 }),
        { account, created: now + 2 },
      ),
    );
    await eventually(async () =>
      (await canAccess('cal', { kind: 'COMMUNITY' })).allowed ? undefined : true,
    );

    const believed = await canAccess('cal', { kind: 'COMMUNITY' }, { k: beforeCancel });
    expect(believed.allowed).toBe(true);

    const history = (
      await gql(
        `query { accessHistory(communityId: "${c}", memberId: "cal", first: 20) { edges { node { change source resource { kind } effectiveAt recordedAt causedBy { type } } } } }`,
      )
    ).accessHistory.edges.map((e: Loose) => e.node);
    const community = history.filter((h: Loose) => h.resource.kind === 'COMMUNITY');
    expect(community[0]).toMatchObject({
      change: 'GRANTED',
      source: 'SUBSCRIPTION',
      causedBy: { type: 'customer.subscription.created' },
    });
    expect(community[community.length - 1]).toMatchObject({
      causedBy: { type: 'customer.subscription.deleted' },
    });
    expect(['SHORTENED', 'REVOKED']).toContain(community[community.length - 1].change);
  }, 60_000);

  it('grants and revokes complimentary access through the admin mutations', async () => {
    const until = new Date(Date.now() + 10 * DAY * 1000).toISOString();
    const granted = (
      await gql(
        `mutation($i: GrantAccessInput!) { grantComplimentaryAccess(input: $i) { allowed validUntil grants { source } } }`,
        {
          i: {
            communityId: c,
            memberId: 'dot',
            resource: { kind: 'GROUP', id: group },
            until,
            reason: 'speaker',
          },
        },
      )
    ).grantComplimentaryAccess;
    expect(granted).toMatchObject({
      allowed: true,
      validUntil: until,
      grants: [{ source: 'COMPLIMENTARY' }],
    });
    const revoked = (
      await gql(
        `mutation { revokeComplimentaryAccess(communityId: "${c}", memberId: "dot", resource: { kind: GROUP, id: "${group}" }, reason: "ended") { allowed } }`,
      )
    ).revokeComplimentaryAccess;
    expect(revoked.allowed).toBe(false);
  }, 60_000);

  it('shows complimentary access that ran out, with no event after it, at its end in the history', async () => {
    const until = new Date(Date.now() + 2000).toISOString();
    await gql(`mutation($i: GrantAccessInput!) { grantComplimentaryAccess(input: $i) { allowed } }`, {
      i: { communityId: c, memberId: 'eve', resource: { kind: 'GROUP', id: group }, until, reason: 'guest' },
    });
    const history = () =>
      gql(
        `query { accessHistory(communityId: "${c}", memberId: "eve") { edges { node { id change source effectiveAt recordedAt actor causedBy { type } } } } }`,
      ).then((d) => d.accessHistory.edges.map((e: Loose) => e.node));
    // (Before the end, no lapse: the integration test asks on either side of it with its own clock.)
    await new Promise((r) => setTimeout(r, Date.parse(until) - Date.now() + 100));
    const [granted, ended, ...rest] = await history();
    expect(granted).toMatchObject({ change: 'GRANTED', source: 'COMPLIMENTARY', actor: 'root' });
    expect(ended).toMatchObject({
      change: 'REVOKED',
      source: 'COMPLIMENTARY',
      effectiveAt: until,
      recordedAt: until,
      actor: null,
      causedBy: { type: 'ComplimentaryAccessGranted' },
    });
    expect(rest).toEqual([]);
    expect(ended.id).not.toBe(granted.id);
  }, 60_000);

  it('lists who may see the community, and lets a member ask only about themself', async () => {
    const list = (
      await gql(
        `query { accessList(communityId: "${c}", resource: { kind: COMMUNITY }) { totalCount edges { node { memberId source } } } }`,
      )
    ).accessList;
    const ids = list.edges.map((e: Loose) => e.node.memberId);
    expect(ids).toEqual(expect.arrayContaining(['ann', 'bea']));
    expect(ids).not.toContain('cal');
    expect(list.totalCount).toBe(ids.length);

    const ann = jwt.sign({ roles: [`member:${c}`] }, secret, { algorithm: 'HS256', subject: 'ann' });
    const own = await gql(
      `query { canAccess(communityId: "${c}", memberId: "ann", resource: { kind: COMMUNITY }) { allowed } }`,
      {},
      ann,
    );
    expect(own.canAccess.allowed).toBe(true);
    await expect(
      gql(
        `query { canAccess(communityId: "${c}", memberId: "bea", resource: { kind: COMMUNITY }) { allowed } }`,
        {},
        ann,
      ),
    ).rejects.toThrow(/FORBIDDEN/);
  }, 60_000);
});
