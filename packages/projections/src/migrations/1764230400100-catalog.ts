import type { MigrationInterface, QueryRunner } from 'typeorm';

export class Catalog1764230400100 implements MigrationInterface {
  name = 'Catalog1764230400100';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE catalog_communities (
        community_id text PRIMARY KEY,
        name text NOT NULL,
        region text NOT NULL,
        stripe_account_id text,
        state jsonb NOT NULL,
        version integer NOT NULL
      )`);
    await q.query(
      `CREATE UNIQUE INDEX catalog_communities_stripe_account_key ON catalog_communities (stripe_account_id) WHERE stripe_account_id IS NOT NULL`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE catalog_communities`);
  }
}
