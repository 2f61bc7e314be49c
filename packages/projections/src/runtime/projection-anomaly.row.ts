import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';

/** A recorded fact a projection could not apply; the event was skipped, never retried silently. */
@Entity({ name: 'projection_anomalies' })
export class ProjectionAnomalyRow {
  @PrimaryGeneratedColumn({ type: 'bigint' })
  id!: string;

  @Column({ type: 'text' })
  projection!: string;

  @Column({ name: 'event_id', type: 'text' })
  eventId!: string;

  @Column({ type: 'text' })
  position!: string;

  @Column({ type: 'text' })
  reason!: string;

  @Column({ name: 'recorded_at', type: 'timestamptz' })
  recordedAt!: Date;
}
