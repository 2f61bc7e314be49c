import type { MigrationInterface, QueryRunner } from 'typeorm';

/** The installment-plan follower: its ledger checkpoint and the `cancel_at` requests it has made. */
export class InstallmentPlans1764230400700 implements MigrationInterface {
  name = 'InstallmentPlans1764230400700';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE ledger_follower_checkpoints (
        consumer text PRIMARY KEY,
        position text NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`
      CREATE TABLE installment_plan_requests (
        community_id text NOT NULL,
        subscription_id text NOT NULL,
        installments int NOT NULL,
        cancel_at timestamptz NOT NULL,
        event_id text NOT NULL,
        outcome text NOT NULL,
        requested_at timestamptz NOT NULL,
        PRIMARY KEY (community_id, subscription_id)
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE installment_plan_requests');
    await q.query('DROP TABLE ledger_follower_checkpoints');
  }
}
