import { createHash } from 'node:crypto';
import type { EventEnvelope } from '@gatehouse/ledger';
import canonicalize from 'canonicalize';

/** The previous hash of a community's first archived event. */
export const GENESIS_HASH = '0'.repeat(64);

/**
 * The envelope as the archive stores it: times normalised to `Date#toISOString()` (millisecond
 * precision, `Z`), so the hash can be recomputed from the row. For envelopes whose times are
 * already in that form (the ledger writes them so) this is the ledger's own chain definition.
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

/** sha256 hex of the previous hash followed by the canonical JSON (RFC 8785) of the envelope. */
export function archiveHash(prevHash: string, envelope: EventEnvelope): string {
  const text = canonicalize(envelope);
  if (text === undefined) throw new TypeError(`Event ${envelope.id} cannot be canonicalized`);
  return createHash('sha256').update(prevHash, 'utf8').update(text, 'utf8').digest('hex');
}
