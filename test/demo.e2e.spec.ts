import { startFakeStripe, type FakeStripe } from '@gatehouse/stripe';
import { createTestDatabase, type TestDatabase } from '@test/support';
import { runGatehouse, startServerProcess, type ServerProcess } from './support/server-process';

// `npx gatehouse demo` as the README tells a new user to run it, then the queries it prints.

const secret = 'demo-e2e-secret-'.padEnd(40, 'x');

describe('gatehouse demo', () => {
  let db: TestDatabase;
  let server: ServerProcess;
  const env = () => ({
    DATABASE_URL: db.url,
    GATEHOUSE_JWT_SECRET: secret,
    STRIPE_WEBHOOK_SECRET: 'whsec_demo_e2e',
    LOG_LEVEL: 'warn',
    HOST: '127.0.0.1',
  });

  beforeAll(async () => {
    db = await createTestDatabase('gh_demo');
    const started = await startServerProcess({ PATH: process.env.PATH, ...env(), PORT: '0' });
    if (!started.ok) throw new Error(`server did not start:\n${started.output}`);
    server = started.server;
  }, 120_000);
  afterAll(async () => {
    await server?.stop('SIGTERM');
    await db?.drop();
  });

  it('seeds a community, plays its month as webhooks, and prints a token and queries that answer', async () => {
    const run = await runGatehouse(['demo', '--url', server.url], env());
    expect(run.err).toContain('33/33');
    expect(run.code).toBe(0);
    const communityId = /^Community .+: (\S+)$/m.exec(run.out)?.[1];
    const adminToken = /^Community admin token.*\n\s+(\S+)$/m.exec(run.out)?.[1];
    expect(communityId).toBeDefined();
    expect(adminToken).toBeDefined();
    const queries = [...run.out.matchAll(/^ {2}(\{ .+ \})$/gm)].map((m) => m[1]);
    expect(queries.length).toBeGreaterThanOrEqual(5);
    const answers = [];
    for (const query of queries) {
      const res = await fetch(`${server.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${adminToken}` },
        body: JSON.stringify({ query }),
      });
      const body = (await res.json()) as { data?: Record<string, unknown>; errors?: unknown };
      expect(body.errors).toBeUndefined();
      answers.push(body.data!);
    }
    const [community, alice] = answers as [
      { community: { tiers: { name: string }[] } },
      { canAccess: { allowed: boolean } },
    ];
    expect(community.community.tiers.map((t) => t.name)).toEqual(['Bronze', 'Silver', 'Gold']);
    expect(alice.canAccess.allowed).toBe(true);
    // No Stripe behind this server: the demo says how to buy through Checkout too.
    expect(run.out).toContain('Stripe is not configured on the server');
    expect(run.out).toContain(`npx gatehouse stripe fake --forward-to ${server.url}/webhooks/stripe`);
  }, 120_000);

  it('says how to start a server when none answers', async () => {
    const run = await runGatehouse(['demo', '--url', 'http://127.0.0.1:1'], env());
    expect(run.code).toBe(1);
    expect(run.err).toContain('no server answers at http://127.0.0.1:1: start it with `npm start`');
  });
});

describe('gatehouse demo with the fake Stripe behind the server', () => {
  const whsec = 'whsec_demo_fake_e2e';
  let db: TestDatabase;
  let fake: FakeStripe;
  let server: ServerProcess;
  const env = () => ({
    DATABASE_URL: db.url,
    GATEHOUSE_JWT_SECRET: secret,
    STRIPE_WEBHOOK_SECRET: whsec,
    LOG_LEVEL: 'warn',
    HOST: '127.0.0.1',
  });

  beforeAll(async () => {
    db = await createTestDatabase('gh_demo_fake');
    fake = await startFakeStripe();
    const started = await startServerProcess({
      PATH: process.env.PATH,
      ...env(),
      PORT: '0',
      STRIPE_API_BASE: fake.url,
      STRIPE_SECRET_KEY: 'sk_test_demo_fake',
    });
    if (!started.ok) throw new Error(`server did not start:\n${started.output}`);
    server = started.server;
    fake.forward({ url: `${server.url}/webhooks/stripe`, secret: whsec });
  }, 120_000);
  afterAll(async () => {
    await server?.stop('SIGTERM');
    await fake?.close();
    await db?.drop();
  });

  it('creates the catalog in Stripe and a new member buys through Checkout with the promo code', async () => {
    const run = await runGatehouse(['demo', '--url', server.url], env());
    expect(run.err).toContain('33/33');
    expect(run.code).toBe(0);
    const promo = /promo code (LAUNCH-[0-9A-F]+)\): membership ACTIVE\./.exec(run.out)?.[1];
    expect(promo).toBeDefined();
    const made = (path: string) =>
      fake.requests.filter((r) => r.method === 'POST' && r.path === path && r.status === 200).length;
    // Three tiers, the group and the event; eight prices; the promo code's coupon and code.
    expect(made('/v1/products')).toBe(5);
    expect(made('/v1/prices')).toBe(8);
    expect(made('/v1/promotion_codes')).toBe(1);
    const session = fake.requests.filter((r) => r.path === '/v1/checkout/sessions').at(-1)!;
    expect(session.params).toMatchObject({ metadata: { gatehouse_member_id: 'ivan' } });
    expect((session.params as { discounts: unknown[] }).discounts).toHaveLength(1);

    const communityId = /^Community .+: (\S+)$/m.exec(run.out)![1];
    const adminToken = /^Community admin token.*\n\s+(\S+)$/m.exec(run.out)![1];
    const res = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${adminToken}` },
      body: JSON.stringify({
        query: `{ membership(communityId: "${communityId}", memberId: "ivan") { status tier { name } stripeSubscriptionId } }`,
      }),
    });
    const { data } = (await res.json()) as { data: { membership: Record<string, unknown> } };
    expect(data.membership).toMatchObject({ status: 'ACTIVE', tier: { name: 'Gold' } });
    expect(data.membership.stripeSubscriptionId).toMatch(/^sub_/);
    expect(fake.deliveries.every((d) => d.status === 200)).toBe(true);
  }, 120_000);
});
