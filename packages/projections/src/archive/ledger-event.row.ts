import { Column, Entity, PrimaryColumn } from 'typeorm';

/** The archive's copy of one ledger event, numbered and hash-chained per community. */
@Entity({ name: 'ledger_events' })
export class LedgerEventRow {
  @PrimaryColumn({ type: 'text' })
  id!: string;

  @Column({ name: 'community_id', type: 'text' })
  communityId!: string;

  /** 1, 2, 3… per community, in log order. */
  @Column({ type: 'bigint' })
  sequence!: string;

  @Column({ type: 'text' })
  position!: string;

  @Column({ type: 'text' })
  type!: string;

  @Column({ type: 'text', nullable: true })
  subject!: string | null;

  @Column({ type: 'text' })
  source!: string;

  @Column({ type: 'text', nullable: true })
  actor!: string | null;

  @Column({ name: 'causation_id', type: 'text', nullable: true })
  causationId!: string | null;

  @Column({ name: 'correlation_id', type: 'text', nullable: true })
  correlationId!: string | null;

  @Column({ name: 'occurred_at', type: 'timestamptz' })
  occurredAt!: Date;

  @Column({ name: 'recorded_at', type: 'timestamptz' })
  recordedAt!: Date;

  @Column({ name: 'schema_version', type: 'integer' })
  schemaVersion!: number;

  @Column({ type: 'json' })
  data!: unknown;

  @Column({ name: 'prev_hash', type: 'text' })
  prevHash!: string;

  @Column({ type: 'text' })
  hash!: string;
}
