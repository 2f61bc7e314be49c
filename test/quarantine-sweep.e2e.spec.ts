import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { PostgresQuarantineStore, stripeTestKit as kit } from '@gatehouse/stripe';
import { eventually } from '@test/support';
import { startGatehouseUnderTest, type GatehouseUnderTest } from './support/gatehouse-server';
import { startServerProcess, type ServerProcess } from './support/server-process';
import { adminToken, graphqlClient, postWebhook, runCli } from './support/webhook-client';

// Linking an account releases what the quarantine held for it. An event can miss that release: held
// by a webhook that looked the account up just before the link, a moment after the release looked,
// or held while a release failed or the server stopped. The projecting server finds such events.

const jwtSecret = 'quarantine-sweep-e2e-'.padEnd(40, 'x');
const WEBHOOK_SECRET = 'whsec_quarantine_sweep_e2e';
const account = `acct_swept${Date.now()}`;
const unreleased = `acct_unreleased${Date.now()}`;

describe('the quarantine sweep', () => {
  let gh: GatehouseUnderTest;
  let restarted: ServerProcess | undefined;
  /** The first test's community, and the event its link could not release. */
  let unreleasedCommunity = '';
  let unreleasedHeld = '';

  beforeAll(async () => {
    gh = await startGatehouseUnderTest(
      {
        GATEHOUSE_JWT_SECRET: jwtSecret,
        STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET,
        LOG_LEVEL: 'info',
      },
      'gh_qsweep',
    );
  }, 120_000);
  afterAll(async () => {
    await restarted?.stop('SIGINT');
    await gh?.close();
  });

  it('links an account whose held events cannot be released now, and keeps them held', async () => {
    const now = Math.floor(Date.now() / 1000);
    const held = kit.invoicePaid({}, { account: unreleased, created: now - 60 });
    unreleasedHeld = held.id;
    const signed = kit.signPayload(held, WEBHOOK_SECRET, now);
    expect((await postWebhook(gh.server.url, signed.rawBody, signed.header)).body).toMatchObject({
      quarantined: true,
    });
    // The quarantine table moved away for the moment: the link's release fails. (A lock would not
    // do: a transaction holding one holds back every later append from the projector.)
    const admin = new Client({ connectionString: gh.db.url });
    await admin.connect();
    try {
      await admin.query('ALTER TABLE stripe_quarantine RENAME TO stripe_quarantine_away');
      try {
        const gql = graphqlClient(gh.server.url, adminToken(jwtSecret));
        unreleasedCommunity = await gql.createCommunity('Unreleased', unreleased);
      } finally {
        await admin.query('ALTER TABLE stripe_quarantine_away RENAME TO stripe_quarantine');
      }
    } finally {
      await admin.end();
    }
    await gh.server.says('the Stripe events held for this account were not released now');
    const quarantine = new PostgresQuarantineStore({ connectionString: gh.db.url });
    try {
      expect(await quarantine.take(unreleased)).toEqual([held]);
    } finally {
      await quarantine.close();
    }
  }, 60_000);

  it('drops, at the operator’s word, what is held for an account no community will link', async () => {
    const now = Math.floor(Date.now() / 1000);
    const never = `acct_never${Date.now()}`;
    const linked = `acct_linked${Date.now()}`;
    const old = kit.invoicePaid({}, { account: never, created: now - 40 * 86_400 });
    const recent = kit.invoicePaid({}, { account: never, created: now - 60 });
    for (const e of [old, recent, kit.invoicePaid({}, { account: linked, created: now - 60 })]) {
      const signed = kit.signPayload(e, WEBHOOK_SECRET, now);
      expect((await postWebhook(gh.server.url, signed.rawBody, signed.header)).body).toMatchObject({
        quarantined: true,
      });
    }
    const linkedCommunity = await graphqlClient(gh.server.url, adminToken(jwtSecret)).createCommunity(
      'Linked',
      linked,
    );
    const quarantine = new PostgresQuarantineStore({ connectionString: gh.db.url });
    const dir = mkdtempSync(path.join(tmpdir(), 'gatehouse-qdrop-'));
    const saved = path.join(dir, 'dropped.jsonl');
    try {
      // A dry run says what would go, and drops nothing.
      const dry = await runCli(['stripe', 'quarantine', 'drop', never, '--older-than', '30d'], gh.env);
      expect({ code: dry.code, stderr: dry.stderr }).toEqual({ code: 0, stderr: '' });
      expect(dry.stdout).toMatch(new RegExp(`^${never}\\s+1\\s`, 'm'));
      expect(dry.stdout).toContain('would be dropped. Nothing was dropped');
      expect(await quarantine.take(never)).toEqual([old, recent]);

      // A linked account is refused: its events are released, not dropped.
      const refused = await runCli(['stripe', 'quarantine', 'drop', never, linked, '--yes'], gh.env);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain(`${linked} is linked to community ${linkedCommunity}`);
      expect(await quarantine.take(never)).toEqual([old, recent]);
      // So are the platform's own events while a community is named for them.
      const platform = await runCli(['stripe', 'quarantine', 'drop', 'platform', '--yes'], {
        ...gh.env,
        STRIPE_PLATFORM_COMMUNITY_ID: linkedCommunity,
      });
      expect(platform.code).toBe(1);
      expect(platform.stderr).toContain(`STRIPE_PLATFORM_COMMUNITY_ID names community ${linkedCommunity}`);

      const dropped = await runCli(
        ['stripe', 'quarantine', 'drop', never, '--older-than', '30d', '--yes', '--save', saved],
        gh.env,
      );
      expect({ code: dropped.code, stderr: dropped.stderr }).toEqual({ code: 0, stderr: '' });
      expect(dropped.stdout).toContain(`dropped 1 event(s) created before`);
      expect(
        readFileSync(saved, 'utf8')
          .trim()
          .split('\n')
          .map((line) => JSON.parse(line) as unknown),
      ).toEqual([old]);
      expect(await quarantine.take(never)).toEqual([recent]);

      // The copy is never overwritten: with the file there, nothing more is dropped.
      const again = await runCli(['stripe', 'quarantine', 'drop', never, '--yes', '--save', saved], gh.env);
      expect(again.code).toBe(1);
      expect(again.stderr).toContain('the file exists');
      expect(await quarantine.take(never)).toEqual([recent]);
      expect(readFileSync(saved, 'utf8').trim().split('\n')).toHaveLength(1);

      // Every account no community has linked, without naming them; a linked account's held events
      // stay for the sweep to release.
      const none = await runCli(['stripe', 'quarantine', 'drop', '--yes'], gh.env);
      expect(none.code).toBe(1);
      expect(none.stderr).toContain('or pass --unlinked');
      await quarantine.put(linked, kit.invoicePaid({}, { account: linked, created: now - 30 }));
      const unlinked = await runCli(
        ['stripe', 'quarantine', 'drop', '--unlinked', '--yes', '--json'],
        gh.env,
      );
      expect({ code: unlinked.code, stderr: unlinked.stderr }).toEqual({ code: 0, stderr: '' });
      const report = JSON.parse(unlinked.stdout) as { held: { accountId: string }[]; dropped: number };
      expect(report.held.map((a) => a.accountId)).toEqual([never]);
      expect(report.dropped).toBe(1);
      expect(await quarantine.take(never)).toEqual([]);
    } finally {
      await quarantine.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 90_000);

  it('leaves the events of an account linked while it drops them, for that community', async () => {
    const now = Math.floor(Date.now() / 1000);
    const racing = `acct_racing${Date.now()}`;
    const held = kit.invoicePaid({}, { account: racing, created: now - 60 });
    const signed = kit.signPayload(held, WEBHOOK_SECRET, now);
    expect((await postWebhook(gh.server.url, signed.rawBody, signed.header)).body).toMatchObject({
      quarantined: true,
    });
    // The account's lock held here, as a link holds it: the link, then the drop, queue behind it.
    const lockKey = `gatehouse:stripe-account:${racing}`;
    const admin = new Client({ connectionString: gh.db.url });
    await admin.connect();
    const waiting = async (n: number) => {
      const { rows } = await admin.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_locks l JOIN pg_database d ON d.oid = l.database
          WHERE l.locktype = 'advisory' AND NOT l.granted AND d.datname = current_database()`,
      );
      return rows[0].n >= n ? true : undefined;
    };
    try {
      await admin.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [lockKey]);
      const gql = graphqlClient(gh.server.url, adminToken(jwtSecret));
      const linking = gql.createCommunity('Racing', racing);
      await eventually(() => waiting(1), 10_000, 50);
      const dropping = runCli(['stripe', 'quarantine', 'drop', racing, '--yes', '--json'], gh.env);
      await eventually(() => waiting(2), 30_000, 50);
      await admin.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [lockKey]);
      const communityId = await linking;
      const dropped = await dropping;
      expect(dropped.code).toBe(0);
      expect(dropped.stderr).toContain(
        `${racing} is linked to community ${communityId} since this command looked`,
      );
      expect(JSON.parse(dropped.stdout)).toMatchObject({ dropped: 0, linkedMeanwhile: [racing] });
      // The event went to the community, as the link released it.
      await eventually(
        async () => ((await gql.ledgerEvents(communityId)).some((e) => e.id === held.id) ? true : undefined),
        15_000,
        250,
      );
    } finally {
      await admin.end();
    }
  }, 90_000);

  // Last: it stops the suite's server.
  it('releases events held for accounts linked by now, which the links’ own releases missed', async () => {
    const now = Math.floor(Date.now() / 1000);
    const early = kit.invoicePaid({}, { account, created: now - 60 });
    const late = kit.customerSubscriptionCreated(
      { metadata: { gatehouse_member_id: 'mem_swept' } },
      { account, created: now - 30 },
    );
    const signed = kit.signPayload(early, WEBHOOK_SECRET, now);
    expect((await postWebhook(gh.server.url, signed.rawBody, signed.header)).body).toMatchObject({
      quarantined: true,
    });
    const gql = graphqlClient(gh.server.url, adminToken(jwtSecret));
    const communityId = await gql.createCommunity('Swept', account);
    // Released by the link, and shown once projected.
    await eventually(
      async () => ((await gql.ledgerEvents(communityId)).some((e) => e.id === early.id) ? true : undefined),
      15_000,
      250,
    );

    // The server stops with one more event held for the account, as a webhook that found it unknown
    // a moment before the link would have held it after the release had looked.
    expect(await gh.server.stop('SIGINT')).toBe(0);
    const quarantine = new PostgresQuarantineStore({ connectionString: gh.db.url });
    let follower: ServerProcess | undefined;
    try {
      await quarantine.put(account, late);
      // A server that does not project leaves the sweep to the one that does: past the moment it
      // would have swept, the event is still held.
      const following = await startServerProcess({ ...gh.env, GATEHOUSE_PROJECTOR: 'off' });
      if (!following.ok) throw new Error(`the following server did not start:\n${following.output}`);
      follower = following.server;
      await new Promise((resolve) => setTimeout(resolve, 2_500));
      expect(await quarantine.heldAmong([account])).toEqual([account]);

      const started = await startServerProcess(gh.env);
      if (!started.ok) throw new Error(`the server did not start again:\n${started.output}`);
      restarted = started.server;
      const again = graphqlClient(restarted.url, adminToken(jwtSecret));
      const ids = await eventually(
        async () => {
          const found = (await again.ledgerEvents(communityId)).map((e) => e.id);
          return found.includes(late.id) ? found : undefined;
        },
        15_000,
        250,
      );
      expect(ids.filter((id) => id === early.id || id === late.id)).toEqual([early.id, late.id]);
      // And the event the first test's link could not release.
      await eventually(
        async () =>
          (await again.ledgerEvents(unreleasedCommunity)).some((e) => e.id === unreleasedHeld)
            ? true
            : undefined,
        15_000,
        250,
      );
      expect(await quarantine.heldAmong([account, unreleased])).toEqual([]);
      await restarted.says('quarantined Stripe events of a linked account released');
      expect(follower.output()).not.toContain('quarantined Stripe events of a linked account released');
    } finally {
      await follower?.stop('SIGINT');
      await quarantine.close();
    }
  }, 90_000);
});
