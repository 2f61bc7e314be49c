import { Column, Entity, PrimaryColumn } from 'typeorm';

/** Where a projection has got to in the ledger; written in the same transaction as its rows. */
@Entity({ name: 'projection_checkpoints' })
export class ProjectionCheckpointRow {
  @PrimaryColumn({ type: 'text' })
  name!: string;

  /** The ledger checkpoint (`Ledger.advance` folded over every applied event); null = nothing yet. */
  @Column({ type: 'text', nullable: true })
  position!: string | null;

  @Column({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}
