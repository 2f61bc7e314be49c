import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * How far the reconciler of `GATEHOUSE_RECONCILE_INTERVAL` has listed each Stripe account's events:
 * when the last run that listed it to the end started. Kept in the database of the account's
 * community's region (the platform's, `platform`, in the default region's), so that a restarted
 * server, or the next one to project, lists from there instead of a first window.
 */
export class StripeReconcileWindows1764230401200 implements MigrationInterface {
  name = 'StripeReconcileWindows1764230401200';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TABLE stripe_reconcile_windows (
      account     text        PRIMARY KEY,
      listed_from timestamptz NOT NULL
    )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE stripe_reconcile_windows');
  }
}
