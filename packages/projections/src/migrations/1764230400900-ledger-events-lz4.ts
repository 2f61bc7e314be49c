import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The archive keeps each event's payload, a few kilobytes of JSON compressed on every insert: lz4
 * compresses it several times faster than the default pglz (the ledger's own table already uses
 * it). Servers built without lz4 keep pglz. Rows already written keep the compression they have.
 */
export class LedgerEventsLz41764230400900 implements MigrationInterface {
  name = 'LedgerEventsLz41764230400900';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      DO $$
      BEGIN
        ALTER TABLE ledger_events ALTER COLUMN data SET COMPRESSION lz4;
      EXCEPTION WHEN feature_not_supported THEN
        RAISE NOTICE 'lz4 is not available on this server: ledger_events.data keeps pglz';
      END $$`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('ALTER TABLE ledger_events ALTER COLUMN data SET COMPRESSION default');
  }
}
