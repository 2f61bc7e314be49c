import type { MigrationInterface, QueryRunner } from 'typeorm';

export class MembershipAccess1764230400200 implements MigrationInterface {
  name = 'MembershipAccess1764230400200';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE member_states (
        community_id text NOT NULL,
        member_id text NOT NULL,
        email text,
        doc json NOT NULL,
        history_count integer NOT NULL DEFAULT 0,
        PRIMARY KEY (community_id, member_id)
      )`);
    await q.query(
      `CREATE INDEX member_states_email_idx ON member_states (community_id, email) WHERE email IS NOT NULL`,
    );
    await q.query(`
      CREATE TABLE member_facts (
        community_id text NOT NULL,
        member_id text NOT NULL,
        event_id text NOT NULL,
        observed_at timestamptz NOT NULL,
        fact json NOT NULL,
        PRIMARY KEY (community_id, member_id, event_id)
      )`);
    await q.query(`
      CREATE TABLE stripe_links (
        community_id text NOT NULL,
        stripe_key text NOT NULL,
        member_id text NOT NULL,
        PRIMARY KEY (community_id, stripe_key)
      )`);
    await q.query(`
      CREATE TABLE stripe_unlinked (
        community_id text NOT NULL,
        event_id text NOT NULL,
        keys text[] NOT NULL,
        reading json NOT NULL,
        occurred_at timestamptz NOT NULL,
        recorded_at timestamptz NOT NULL,
        reason text NOT NULL,
        PRIMARY KEY (community_id, event_id)
      )`);
    await q.query(`CREATE TABLE access_catalogs (community_id text PRIMARY KEY, state jsonb NOT NULL)`);
    await q.query(`
      CREATE TABLE access_grants (
        id text PRIMARY KEY,
        community_id text NOT NULL,
        member_id text NOT NULL,
        resource_kind text NOT NULL,
        resource_id text,
        source text NOT NULL,
        valid_from timestamptz NOT NULL,
        valid_until timestamptz,
        suspended boolean NOT NULL,
        caused_by text NOT NULL,
        recorded_at timestamptz NOT NULL,
        superseded_at timestamptz
      )`);
    await q.query(
      `CREATE INDEX access_grants_current_idx ON access_grants (community_id, member_id) WHERE superseded_at IS NULL`,
    );
    await q.query(
      `CREATE INDEX access_grants_known_idx ON access_grants (community_id, member_id, recorded_at)`,
    );
    await q.query(`
      CREATE TABLE access_changes (
        id text NOT NULL,
        community_id text NOT NULL,
        member_id text NOT NULL,
        ordinal integer NOT NULL,
        resource_kind text NOT NULL,
        resource_id text,
        change text NOT NULL,
        source text NOT NULL,
        effective_at timestamptz NOT NULL,
        recorded_at timestamptz NOT NULL,
        valid_until timestamptz,
        actor text,
        caused_by text NOT NULL,
        event_id text NOT NULL,
        PRIMARY KEY (community_id, member_id, ordinal)
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    for (const t of [
      'access_changes',
      'access_grants',
      'access_catalogs',
      'stripe_unlinked',
      'stripe_links',
      'member_facts',
      'member_states',
    ]) {
      await q.query(`DROP TABLE ${t}`);
    }
  }
}
