import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Parked Stripe events are found by the keys a batch learns (`keys && $1`), not by reading every
 * parked event of the community: the cost of a batch no longer grows with what is parked.
 */
export class StripeUnlinkedKeys1764230400800 implements MigrationInterface {
  name = 'StripeUnlinkedKeys1764230400800';

  async up(q: QueryRunner): Promise<void> {
    // Without fastupdate: a pending list of recent insertions is read linearly by every search, and
    // a burst of parked events (an import, say) made each batch's lookup cost seconds.
    await q.query(
      'CREATE INDEX stripe_unlinked_keys ON stripe_unlinked USING gin (keys) WITH (fastupdate = off)',
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP INDEX stripe_unlinked_keys');
  }
}
