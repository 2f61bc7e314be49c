import type { MigrationInterface, QueryRunner } from 'typeorm';

export class LedgerEvents1764230400001 implements MigrationInterface {
  name = 'LedgerEvents1764230400001';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE ledger_events (
        id text PRIMARY KEY,
        community_id text NOT NULL,
        sequence bigint NOT NULL,
        position text NOT NULL,
        type text NOT NULL,
        subject text,
        source text NOT NULL,
        actor text,
        causation_id text,
        correlation_id text,
        occurred_at timestamptz NOT NULL,
        recorded_at timestamptz NOT NULL,
        schema_version integer NOT NULL,
        data jsonb NOT NULL,
        prev_hash text NOT NULL,
        hash text NOT NULL,
        CONSTRAINT ledger_events_community_sequence_key UNIQUE (community_id, sequence)
      )`);
    await q.query(
      `CREATE INDEX ledger_events_community_type_idx ON ledger_events (community_id, type, sequence)`,
    );
    await q.query(`CREATE INDEX ledger_events_recorded_at_idx ON ledger_events (recorded_at)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE ledger_events`);
  }
}
