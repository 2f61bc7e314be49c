import { chainHash, type EventEnvelope } from '@gatehouse/ledger';

/**
 * The envelope as the archive stores it: times normalised to `Date#toISOString()` (millisecond
 * precision, `Z`), so the hash can be recomputed from the row. The ledger writes its own times in
 * that form, so for those envelopes the archive's links equal the ledger's `chainHash`.
 */
export function archivedEnvelope(event: EventEnvelope): EventEnvelope {
  return {
    id: event.id,
    type: event.type,
    communityId: event.communityId,
    subject: event.subject ?? null,
    occurredAt: new Date(event.occurredAt).toISOString(),
    recordedAt: new Date(event.recordedAt).toISOString(),
    source: event.source,
    actor: event.actor ?? null,
    causationId: event.causationId ?? null,
    correlationId: event.correlationId ?? null,
    schemaVersion: event.schemaVersion,
    data: event.data,
  };
}

/** The archive's link for one event: the ledger's `chainHash` over the normalised envelope. */
export function archiveHash(prevHash: string, event: EventEnvelope): string {
  return chainHash(prevHash, archivedEnvelope(event));
}
