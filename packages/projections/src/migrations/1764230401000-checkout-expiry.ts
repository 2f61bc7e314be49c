import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A Checkout session Stripe expired unpaid: when it held a use of an invitation link, the use is
 * given back (the redemption's outcome becomes RELEASED).
 */
export class CheckoutExpiry1764230401000 implements MigrationInterface {
  name = 'CheckoutExpiry1764230401000';

  async up(q: QueryRunner): Promise<void> {
    await q.query('ALTER TABLE commerce_checkouts ADD COLUMN expired_at timestamptz');
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('ALTER TABLE commerce_checkouts DROP COLUMN expired_at');
  }
}
