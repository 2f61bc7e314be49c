import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The archive keeps each event's payload as `json`, the text the projector writes, like the ledger's
 * own table: `jsonb` encoded every payload into its binary form on insert (which also compresses
 * worse: a Stripe event's row no longer fitted in its page and went to TOAST) and decoded it back to
 * text on every read, and nothing queries inside it. Rewrites the table once; lz4 is set again, as
 * the rewrite does not carry the column's compression over on every server version.
 */
export class LedgerEventsJson1764230401100 implements MigrationInterface {
  name = 'LedgerEventsJson1764230401100';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE ledger_events ALTER COLUMN data TYPE json USING data::json`);
    await q.query(`
      DO $$
      BEGIN
        ALTER TABLE ledger_events ALTER COLUMN data SET COMPRESSION lz4;
      EXCEPTION WHEN feature_not_supported THEN
        RAISE NOTICE 'lz4 is not available on this server: ledger_events.data keeps pglz';
      END $$`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE ledger_events ALTER COLUMN data TYPE jsonb USING data::jsonb`);
  }
}
