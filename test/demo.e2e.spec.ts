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
  }, 120_000);

  it('says how to start a server when none answers', async () => {
    const run = await runGatehouse(['demo', '--url', 'http://127.0.0.1:1'], env());
    expect(run.code).toBe(1);
    expect(run.err).toContain('no server answers at http://127.0.0.1:1: start it with `npm start`');
  });
});
