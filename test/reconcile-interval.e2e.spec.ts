import jwt from 'jsonwebtoken';
import { Client } from 'pg';
import { startFakeStripe, stripeTestKit as kit, type FakeStripe } from '@gatehouse/stripe';
import { eventually, startCliProcess, type CliProcess } from '@test/support';
import { startGatehouseUnderTest, type GatehouseUnderTest } from './support/gatehouse-server';
import { startServerProcess, type ServerProcess } from './support/server-process';
import { runCli } from './support/webhook-client';

// A webhook Stripe never delivered is found by the server's own reconciler on its interval.

const secret = 'reconcile-e2e-secret-'.padEnd(40, 'x');
const admin = jwt.sign({ roles: ['platform-admin'] }, secret, { algorithm: 'HS256', subject: 'root' });

describe('the reconciler on an interval', () => {
  let gh: GatehouseUnderTest;

  beforeAll(async () => {
    gh = await startGatehouseUnderTest(
      {
        GATEHOUSE_JWT_SECRET: secret,
        STRIPE_WEBHOOK_SECRET: 'whsec_reconcile_e2e',
        STRIPE_SECRET_KEY: 'sk_test_reconcile',
        GATEHOUSE_RECONCILE_INTERVAL: '1',
      },
      'gh_reconcile',
    );
  }, 120_000);
  afterAll(() => gh?.close());

  /** A GraphQL query or mutation as the platform admin; its data. */
  const gql = async (query: string) => {
    const res = await fetch(`${gh.server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${admin}` },
      body: JSON.stringify({ query }),
    });
    return ((await res.json()) as { data: Record<string, any> }).data; // eslint-disable-line @typescript-eslint/no-explicit-any
  };

  it('appends an event that only the Events API knows about', async () => {
    const c = (
      await gql(
        'mutation { createCommunity(input: { name: "Missed", region: US, stripeAccountId: "acct_missed1" }) { id } }',
      )
    ).createCommunity.id;
    const missed = kit.customerSubscriptionCreated(
      { id: 'sub_missed', customer: 'cus_missed', metadata: { gatehouse_member_id: 'mo' } },
      { account: 'acct_missed1', created: Math.floor(Date.now() / 1000) },
    );
    gh.fake.emit(missed as never, { deliverySuccess: false });
    const found = await eventually(
      async () => {
        const edges = (
          await gql(
            `query { ledgerEvents(communityId: "${c}", types: ["customer.subscription.created"]) { edges { node { id } } } }`,
          )
        ).ledgerEvents.edges;
        return edges.length > 0 ? edges : undefined;
      },
      20_000,
      250,
    );
    expect(found.map((e: { node: { id: string } }) => e.node.id)).toEqual([missed.id]);
    // The operator sees that a webhook did not arrive, and that the runs succeed.
    const metrics = await (await fetch(`${gh.server.url}/metrics`)).text();
    expect(metrics).toMatch(/^gatehouse_stripe_reconciled_events_total 1$/m);
    expect(
      Number(/^gatehouse_stripe_reconcile_runs_total\{outcome="ok"\} (\d+)$/m.exec(metrics)?.[1]),
    ).toBeGreaterThan(0);
    expect(metrics).not.toMatch(/gatehouse_stripe_reconcile_runs_total\{outcome="failed"\}/);
    // How far back the runs have listed every account: about the interval ago.
    const windowAge = Number(/^gatehouse_stripe_reconcile_window_age_seconds (\S+)$/m.exec(metrics)?.[1]);
    expect(windowAge).toBeGreaterThanOrEqual(0);
    expect(windowAge).toBeLessThan(20);
    // How long the runs take, beside the interval.
    expect(
      Number(
        /^gatehouse_stripe_reconcile_run_duration_seconds_count\{outcome="ok"\} (\d+)$/m.exec(metrics)?.[1],
      ),
    ).toBeGreaterThan(0);

    // An account's first run lists an hour back; later ones from five minutes before the last run.
    const since = () =>
      gh.fake.requests
        .filter((r) => r.path === '/v1/events')
        .map((r) => Number((r.params as { created: { gte: string } }).created.gte));
    await eventually(async () => (since().length >= 3 ? true : undefined), 10_000, 250);
    const now = Math.floor(Date.now() / 1000);
    expect(Math.min(...since())).toBeLessThan(now - 3500);
    expect(since().at(-1)).toBeGreaterThan(now - 310);
  }, 60_000);

  it("operators' commands read Stripe one at a time, beside the server's runs", async () => {
    // Another command holding the lock, as an operator's `gatehouse stripe reconcile` or `drift` would.
    const other = new Client({ connectionString: gh.db.url, application_name: 'an operator elsewhere' });
    await other.connect();
    const lock = (kind: 'command' | 'server', take: boolean) =>
      other.query(
        `SELECT ${take ? 'pg_advisory_lock' : 'pg_advisory_unlock'}(hashtextextended('gatehouse:stripe-bulk-read:${kind}', 0))`,
      );
    /** Events API requests made with this secret key: the server's, or a command's. */
    const listedBy = (key: string) =>
      gh.fake.requests.filter((r) => r.path === '/v1/events' && r.apiKey === key).length;
    const waitsForTheLock = (command: CliProcess) =>
      eventually(
        async () => (command.stderr().includes('another command is reading Stripe') ? true : undefined),
        30_000,
        50,
      );
    const skippedLocked = async () =>
      Number(
        /^gatehouse_stripe_reconcile_ticks_skipped_total\{reason="locked"\} (\d+)$/m.exec(
          await (await fetch(`${gh.server.url}/metrics`)).text(),
        )?.[1] ?? 0,
      );
    try {
      await lock('command', true);
      const serverBefore = listedBy('sk_test_reconcile');
      // The command waits, and says for whom.
      const cli = startCliProcess(['stripe', 'reconcile', '--since', '1h'], {
        ...gh.env,
        STRIPE_SECRET_KEY: 'sk_test_reconcile_waiting',
      });
      await waitsForTheLock(cli);
      expect(cli.stderr()).toMatch(
        /another command is reading Stripe \(an operator elsewhere, since \d{4}-\d\d-\d\dT/,
      );
      // `drift` too.
      const drift = startCliProcess(['stripe', 'drift'], {
        ...gh.env,
        STRIPE_SECRET_KEY: 'sk_test_drift_waiting',
      });
      await waitsForTheLock(drift);
      await new Promise((r) => setTimeout(r, 3_000));
      // Neither asked Stripe anything; the server's runs (every second) went on meanwhile.
      expect(listedBy('sk_test_reconcile_waiting')).toBe(0);
      expect(drift.stderr()).not.toContain('comparing');
      expect(listedBy('sk_test_reconcile') - serverBefore).toBeGreaterThanOrEqual(2);
      let exited: number | null | undefined;
      void cli.exited.then((code) => (exited = code));
      expect(exited).toBeUndefined();

      await lock('command', false);
      expect(await cli.exited).toBe(0);
      expect(cli.stdout()).toMatch(/^acct_missed1 /m);
      expect(listedBy('sk_test_reconcile_waiting')).toBeGreaterThan(0);
      expect(await drift.exited).not.toBeNull();
      expect(drift.stderr()).toContain('comparing 1 projected subscription(s) with Stripe');

      // Ctrl-C while it waits ends the command without a request.
      await lock('command', true);
      const stopped = startCliProcess(['stripe', 'reconcile', '--since', '1h'], {
        ...gh.env,
        STRIPE_SECRET_KEY: 'sk_test_reconcile_stopped',
      });
      await waitsForTheLock(stopped);
      stopped.kill('SIGINT');
      expect(await stopped.exited).toBe(1);
      expect(stopped.stderr()).toContain('stopped by Ctrl-C while waiting; nothing was listed');
      expect(stopped.stdout()).toBe('');
      expect(listedBy('sk_test_reconcile_stopped')).toBe(0);
      await lock('command', false);

      // Another server's run under way (one that lost the projector lease during it): this
      // server's ticks are skipped, and counted, until it ends.
      await lock('server', true);
      const skippedBefore = await skippedLocked();
      const held = listedBy('sk_test_reconcile');
      await new Promise((r) => setTimeout(r, 3_000));
      expect(listedBy('sk_test_reconcile')).toBe(held);
      expect((await skippedLocked()) - skippedBefore).toBeGreaterThanOrEqual(2);
      await lock('server', false);
      await eventually(async () => (listedBy('sk_test_reconcile') > held ? true : undefined), 10_000, 100);
    } finally {
      await other.end();
    }
  }, 90_000);

  it('goes on past a connected account that disconnected the platform', async () => {
    await gql(
      'mutation { createCommunity(input: { name: "Gone", region: US, stripeAccountId: "acct_gone1" }) { id } }',
    );
    gh.fake.revokeAccess('acct_gone1');
    const refusedBefore = gh.fake.requests.filter(
      (r) => r.stripeAccount === 'acct_gone1' && r.status === 401,
    );
    const catalog = new Client({ connectionString: gh.db.url });
    await catalog.connect();
    const c = (
      await catalog
        .query<{ id: string }>(
          "SELECT community_id AS id FROM catalog_communities WHERE stripe_account_id = 'acct_missed1'",
        )
        .finally(() => catalog.end())
    ).rows[0].id;
    // A webhook of another account missed meanwhile is still found, run after run.
    const missed = kit.invoicePaid(
      { subscription: 'sub_missed', customer: 'cus_missed' },
      { account: 'acct_missed1', created: Math.floor(Date.now() / 1000) },
    );
    gh.fake.emit(missed as never, { deliverySuccess: false });
    await eventually(
      async () => {
        const edges = (
          await gql(
            `query { ledgerEvents(communityId: "${c}", types: ["invoice.paid"]) { edges { node { id } } } }`,
          )
        ).ledgerEvents.edges as { node: { id: string } }[];
        return edges.some((e) => e.node.id === missed.id) || undefined;
      },
      20_000,
      250,
    );
    await eventually(
      async () =>
        gh.fake.requests.filter((r) => r.stripeAccount === 'acct_gone1' && r.status === 401).length >
          refusedBefore.length + 1 || undefined,
      20_000,
      250,
    );
    const metrics = await (await fetch(`${gh.server.url}/metrics`)).text();
    expect(metrics).not.toMatch(/gatehouse_stripe_reconcile_runs_total\{outcome="failed"\}/);
    // An operator's run lists the others too, and says which account it could not read (exit 1).
    const cli = await runCli(['stripe', 'reconcile', '--since', '1h'], gh.env, 60_000);
    expect(cli.code).toBe(1);
    expect(cli.stdout).toMatch(/^acct_missed1 /m);
    expect(cli.stdout).toMatch(
      /^acct_gone1\s+not listed: Stripe refused \(.*Application access may have been revoked/m,
    );
    expect(cli.stderr).toContain('Stripe refused to list 1 account(s)');
    // Its window stays where it was (none: never listed); the others' move on.
    const db = new Client({ connectionString: gh.db.url });
    await db.connect();
    try {
      const { rows } = await db.query<{ account: string; age: number }>(
        `SELECT account, extract(epoch FROM now() - listed_from)::float8 AS age FROM stripe_reconcile_windows
          WHERE account IN ('acct_gone1', 'acct_missed1')`,
      );
      expect(rows.map((r) => r.account)).toEqual(['acct_missed1']);
      expect(rows[0].age).toBeLessThan(10);
    } finally {
      await db.end();
    }
  }, 60_000);

  // Last: it stops the suite's server.
  it('runs on the server that projects only, and on the next one once that one stops', async () => {
    // Two more servers on the same database, each with a Stripe API of its own, to tell whose
    // requests are whose: one following the projecting server, one that may never project.
    const stripes = [await startFakeStripe(), await startFakeStripe()];
    const servers: ServerProcess[] = [];
    const start = async (fake: FakeStripe, projector: 'on' | 'off') => {
      const started = await startServerProcess({
        ...gh.env,
        STRIPE_API_BASE: fake.url,
        GATEHOUSE_PROJECTOR: projector,
      });
      if (!started.ok) throw new Error(`a server did not start:\n${started.output}`);
      servers.push(started.server);
      return started.server;
    };
    try {
      const following = await start(stripes[0], 'on');
      const off = await start(stripes[1], 'off');
      const lists = (i: number) => stripes[i].requests.filter((r) => r.path === '/v1/events').length;
      await off.says('GATEHOUSE_RECONCILE_INTERVAL is set, but the server that projects reconciles');
      expect(following.output()).not.toContain('GATEHOUSE_RECONCILE_INTERVAL is set');
      // The suite's server projects and reconciles every second; the others list nothing.
      const before = gh.fake.requests.filter((r) => r.path === '/v1/events').length;
      await new Promise((r) => setTimeout(r, 4_000));
      expect(gh.fake.requests.filter((r) => r.path === '/v1/events').length).toBeGreaterThan(before);
      expect([lists(0), lists(1)]).toEqual([0, 0]);

      expect(await gh.server.stop('SIGINT')).toBe(0);
      await eventually(async () => (lists(0) > 0 ? true : undefined), 30_000, 250);
      expect(lists(1)).toBe(0);
      // The next one goes on from where the stopped server's last run began (less five minutes),
      // which the database keeps: not a first window of an hour back.
      const now = Math.floor(Date.now() / 1000);
      const gte = (r: { params: unknown }) => Number((r.params as { created: { gte: string } }).created.gte);
      const listings = stripes[0].requests.filter((r) => r.path === '/v1/events');
      const since = listings.filter((r) => r.stripeAccount !== 'acct_gone1').map(gte);
      expect(Math.min(...since)).toBeGreaterThan(now - 340);
      // The account Stripe refused (above) was never listed: its first window, an hour back.
      const gone = listings.filter((r) => r.stripeAccount === 'acct_gone1').map(gte);
      expect(gone.length).toBeGreaterThan(0);
      expect(Math.max(...gone)).toBeLessThan(now - 3500);
    } finally {
      for (const server of servers) await server.stop('SIGINT');
      for (const fake of stripes) await fake.close();
    }
  }, 90_000);
});

describe('the reconciler when the server stops', () => {
  let gh: GatehouseUnderTest;
  const accounts = Array.from({ length: 12 }, (_, i) => `acct_stopping${i + 1}`);

  beforeAll(async () => {
    // Stripe answers each request after 1.5 s: a run over twelve accounts, four at a time, takes
    // three rounds of requests.
    gh = await startGatehouseUnderTest(
      { GATEHOUSE_JWT_SECRET: secret, STRIPE_WEBHOOK_SECRET: 'whsec_reconcile_stop_e2e' },
      'gh_reconcile_stop',
      { latencyMs: 1_500 },
    );
  }, 120_000);
  afterAll(() => gh?.close());

  const link = async (account: string) => {
    const res = await fetch(`${gh.server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${admin}` },
      body: JSON.stringify({
        query: `mutation { createCommunity(input: { name: "${account}", region: US, stripeAccountId: "${account}" }) { id } }`,
      }),
    });
    expect(res.status).toBe(200);
    const id = ((await res.json()) as { data: { createCommunity: { id: string } } }).data.createCommunity.id;
    communityOf.set(account, id);
  };
  const communityOf = new Map<string, string>();
  const listed = () => gh.fake.requests.filter((r) => r.path === '/v1/events').length;
  /** The accounts the command below listed to the end before its stop, what it said, and when it started. */
  let listedByCommand: string[] = [];
  let commandStderr = '';
  let commandStartedAfter = 0;

  it('gatehouse stripe reconcile: a first Ctrl-C ends the run at its requests in flight', async () => {
    for (const account of accounts) await link(account);
    const before = listed();
    const startedBefore = Date.now();
    const cli = startCliProcess(['stripe', 'reconcile', '--since', '72h'], {
      ...gh.env,
      STRIPE_SECRET_KEY: 'sk_test_reconcile_cli',
    });
    await eventually(async () => (listed() >= before + 1 ? true : undefined), 30_000, 20);
    cli.kill('SIGINT');
    expect(await cli.exited).toBe(1);
    expect(cli.stderr()).toContain('stopping: the requests in flight are answered first');
    expect(cli.stderr()).toContain('stopped by Ctrl-C before every account was listed');
    // The report shows the accounts listed to the end, and only those.
    const reported = cli.stdout().match(/^acct_stopping\d+ /gm) ?? [];
    expect(reported.length).toBeGreaterThanOrEqual(4);
    expect(reported.length).toBeLessThan(accounts.length);
    expect(cli.stdout()).toMatch(/^total: 0 listed, 0 appended/m); // these accounts have no events
    listedByCommand = reported.map((line) => line.trim()).sort();
    commandStderr = cli.stderr();
    commandStartedAfter = startedBefore;
    // The first round was answered (the second too, if it had been asked for); never the third.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect(listed() - before).toBeLessThanOrEqual(8);
  }, 90_000);

  it("gatehouse stripe reconcile: the server's interval goes on from the accounts it listed to the end", async () => {
    // Those accounts were listed from as far back as any server's first run would go (three days, at
    // the longest interval): its reconcile interval goes on from this run for them, and only them.
    expect(commandStderr).toContain(
      `the server's reconcile interval goes on from this run for the ${listedByCommand.length} account(s) it listed`,
    );
    const db = new Client({ connectionString: gh.db.url });
    await db.connect();
    try {
      const rows = (
        await db.query<{ account: string; listed_from: Date }>(
          'SELECT account, listed_from FROM stripe_reconcile_windows ORDER BY account',
        )
      ).rows;
      expect(rows.map((r) => r.account)).toEqual(listedByCommand);
      for (const { listed_from } of rows) {
        expect(listed_from.getTime()).toBeGreaterThanOrEqual(commandStartedAfter);
        expect(listed_from.getTime()).toBeLessThanOrEqual(Date.now());
      }
      // An account no run has listed, listed from less far back than three days: the server's first
      // run still lists it from where it would.
      const unlisted = accounts.find((a) => !listedByCommand.includes(a))!;
      const short = await runCli(
        ['stripe', 'reconcile', '--since', '2h', '--community', communityOf.get(unlisted)!],
        { ...gh.env, STRIPE_SECRET_KEY: 'sk_test_reconcile_cli' },
        60_000,
      );
      expect(short.code).toBe(0);
      expect(short.stderr).toContain(
        "the server's reconcile interval goes on from this run for 0 of the 1 account(s) it listed",
      );
      const after = await db.query('SELECT account FROM stripe_reconcile_windows ORDER BY account');
      expect(after.rows.map((r: { account: string }) => r.account)).toEqual(listedByCommand);
      // A window that cannot be kept leaves the run's report and its exit as they were.
      await db.query('ALTER TABLE stripe_reconcile_windows RENAME TO stripe_reconcile_windows_away');
      try {
        const unkept = await runCli(
          ['stripe', 'reconcile', '--since', '72h', '--community', communityOf.get(unlisted)!],
          { ...gh.env, STRIPE_SECRET_KEY: 'sk_test_reconcile_cli' },
          60_000,
        );
        expect(unkept.code).toBe(0);
        expect(unkept.stdout).toMatch(new RegExp(`^${unlisted} `, 'm'));
        expect(unkept.stderr).toContain(
          "note: how far this run listed was not kept for the server's reconcile interval",
        );
      } finally {
        await db.query('ALTER TABLE stripe_reconcile_windows_away RENAME TO stripe_reconcile_windows');
      }
    } finally {
      await db.end();
    }
  }, 90_000);

  it('ends the run under way at its requests in flight, and stops cleanly', async () => {
    // The same database (the accounts linked above), now with the reconciler: its first run lists
    // the platform and twelve accounts.
    expect(await gh.server.stop('SIGINT')).toBe(0);
    const started = await startServerProcess({
      ...gh.env,
      STRIPE_SECRET_KEY: 'sk_test_reconcile_stop',
      GATEHOUSE_RECONCILE_INTERVAL: '1',
      LOG_LEVEL: 'info',
    });
    if (!started.ok) throw new Error(`the server did not start again:\n${started.output}`);
    const server = started.server;
    // A failed expectation stops it too, so that it does not hold the run open.
    try {
      const before = listed();
      // The first round answered: the second is on its way.
      await eventually(async () => (listed() >= before + 4 ? true : undefined), 30_000, 50);
      // It begins with the accounts the command did not list, an hour back; those it did come later,
      // from five minutes before the command's run.
      const firstRound = gh.fake.requests.filter((r) => r.path === '/v1/events').slice(before, before + 4);
      expect(firstRound.filter((r) => listedByCommand.includes(r.stripeAccount ?? ''))).toEqual([]);
      for (const r of firstRound)
        expect(Number((r.params as { created: { gte: string } }).created.gte)).toBeLessThan(
          Date.now() / 1000 - 3500,
        );
      // A run takes longer than the 1 s interval: the ticks meanwhile are skipped, and counted.
      const metrics = await (await fetch(`${server.url}/metrics`)).text();
      expect(
        Number(
          /^gatehouse_stripe_reconcile_ticks_skipped_total\{reason="running"\} (\d+)$/m.exec(metrics)?.[1],
        ),
      ).toBeGreaterThan(0);
      expect(await server.stop('SIGINT')).toBe(0);
      // The requests in flight were answered; no other account was listed, and nothing failed.
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      expect(listed() - before).toBeLessThanOrEqual(8);
      expect(server.output()).not.toContain('reconciliation failed');
      expect(server.output()).toContain('"msg":"stopped"');
    } finally {
      await server.stop('SIGKILL');
    }
  }, 90_000);
});
