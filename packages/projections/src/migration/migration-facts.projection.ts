import type { RecordedEvent } from '@gatehouse/ledger';
import type { Projection, ProjectionTx } from '../runtime/projection';
import { asStripeShaped } from './migration-fact.translate';

/**
 * Lets a projection that folds Stripe facts (memberships and access) fold migration facts too: each
 * imported subscription or member is handed over as the Stripe reading it stands for. The name,
 * tables and checkpoint stay the wrapped projection's.
 */
export class WithMigrationFacts implements Projection {
  readonly name: string;
  readonly tables: readonly string[];
  readonly types?: readonly string[];

  constructor(private readonly inner: Projection) {
    this.name = inner.name;
    this.tables = inner.tables;
    if (inner.types) this.types = [...inner.types, 'MemberImported', 'SubscriptionImported'];
  }

  apply(tx: ProjectionTx, events: readonly RecordedEvent[]): Promise<void> {
    return this.inner.apply(tx, events.flatMap(asStripeShaped));
  }
}

export function withMigrationFacts(projection: Projection): Projection {
  return new WithMigrationFacts(projection);
}
