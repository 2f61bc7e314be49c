import type { MigrationInterface, QueryRunner } from 'typeorm';

export class Commerce1764230400300 implements MigrationInterface {
  name = 'Commerce1764230400300';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE commerce_promo_codes (
        community_id text NOT NULL,
        promo_code_id text NOT NULL,
        code_key text NOT NULL,
        stripe_promotion_code_id text NOT NULL,
        data jsonb NOT NULL,
        PRIMARY KEY (community_id, promo_code_id)
      )`);
    await q.query(
      `CREATE UNIQUE INDEX commerce_promo_codes_code_key ON commerce_promo_codes (community_id, code_key)`,
    );
    await q.query(`
      CREATE TABLE commerce_promo_redemptions (
        community_id text NOT NULL,
        stripe_promotion_code_id text NOT NULL,
        redemption_key text NOT NULL,
        event_id text NOT NULL,
        PRIMARY KEY (community_id, stripe_promotion_code_id, redemption_key)
      )`);
    await q.query(`
      CREATE TABLE commerce_invitation_links (
        community_id text NOT NULL,
        link_id text NOT NULL,
        token text NOT NULL,
        data jsonb NOT NULL,
        uses integer NOT NULL DEFAULT 0,
        PRIMARY KEY (community_id, link_id)
      )`);
    await q.query(
      `CREATE UNIQUE INDEX commerce_invitation_links_token_key ON commerce_invitation_links (token)`,
    );
    await q.query(`
      CREATE TABLE commerce_invitation_redemptions (
        community_id text NOT NULL,
        redemption_id text NOT NULL,
        link_id text NOT NULL,
        member_id text NOT NULL,
        outcome text NOT NULL,
        event_id text NOT NULL,
        PRIMARY KEY (community_id, redemption_id)
      )`);
    await q.query(`
      CREATE TABLE commerce_checkouts (
        community_id text NOT NULL,
        checkout_id text NOT NULL,
        member_id text NOT NULL,
        price_id text NOT NULL,
        stripe_checkout_session_id text NOT NULL,
        data jsonb NOT NULL,
        started_at timestamptz NOT NULL,
        completed_at timestamptz,
        PRIMARY KEY (community_id, checkout_id)
      )`);
    await q.query(
      `CREATE INDEX commerce_checkouts_session_idx ON commerce_checkouts (community_id, stripe_checkout_session_id)`,
    );
    await q.query(
      `CREATE INDEX commerce_checkouts_member_idx ON commerce_checkouts (community_id, member_id)`,
    );
    await q.query(`
      CREATE TABLE commerce_customers (
        community_id text NOT NULL,
        member_id text NOT NULL,
        stripe_customer_id text NOT NULL,
        event_id text NOT NULL,
        PRIMARY KEY (community_id, member_id)
      )`);
    await q.query(`
      CREATE TABLE commerce_trials (
        community_id text NOT NULL,
        member_id text NOT NULL,
        stripe_subscription_id text NOT NULL,
        price_id text NOT NULL,
        event_id text NOT NULL,
        PRIMARY KEY (community_id, member_id, stripe_subscription_id)
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    for (const t of [
      'commerce_trials',
      'commerce_customers',
      'commerce_checkouts',
      'commerce_invitation_redemptions',
      'commerce_invitation_links',
      'commerce_promo_redemptions',
      'commerce_promo_codes',
    ]) {
      await q.query(`DROP TABLE ${t}`);
    }
  }
}
