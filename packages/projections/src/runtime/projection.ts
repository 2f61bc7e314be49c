import type { RecordedEvent } from '@gatehouse/ledger';
import type { EntityManager } from 'typeorm';
import type { PeerMessage } from './projector-lease';

/** The transaction a batch runs in: TypeORM for convenience, plain SQL for hot paths, one connection. */
export type ProjectionTx = {
  readonly manager: EntityManager;
  query<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  /**
   * Tells the other servers on these read models, if this transaction commits (live batches of a
   * projector with a lease; a no-op otherwise).
   */
  tellPeers?(message: PeerMessage): void;
};

/**
 * A read model folded from the ledger. `apply` receives a batch in log order and writes through `tx`;
 * the runtime writes the checkpoint in the same transaction. Projections keep no state between
 * batches outside the database (a batch may be rolled back and replayed event by event).
 * Tables are referenced unqualified: a rebuild points the search_path at a shadow schema.
 */
export interface Projection {
  readonly name: string;
  /** Only these event types reach `apply` (the checkpoint still moves past the others). */
  readonly types?: readonly string[];
  /** Tables this projection owns and fully derives from the ledger (what a rebuild recreates). */
  readonly tables: readonly string[];
  apply(tx: ProjectionTx, events: readonly RecordedEvent[]): Promise<void>;
}
