import type { MigrationInterface, QueryRunner } from 'typeorm';

export class ProjectorRuntime1764230400000 implements MigrationInterface {
  name = 'ProjectorRuntime1764230400000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE projection_checkpoints (
        name text PRIMARY KEY,
        position text,
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`
      CREATE TABLE projection_anomalies (
        id bigserial PRIMARY KEY,
        projection text NOT NULL,
        event_id text NOT NULL,
        position text NOT NULL,
        reason text NOT NULL,
        recorded_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT projection_anomalies_projection_event_key UNIQUE (projection, event_id)
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE projection_anomalies`);
    await q.query(`DROP TABLE projection_checkpoints`);
  }
}
