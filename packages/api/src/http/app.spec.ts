import type { AddressInfo } from 'node:net';
import { createServer, request, type Server } from 'node:http';
import pino from 'pino';
import { signToken } from '../auth/auth';
import { buildGatehouseSchema } from '../graphql/schema';
import type { GatehouseServices } from '../graphql/services';
import { createApp } from './app';
import { createMetrics } from './metrics';

const secret = 's'.repeat(32);
const called: string[] = [];

// Every service method records its call; the edge tests check that refused requests never get here.
const services = new Proxy({} as GatehouseServices, {
  get:
    (_t, name: string) =>
    async (...args: unknown[]) => {
      called.push(name);
      if (name === 'community') {
        return {
          id: args[0],
          name: 'Makers',
          region: 'EU',
          stripeAccountId: null,
          paidOnly: false,
          freeMembersUntil: null,
          pastDueGraceDays: 3,
          tiers: [],
          groups: [],
          events: [],
        };
      }
      if (name === 'membership') throw new Error('database password=hunter2 leaked');
      return null;
    },
});

let server: Server;
let base: string;
/** The ledger's readiness check: answers at once unless a test stalls it. */
let ledgerCheck: () => Promise<void> = async () => undefined;

beforeAll(async () => {
  const { listener } = await createApp({
    schema: await buildGatehouseSchema(),
    services,
    log: pino({ level: 'silent' }),
    metrics: createMetrics(),
    jwtSecret: secret,
    production: false,
    readiness: [
      { name: 'database', check: async () => undefined },
      { name: 'ledger', check: () => ledgerCheck() },
    ],
    readinessCheckMs: 200,
    ingestWebhook: async (raw, sig) => ({ status: sig ? 200 : 400, body: { bytes: raw.length } }),
  });
  server = createServer(listener).listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => new Promise((r) => server.close(r)));
beforeEach(() => called.splice(0));

async function gql(query: string, variables: Record<string, unknown> = {}, token?: string) {
  const res = await fetch(`${base}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  return {
    status: res.status,
    body: (await res.json()) as {
      data?: unknown;
      errors?: { message: string; extensions: Record<string, unknown> }[];
    },
  };
}

const admin = (c: string) => signToken(secret, { sub: 'ada', roles: [`admin:${c}`] });

describe('HTTP edge', () => {
  it('answers liveness, readiness and Prometheus metrics', async () => {
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({
      status: 'ready',
      checks: [
        { name: 'database', ok: true },
        { name: 'ledger', ok: true },
      ],
    });
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toContain('gatehouse_http_requests_total');
  });

  it('reports a readiness check that does not answer as failed, without waiting for it', async () => {
    ledgerCheck = () => new Promise<void>(() => undefined);
    try {
      const started = Date.now();
      const ready = await fetch(`${base}/readyz`);
      expect(Date.now() - started).toBeLessThan(2_000);
      expect(ready.status).toBe(503);
      expect(await ready.json()).toEqual({
        status: 'not ready',
        checks: [
          { name: 'database', ok: true },
          { name: 'ledger', ok: false, error: 'no answer within 0.2 s' },
        ],
      });
    } finally {
      ledgerCheck = async () => undefined;
    }
  });

  it('passes the raw webhook bytes to the ingestor untouched', async () => {
    const body = '{"id":  "evt_1" }';
    const res = await fetch(`${base}/webhooks/stripe`, {
      method: 'POST',
      headers: { 'stripe-signature': 't=1,v1=x', 'content-type': 'application/json' },
      body,
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ bytes: Buffer.byteLength(body) });
  });

  it('refuses a webhook body over the size limit with 413', async () => {
    const res = await fetch(`${base}/webhooks/stripe`, {
      method: 'POST',
      headers: { 'stripe-signature': 't=1,v1=x' },
      body: 'x'.repeat(1024 * 1024 + 10),
    });
    expect(res.status).toBe(413);
  });

  it('refuses a chunked webhook body once it passes the limit, without a declared length', async () => {
    const { port } = server.address() as AddressInfo;
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port,
          method: 'POST',
          path: '/webhooks/stripe',
          headers: { 'stripe-signature': 't=1,v1=x' },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      // No content-length: the body arrives in chunks, 64 kB at a time.
      const chunk = 'x'.repeat(64 * 1024);
      for (let i = 0; i < 20; i++) req.write(chunk);
      req.end();
    });
    expect(status).toBe(413);
  });

  it('echoes a sane request id on webhooks, counts them, and leaves other methods to the router', async () => {
    const res = await fetch(`${base}/webhooks/stripe?via=test`, {
      method: 'POST',
      headers: { 'stripe-signature': 't=1,v1=x', 'x-request-id': 'req-abc.1' },
      body: '{}',
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-request-id')).toBe('req-abc.1');
    const odd = await fetch(`${base}/webhooks/stripe`, {
      method: 'POST',
      headers: { 'x-request-id': 'bad id!' },
      body: '{}',
    });
    expect(odd.status).toBe(400);
    expect(odd.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    expect((await fetch(`${base}/webhooks/stripe`)).status).toBe(404);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/gatehouse_stripe_webhooks_total\{outcome="200"\} [1-9]/);
    expect(metrics).toMatch(/gatehouse_http_requests_total\{route="\/webhooks\/stripe",status="400"\} [1-9]/);
  });
});

describe('GraphQL auth and errors', () => {
  it('answers an admin of the community', async () => {
    const r = await gql(
      'query($id: ID!) { community(id: $id) { id name pastDueGraceDays } }',
      { id: 'c1' },
      admin('c1'),
    );
    expect(r.body.errors).toBeUndefined();
    expect(r.body.data).toEqual({ community: { id: 'c1', name: 'Makers', pastDueGraceDays: 3 } });
  });

  it('refuses an anonymous caller with UNAUTHENTICATED', async () => {
    const r = await gql('{ community(id: "c1") { id } }');
    expect(r.body.errors?.[0].extensions.code).toBe('UNAUTHENTICATED');
    expect(called).toEqual([]);
  });

  it('refuses an admin of another community with FORBIDDEN and no data', async () => {
    const r = await gql('{ community(id: "c1") { id name } }', {}, admin('c2'));
    expect(r.body.errors?.[0].extensions.code).toBe('FORBIDDEN');
    expect(r.body.data).toEqual({ community: null });
    expect(called).toEqual([]);
  });

  it('refuses a member asking about another member', async () => {
    const bob = signToken(secret, { sub: 'bob', roles: ['member:c1'] });
    const r = await gql('{ membership(communityId: "c1", memberId: "carol") { status } }', {}, bob);
    expect(r.body.errors?.[0].extensions.code).toBe('FORBIDDEN');
  });

  it('refuses a forged token with UNAUTHENTICATED', async () => {
    const forged = signToken('f'.repeat(32), { sub: 'ada', roles: ['platform-admin'] });
    const r = await gql('{ community(id: "c1") { id } }', {}, forged);
    expect(r.body.errors?.[0].extensions.code).toBe('UNAUTHENTICATED');
  });

  it('reports invalid input as BAD_USER_INPUT naming the fields, before the service runs', async () => {
    const r = await gql(
      'mutation { createPrice(input: { communityId: "c1", product: { kind: TIER, id: "t" }, amount: -5, currency: "euro", frequency: MONTHLY }) { id } }',
      {},
      admin('c1'),
    );
    expect(r.body.errors?.[0].extensions.code).toBe('BAD_USER_INPUT');
    expect(Object.keys(r.body.errors?.[0].extensions.fields as object).sort()).toEqual([
      'amount',
      'currency',
    ]);
    expect(called).toEqual([]);
  });

  it('masks unexpected errors behind a correlation id', async () => {
    const r = await gql('{ membership(communityId: "c1", memberId: "m") { status } }', {}, admin('c1'));
    const err = r.body.errors?.[0];
    expect(err?.extensions.code).toBe('INTERNAL_SERVER_ERROR');
    expect(err?.message).not.toContain('hunter2');
    expect(err?.extensions.correlationId).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('GraphQL abuse limits', () => {
  it('refuses a deeply nested query before any resolver runs', async () => {
    let inner = 'id';
    for (let i = 0; i < 8; i++) inner = `prices { product { ... on Tier { ${inner} } } }`;
    const deep = `community(id: "c1") { tiers { ${inner} } }`;
    const r = await gql(`{ ${deep} }`, {}, admin('c1'));
    expect(r.body.errors?.[0].message).toMatch(/depth|cost/i);
    expect(called).toEqual([]);
  });

  it('refuses a query with too many aliases', async () => {
    const aliases = Array.from({ length: 30 }, (_, i) => `a${i}: community(id: "c1") { id }`).join(' ');
    const r = await gql(`{ ${aliases} }`, {}, admin('c1'));
    expect(r.body.errors?.[0].message).toMatch(/alias/i);
    expect(called).toEqual([]);
  });

  it('blocks a simple cross-site GET request (CSRF prevention)', async () => {
    const res = await fetch(`${base}/graphql?query=${encodeURIComponent('{ community(id: "c1") { id } }')}`);
    expect(res.status).toBe(400);
    expect(await res.text()).toMatch(/CSRF|preflight/i);
  });
});
