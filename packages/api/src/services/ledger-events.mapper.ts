import type { RecordedEvent } from '@gatehouse/ledger';
import type { ArchivedEvent } from '@gatehouse/projections';
import type { LedgerEvent } from '../graphql/types';

/** An archived ledger event as GraphQL shows it; `position` is the per-community sequence. */
export function toLedgerEvent(e: ArchivedEvent | (RecordedEvent & { sequence?: number })): LedgerEvent {
  return {
    id: e.id,
    position: e.sequence !== undefined ? String(e.sequence) : e.position,
    type: e.type,
    communityId: e.communityId,
    subject: e.subject,
    source: e.source,
    actor: e.actor,
    occurredAt: new Date(e.occurredAt),
    recordedAt: new Date(e.recordedAt),
    data: e.data,
  };
}
