import { randomBytes } from 'node:crypto';
import { stripeTestKit } from '@gatehouse/stripe';
import { Client } from 'pg';
import { eventually } from '@test/support';
import { bearer, graphqlClient, okData, type Gql, type GqlResponse } from './support/graphql-client';
import { startGatehouseUnderTest, type GatehouseUnderTest } from './support/gatehouse-server';

// The GraphQL edge of the started server under abuse: limits refused before any resolver runs,
// batching, CSRF, body sizes, masked errors, and what production hides.

const secret = `abuse-e2e-${randomBytes(12).toString('hex')}`;
const whsec = 'whsec_abuse_e2e';
const root = bearer(secret, { sub: 'root', roles: ['platform-admin'] });
const codes = (r: GqlResponse) => (r.errors ?? []).map((e) => e.extensions?.code);

function serverEnv(extra: Record<string, string> = {}) {
  return {
    GATEHOUSE_JWT_SECRET: secret,
    STRIPE_SECRET_KEY: 'sk_test_abuse_e2e',
    STRIPE_WEBHOOK_SECRET: whsec,
    ...extra,
  };
}

async function post(url: string, body: string | Buffer, headers: Record<string, string>) {
  const res = await fetch(url, { method: 'POST', headers, body });
  return { status: res.status, text: await res.text() };
}

describe('the GraphQL edge under abuse (development server)', () => {
  let gh: GatehouseUnderTest;
  let gql: Gql;
  let communityId: string;

  beforeAll(async () => {
    gh = await startGatehouseUnderTest(serverEnv({ NODE_ENV: 'development' }), 'abuse_e2e');
    gql = graphqlClient(gh.server.url);
    communityId = (
      await okData(gql, 'mutation { createCommunity(input: { name: "Abuse", region: EU }) { id } }', {}, root)
    ).createCommunity.id;
  }, 120_000);

  afterAll(async () => {
    await gh?.close();
  });

  const createGroup = (selection: string, name = 'Refused group') =>
    `mutation($c: ID!) { createGroup(input: { communityId: $c, name: "${name}" }) ${selection} }`;

  function nested(levels: number, leaf: string): string {
    let sel = leaf;
    for (let i = 0; i < levels; i++) sel = `supersededBy { ${sel} }`;
    return `{ id prices { ${sel} } }`;
  }

  // The token limit is enforced by the parser, the others by validation: all before any resolver.
  const limits: [string, () => string, RegExp, string][] = [
    ['depth over 12', () => createGroup(nested(14, 'id')), /depth limit of 12/i, 'GRAPHQL_VALIDATION_FAILED'],
    [
      'more than 20 aliases',
      () =>
        `mutation($c: ID!) { ${Array.from({ length: 21 }, (_, i) => `g${i}: createGroup(input: { communityId: $c, name: "alias ${i}" }) { id }`).join(' ')} }`,
      /aliases limit of 20/i,
      'GRAPHQL_VALIDATION_FAILED',
    ],
    [
      'more than 3000 tokens',
      () => createGroup(`{ id ${'name '.repeat(3000)} }`),
      /more th[ae]t 3000 tokens/i,
      'GRAPHQL_PARSE_FAILED',
    ],
    [
      'a cost over 8000 within the depth limit',
      () => createGroup(nested(8, 'id '.repeat(200))),
      /cost limit of 8000/i,
      'GRAPHQL_VALIDATION_FAILED',
    ],
  ];

  it.each(limits)(
    'a mutation with %s is refused before any resolver runs: nothing is written',
    async (_name, build, message, code) => {
      const before = await gh.ledgerCount();
      const r = await gql(build(), { c: communityId }, root);
      expect(r.errors?.length).toBeGreaterThan(0);
      expect(new Set(codes(r))).toEqual(new Set([code]));
      expect(r.errors!.map((e) => e.message).join('\n')).toMatch(message);
      expect(r.data ?? null).toBeNull();
      // A mutation that ran would have appended before answering (read-your-writes).
      expect(await gh.ledgerCount()).toBe(before);
    },
  );

  it.each(limits)(
    'a request refused for %s answers a client error (4xx), not a server error',
    async (_name, build) => {
      const r = await gql(build(), { c: communityId }, root);
      expect(r.status).toBeGreaterThanOrEqual(400);
      expect(r.status).toBeLessThan(500);
    },
  );

  it('operations within every limit still run', async () => {
    const r = await gql(createGroup(nested(6, 'id amount'), 'Allowed group'), { c: communityId }, root);
    expect(r.errors).toBeUndefined();
    expect(r.data!.createGroup.id).toEqual(expect.any(String));
  });

  it('a batch of operations in one request is refused and none of them runs', async () => {
    const before = await gh.ledgerCount();
    const op = { query: createGroup('{ id }', 'Batched'), variables: { c: communityId } };
    const r = await post(`${gh.server.url}/graphql`, JSON.stringify([op, op]), {
      'content-type': 'application/json',
      authorization: `Bearer ${root}`,
    });
    expect(r.status).toBe(400);
    expect(r.text).toMatch(/batching/i);
    expect(await gh.ledgerCount()).toBe(before);
  });

  it('CSRF: a GET without the preflight header, and text/plain or form posts, are refused; nothing is written', async () => {
    const before = await gh.ledgerCount();
    const query = encodeURIComponent('{ __typename }');
    const get = await fetch(`${gh.server.url}/graphql?query=${query}`);
    expect(get.status).toBe(400);
    expect(await get.text()).toMatch(/Cross-Site Request Forgery/);

    const mutation = JSON.stringify({ query: createGroup('{ id }', 'CSRF'), variables: { c: communityId } });
    for (const type of [
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
    ]) {
      const r = await post(`${gh.server.url}/graphql`, mutation, {
        'content-type': type,
        authorization: `Bearer ${root}`,
      });
      expect({ type, status: r.status }).toEqual({ type, status: 400 });
      expect(r.text).toMatch(/Cross-Site Request Forgery/);
    }
    expect(await gh.ledgerCount()).toBe(before);

    // A GET that proves it is not a simple cross-site request is served (queries only).
    const preflighted = await fetch(`${gh.server.url}/graphql?query=${query}`, {
      headers: { 'apollo-require-preflight': 'true' },
    });
    expect(preflighted.status).toBe(200);
  });

  it('introspection and field suggestions are on in development', async () => {
    const intro = await gql('{ __schema { queryType { name } } }');
    expect(intro.data).toEqual({ __schema: { queryType: { name: 'Query' } } });
    const typo = await gql('{ comunity(id: "x") { id } }');
    expect(typo.errors![0].message).toMatch(/Did you mean "community"/);
  });

  it('an unexpected failure is masked with a correlation id (no stack, no SQL) and logged under that id; nothing is written', async () => {
    const before = await gh.ledgerCount();
    // The database cannot store a NUL character: the failure is not one with a public code.
    const r = await gql(
      'mutation($c: ID!, $n: String!) { createEvent(input: { communityId: $c, name: $n, startsAt: "2031-01-01T00:00:00Z", endsAt: "2031-01-02T00:00:00Z" }) { id } }',
      { c: communityId, n: 'Meetup\u0000' },
      root,
    );
    expect(codes(r)).toEqual(['INTERNAL_SERVER_ERROR']);
    const { message, extensions } = r.errors![0];
    const id = extensions!.correlationId as string;
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(message).toBe(`Internal error (correlation id ${id})`);
    expect(Object.keys(extensions!).sort()).toEqual(['code', 'correlationId']);
    expect(r.text).not.toMatch(/\n\s+at |stacktrace|SELECT|INSERT|unicode|pg-pool|node_modules|\.js:\d+/i);
    // The log line travels through the server's stdout pipe, independently of the HTTP answer.
    const logged = await eventually(
      async () =>
        gh.server
          .output()
          .split('\n')
          .some((l) => l.includes(id) && l.includes('"level":50')) || undefined,
      5_000,
    );
    expect(logged).toBe(true);
    expect(await gh.ledgerCount()).toBe(before);
  });

  it('bodies over 256 kB on /graphql and 1 MB on /webhooks/stripe answer 413 and write nothing', async () => {
    const before = await gh.ledgerCount();
    const big = JSON.stringify({
      query: createGroup('{ id }', 'Too big'),
      variables: { c: communityId, pad: 'x'.repeat(260 * 1024) },
    });
    const g = await post(`${gh.server.url}/graphql`, big, {
      'content-type': 'application/json',
      authorization: `Bearer ${root}`,
    });
    expect(g.status).toBe(413);
    expect(g.text).not.toMatch(/\n\s+at /);

    // Correctly signed, so only the size refuses it.
    const event = stripeTestKit.customerSubscriptionUpdated({}, { account: 'acct_abuse' });
    (event.data.object as Record<string, unknown>).metadata = { pad: 'x'.repeat(1100 * 1024) };
    const signed = stripeTestKit.signPayload(event, whsec, Math.floor(Date.now() / 1000));
    const w = await post(`${gh.server.url}/webhooks/stripe`, signed.rawBody, {
      'content-type': 'application/json',
      'stripe-signature': signed.header,
    });
    expect(w.status).toBe(413);
    expect(await gh.ledgerCount()).toBe(before);
    const c = new Client({ connectionString: gh.db.url });
    await c.connect();
    try {
      const q = await c.query<{ n: string }>(
        `SELECT count(*)::text AS n FROM information_schema.tables t WHERE t.table_name = 'stripe_quarantine'`,
      );
      if (q.rows[0].n === '1') {
        expect(
          (await c.query<{ n: string }>('SELECT count(*)::text AS n FROM stripe_quarantine')).rows[0].n,
        ).toBe('0');
      }
    } finally {
      await c.end();
    }

    // Just under the limit is parsed and answered.
    const fits = JSON.stringify({ query: '{ __typename }', variables: { pad: 'x'.repeat(200 * 1024) } });
    expect(
      (await post(`${gh.server.url}/graphql`, fits, { 'content-type': 'application/json' })).status,
    ).toBe(200);
  });
});

describe('the GraphQL edge in production', () => {
  let gh: GatehouseUnderTest;
  let gql: Gql;

  beforeAll(async () => {
    gh = await startGatehouseUnderTest(serverEnv({ NODE_ENV: 'production' }), 'abuse_prod_e2e');
    gql = graphqlClient(gh.server.url);
  }, 120_000);

  afterAll(async () => {
    await gh?.close();
  });

  it('introspection is off', async () => {
    for (const query of [
      '{ __schema { queryType { name } } }',
      '{ __type(name: "Community") { fields { name } } }',
    ]) {
      const r = await gql(query, {}, root);
      expect(r.data ?? null).toBeNull();
      expect(codes(r)).toEqual(['GRAPHQL_VALIDATION_FAILED']);
      expect(r.text).toMatch(/introspection/i);
      expect(r.text).not.toContain('tiers');
    }
  });

  it('field suggestions are off: a misspelt field names no real one', async () => {
    const r = await gql('{ comunity(id: "x") { id } }', {}, root);
    expect(codes(r)).toEqual(['GRAPHQL_VALIDATION_FAILED']);
    expect(r.text).not.toMatch(/did you mean/i);
    expect(r.text).not.toContain('"community"');
    const arg = await gql('mutation { createCommunity(input: { nme: "x", region: EU }) { id } }', {}, root);
    expect(arg.text).not.toMatch(/did you mean/i);
  });

  it('the limits hold in production too', async () => {
    const r = await gql(
      `{ ${Array.from({ length: 21 }, (_, i) => `c${i}: community(id: "x") { id }`).join(' ')} }`,
      {},
      root,
    );
    expect(codes(r)).toEqual(['GRAPHQL_VALIDATION_FAILED']);
  });
});
