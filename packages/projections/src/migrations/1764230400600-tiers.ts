import type { MigrationInterface, QueryRunner } from 'typeorm';

export class Tiers1764230400600 implements MigrationInterface {
  name = 'Tiers1764230400600';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE tier_links (
        community_id text NOT NULL,
        stripe_key text NOT NULL,
        member_id text NOT NULL,
        PRIMARY KEY (community_id, stripe_key)
      )`);
    await q.query(`
      CREATE TABLE tier_change_requests (
        community_id text NOT NULL,
        event_id text NOT NULL,
        member_id text NOT NULL,
        subscription_id text NOT NULL,
        timing text NOT NULL,
        proration_date timestamptz NOT NULL,
        data jsonb NOT NULL,
        recorded_at timestamptz NOT NULL,
        PRIMARY KEY (community_id, event_id)
      )`);
    await q.query(
      `CREATE INDEX tier_change_requests_subscription ON tier_change_requests (community_id, subscription_id, proration_date)`,
    );
    await q.query(`
      CREATE TABLE proration_outcomes (
        community_id text NOT NULL,
        invoice_id text NOT NULL,
        member_id text,
        customer_id text,
        subscription_id text,
        from_stripe_price_id text,
        to_stripe_price_id text,
        credit integer NOT NULL,
        charge integer NOT NULL,
        net integer NOT NULL,
        currency text NOT NULL,
        effective_at timestamptz NOT NULL,
        preview_matched boolean,
        request_event_id text,
        caused_by jsonb NOT NULL,
        PRIMARY KEY (community_id, invoice_id)
      )`);
    await q.query(
      `CREATE INDEX proration_outcomes_member ON proration_outcomes (community_id, member_id, effective_at)`,
    );
    await q.query(`
      CREATE TABLE price_migration_members (
        community_id text NOT NULL,
        migration_id text NOT NULL,
        subscription_id text NOT NULL,
        member_id text NOT NULL,
        kind text NOT NULL,
        timing text NOT NULL,
        from_stripe_price_id text NOT NULL,
        to_price_id text NOT NULL,
        to_stripe_price_id text NOT NULL,
        effective_at timestamptz NOT NULL,
        event_id text NOT NULL,
        PRIMARY KEY (community_id, migration_id, subscription_id)
      )`);
    await q.query(
      `CREATE INDEX price_migration_members_member ON price_migration_members (community_id, member_id)`,
    );
    await q.query(`
      CREATE TABLE price_migrations (
        community_id text NOT NULL,
        migration_id text NOT NULL,
        kind text NOT NULL,
        scheduled integer NOT NULL DEFAULT 0,
        skipped integer NOT NULL DEFAULT 0,
        completed_at timestamptz,
        PRIMARY KEY (community_id, migration_id)
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    for (const t of [
      'price_migrations',
      'price_migration_members',
      'proration_outcomes',
      'tier_change_requests',
      'tier_links',
    ]) {
      await q.query(`DROP TABLE ${t}`);
    }
  }
}
