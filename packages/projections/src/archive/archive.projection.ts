import type { RecordedEvent } from '@gatehouse/ledger';
import type { Projection, ProjectionTx } from '../runtime/projection';
import { ProjectionAnomalyError } from '../runtime/projector.errors';
import { chainHash, GENESIS_HASH } from '@gatehouse/ledger';
import { archivedEnvelope } from './archive-hash';

export const ARCHIVE_PROJECTION = 'ledger-archive';

function validTime(value: string, field: string, id: string): void {
  if (typeof value !== 'string' || Number.isNaN(Date.parse(value))) {
    throw new ProjectionAnomalyError(`Event ${id} has an unreadable ${field}: ${String(value)}`);
  }
}

/**
 * Copies every ledger event, in log order, into `ledger_events`, numbering and hash-chaining each
 * community's events. An id seen before is ignored: the first copy wins.
 */
export function archiveProjection(): Projection {
  return {
    name: ARCHIVE_PROJECTION,
    tables: ['ledger_events'],
    async apply(tx: ProjectionTx, events: readonly RecordedEvent[]): Promise<void> {
      const unique = new Map<string, RecordedEvent>();
      for (const e of events) if (!unique.has(e.id)) unique.set(e.id, e);
      const existing = await tx.query<{ id: string }>(
        `SELECT id FROM ledger_events WHERE id = ANY($1::text[])`,
        [[...unique.keys()]],
      );
      for (const { id } of existing) unique.delete(id);
      if (unique.size === 0) return;

      const fresh = [...unique.values()];
      const communities = [...new Set(fresh.map((e) => e.communityId))];
      const heads = await tx.query<{ community_id: string; sequence: string; hash: string }>(
        `SELECT c.community_id, h.sequence, h.hash
           FROM unnest($1::text[]) AS c(community_id)
           CROSS JOIN LATERAL (
             SELECT sequence, hash FROM ledger_events e
              WHERE e.community_id = c.community_id ORDER BY sequence DESC LIMIT 1) h`,
        [communities],
      );
      const head = new Map<string, { sequence: number; hash: string }>();
      for (const h of heads) head.set(h.community_id, { sequence: Number(h.sequence), hash: h.hash });

      // One JSON document for the batch: payloads are serialized once, natively, rather than each
      // escaped again into a PostgreSQL array literal.
      const rows = fresh.map((e) => {
        validTime(e.occurredAt, 'occurredAt', e.id);
        validTime(e.recordedAt, 'recordedAt', e.id);
        const envelope = archivedEnvelope(e);
        const prev = head.get(e.communityId) ?? { sequence: 0, hash: GENESIS_HASH };
        const hash = chainHash(prev.hash, envelope);
        head.set(e.communityId, { sequence: prev.sequence + 1, hash });
        return {
          id: e.id,
          community_id: e.communityId,
          sequence: prev.sequence + 1,
          position: e.position,
          type: e.type,
          subject: envelope.subject,
          source: e.source,
          actor: envelope.actor,
          causation_id: envelope.causationId,
          correlation_id: envelope.correlationId,
          occurred_at: envelope.occurredAt,
          recorded_at: envelope.recordedAt,
          schema_version: e.schemaVersion,
          data: e.data ?? null,
          prev_hash: prev.hash,
          hash,
        };
      });
      await tx.query(
        `INSERT INTO ledger_events (id, community_id, sequence, position, type, subject, source, actor,
           causation_id, correlation_id, occurred_at, recorded_at, schema_version, data, prev_hash, hash)
         SELECT r.id, r.community_id, r.sequence, r.position, r.type, r.subject, r.source, r.actor,
           r.causation_id, r.correlation_id, r.occurred_at, r.recorded_at, r.schema_version,
           coalesce(r.data, 'null'::json), r.prev_hash, r.hash
           FROM json_to_recordset($1::json) AS r(id text, community_id text, sequence bigint,
             position text, type text, subject text, source text, actor text, causation_id text,
             correlation_id text, occurred_at timestamptz, recorded_at timestamptz, schema_version int,
             data json, prev_hash text, hash text)`,
        [JSON.stringify(rows)],
      );
    },
  };
}
