import { randomBytes } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { stripeTestKit as kit } from '@gatehouse/stripe';
import { describeKafka, eventually } from '@test/support';
import { startGatehouseUnderTest, type GatehouseUnderTest } from './support/gatehouse-server';
import { graphqlAs, stripeSender } from './support/e2e-calls';
import { startServerProcess, type ServerProcess } from './support/server-process';

// Two servers on one database, as behind a load balancer or during a rolling deploy: whichever one
// Stripe and the frontends reach, they answer alike; one projects, and when it stops the other does.

const secret = 'instances-e2e-secret-'.padEnd(40, 'x');
const whsec = 'whsec_instances_e2e';
const admin = jwt.sign({ roles: ['platform-admin'] }, secret, { algorithm: 'HS256', subject: 'root' });
const DAY = 86_400;

type Gql = ReturnType<typeof graphqlAs>;

/** 1 on the server that projects, 0 on the others. */
async function leading(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(/^gatehouse_projector_leading\{region="us"\} (\d)$/m.exec(text)?.[1]);
}

function allowedOn(gql: Gql, c: string, member: string): Promise<boolean> {
  return gql(
    `query($c: ID!, $m: ID!) { canAccess(communityId: $c, memberId: $m, resource: { kind: COMMUNITY }) { allowed } }`,
    { c, m: member },
  ).then((d) => d.canAccess.allowed as boolean);
}

/** A community on `account` with a Gold tier and its monthly price: each mutation on the server given. */
async function goldCommunity(
  on: { community: Gql; tier: Gql; price: Gql },
  account: string,
  tag: string,
): Promise<string> {
  const c = (
    await on.community(
      `mutation { createCommunity(input: { name: "Two", region: EU, stripeAccountId: "${account}" }) { id } }`,
    )
  ).createCommunity.id as string;
  const tier = (
    await on.tier(
      `mutation { createTier(input: { communityId: "${c}", name: "Gold", rank: 1, stripeProductId: "prod_gold${tag}" }) { id } }`,
    )
  ).createTier.id;
  await on.price(
    `mutation { createPrice(input: { communityId: "${c}", product: { kind: TIER, id: "${tier}" }, amount: 900, currency: "eur", frequency: MONTHLY, stripePriceId: "price_gold${tag}" }) { id } }`,
  );
  return c;
}

/** A Stripe subscription to that Gold price for a member, on `account`. */
function subscriptionOf(tag: string, account: string, now: number) {
  return (member: string) =>
    kit.customerSubscriptionCreated(
      {
        id: `sub_${member}${tag}`,
        customer: `cus_${member}${tag}`,
        priceId: `price_gold${tag}`,
        productId: `prod_gold${tag}`,
        status: 'active',
        periodStart: now - DAY,
        periodEnd: now + 29 * DAY,
        metadata: { gatehouse_member_id: member },
      },
      { account, created: now },
    );
}

function scenario(name: string, extraEnv: () => Record<string, string>) {
  describe(name, () => {
    let first: GatehouseUnderTest;
    let second: ServerProcess;
    let c: string;
    const tag = randomBytes(4).toString('hex');
    const account = `acct_inst${tag}`;
    const now = Math.floor(Date.now() / 1000);
    const onFirst = graphqlAs(() => first.server.url, admin);
    const onSecond = graphqlAs(() => second.url, admin);
    const sendToFirst = stripeSender(() => first.server.url, whsec);
    const sendToSecond = stripeSender(() => second.url, whsec);

    const allowed = (gql: Gql, member: string) => allowedOn(gql, c, member);
    const grantedOn = (gql: Gql, member: string) =>
      eventually(async () => ((await allowed(gql, member)) ? true : undefined), 15_000);
    const subscribed = subscriptionOf(tag, account, now);

    beforeAll(async () => {
      first = await startGatehouseUnderTest(
        { GATEHOUSE_JWT_SECRET: secret, STRIPE_WEBHOOK_SECRET: whsec, ...extraEnv() },
        'gh_instances',
      );
      // Started second: the first holds the projector lease.
      const started = await startServerProcess({ ...first.env });
      if (!started.ok) throw new Error(`the second server did not start:\n${started.output}`);
      second = started.server;
      c = await goldCommunity({ community: onSecond, tier: onFirst, price: onSecond }, account, tag);
    }, 120_000);

    afterAll(async () => {
      await second?.stop('SIGINT');
      await first?.close();
    }, 60_000);

    it('answers canAccess alike on both, whichever one received the webhook', async () => {
      await sendToFirst(subscribed('ann'));
      await sendToSecond(subscribed('bob'));
      for (const member of ['ann', 'bob'])
        for (const gql of [onFirst, onSecond]) await grantedOn(gql, member);
    }, 60_000);

    it('answers a mutation on either from the projection of its own change', async () => {
      for (const [gql, label] of [
        [onSecond, 'second'],
        [onFirst, 'first'],
      ] as const) {
        const made = await gql(
          `mutation { createGroup(input: { communityId: "${c}", name: "Made on the ${label}" }) { id name } }`,
        );
        expect(made.createGroup.name).toBe(`Made on the ${label}`);
      }
    }, 60_000);

    it('is ready on both, says which one projects, and rebuilds only there', async () => {
      for (const url of [first.server.url, second.url]) {
        const res = await fetch(`${url}/readyz`);
        expect(res.status).toBe(200);
      }
      expect(await leading(first.server.url)).toBe(1);
      expect(await leading(second.url)).toBe(0);
      const rebuild = 'mutation { rebuildProjections { projection events } }';
      await expect(onSecond(rebuild)).rejects.toThrow(/another Gatehouse server projects.*"code":"CONFLICT"/);
      const reports = (await onFirst(rebuild)).rebuildProjections as { projection: string; events: number }[];
      expect(reports.length).toBeGreaterThan(0);
      for (const gql of [onFirst, onSecond]) expect(await allowed(gql, 'ann')).toBe(true);
    }, 120_000);

    it('projects on the second once the first has stopped', async () => {
      await first.server.stop('SIGTERM');
      await sendToSecond(subscribed('cy'));
      await grantedOn(onSecond, 'cy');
      const made = await onSecond(
        `mutation { createGroup(input: { communityId: "${c}", name: "After the first" }) { name } }`,
      );
      expect(made.createGroup.name).toBe('After the first');
      expect((await fetch(`${second.url}/readyz`)).status).toBe(200);
      expect(await leading(second.url)).toBe(1);
      const rebuilt = await onSecond('mutation { rebuildProjections { projection } }');
      expect(rebuilt.rebuildProjections.length).toBeGreaterThan(0);
    }, 60_000);
  });
}

scenario('two servers on one PostgreSQL ledger', () => ({}));

describe('a server started with GATEHOUSE_PROJECTOR=off', () => {
  let keptOff: GatehouseUnderTest;
  let projecting: ServerProcess | undefined;
  let c: string;
  const tag = randomBytes(4).toString('hex');
  const account = `acct_off${tag}`;
  const now = Math.floor(Date.now() / 1000);
  const onKeptOff = graphqlAs(() => keptOff.server.url, admin);
  const send = stripeSender(() => keptOff.server.url, whsec);
  const allowed = (member: string) => allowedOn(onKeptOff, c, member);
  const subscribed = subscriptionOf(tag, account, now);
  const startProjecting = async () => {
    const started = await startServerProcess({ ...keptOff.env, GATEHOUSE_PROJECTOR: undefined });
    if (!started.ok) throw new Error(`the projecting server did not start:\n${started.output}`);
    return started.server;
  };

  beforeAll(async () => {
    keptOff = await startGatehouseUnderTest(
      {
        GATEHOUSE_JWT_SECRET: secret,
        STRIPE_WEBHOOK_SECRET: whsec,
        GATEHOUSE_PROJECTOR: 'off',
        LOG_LEVEL: 'info',
      },
      'gh_projector_off',
    );
  }, 120_000);

  afterAll(async () => {
    await projecting?.stop('SIGINT');
    await keptOff?.close();
  }, 60_000);

  it('never projects, alone or after the projecting server stops, and stays ready to take webhooks', async () => {
    // Alone: it warns after finding nobody projecting three times, 2 s apart, well past the 2 s after
    // which a following server asks for the lease again.
    await eventually(
      async () =>
        keptOff.server.output().includes('no server projects these read models') ? true : undefined,
      15_000,
    );
    expect(await leading(keptOff.server.url)).toBe(0);
    expect((await fetch(`${keptOff.server.url}/readyz`)).status).toBe(200);
    expect(keptOff.server.output()).toContain('this server does not project');

    projecting = await startProjecting();
    expect(await leading(projecting.url)).toBe(1);
    // Its mutations wait for their own writes, projected by the other server.
    c = await goldCommunity({ community: onKeptOff, tier: onKeptOff, price: onKeptOff }, account, tag);
    await send(subscribed('ann'));
    await eventually(async () => ((await allowed('ann')) ? true : undefined), 15_000);

    expect(await projecting.stop('SIGTERM')).toBe(0);
    projecting = undefined;
    await new Promise((r) => setTimeout(r, 3_000));
    expect(await leading(keptOff.server.url)).toBe(0);
    expect((await fetch(`${keptOff.server.url}/readyz`)).status).toBe(200);
    // Appended durably (200) with nobody projecting: kept in the ledger, projected once a server does.
    const before = await keptOff.ledgerCount();
    await send(subscribed('bob'));
    expect(await keptOff.ledgerCount()).toBe(before + 1);
    expect(await allowed('bob')).toBe(false);

    projecting = await startProjecting();
    await eventually(async () => ((await allowed('bob')) ? true : undefined), 15_000);
    expect(await leading(keptOff.server.url)).toBe(0);
  }, 120_000);
});

describeKafka('two servers on one Kafka ledger', (brokers) => {
  scenario('sharing a topic', () => ({
    KAFKA_BROKERS: brokers.join(','),
    GATEHOUSE_KAFKA_TOPIC: `gatehouse.instances.${randomBytes(4).toString('hex')}`,
  }));
});
