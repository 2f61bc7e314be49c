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

      const n = fresh.length;
      const cols = {
        id: new Array<string>(n),
        community: new Array<string>(n),
        sequence: new Array<number>(n),
        position: new Array<string>(n),
        type: new Array<string>(n),
        subject: new Array<string | null>(n),
        source: new Array<string>(n),
        actor: new Array<string | null>(n),
        causation: new Array<string | null>(n),
        correlation: new Array<string | null>(n),
        occurred: new Array<string>(n),
        recorded: new Array<string>(n),
        version: new Array<number>(n),
        data: new Array<string>(n),
        prev: new Array<string>(n),
        hash: new Array<string>(n),
      };
      fresh.forEach((e, i) => {
        validTime(e.occurredAt, 'occurredAt', e.id);
        validTime(e.recordedAt, 'recordedAt', e.id);
        const envelope = archivedEnvelope(e);
        const prev = head.get(e.communityId) ?? { sequence: 0, hash: GENESIS_HASH };
        const hash = chainHash(prev.hash, envelope);
        head.set(e.communityId, { sequence: prev.sequence + 1, hash });
        cols.id[i] = e.id;
        cols.community[i] = e.communityId;
        cols.sequence[i] = prev.sequence + 1;
        cols.position[i] = e.position;
        cols.type[i] = e.type;
        cols.subject[i] = envelope.subject;
        cols.source[i] = e.source;
        cols.actor[i] = envelope.actor;
        cols.causation[i] = envelope.causationId;
        cols.correlation[i] = envelope.correlationId;
        cols.occurred[i] = envelope.occurredAt;
        cols.recorded[i] = envelope.recordedAt;
        cols.version[i] = e.schemaVersion;
        cols.data[i] = JSON.stringify(e.data ?? null);
        cols.prev[i] = prev.hash;
        cols.hash[i] = hash;
      });
      await tx.query(
        `INSERT INTO ledger_events (id, community_id, sequence, position, type, subject, source, actor,
           causation_id, correlation_id, occurred_at, recorded_at, schema_version, data, prev_hash, hash)
         SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[],
           $7::text[], $8::text[], $9::text[], $10::text[], $11::timestamptz[], $12::timestamptz[],
           $13::int[], $14::jsonb[], $15::text[], $16::text[])`,
        [
          cols.id,
          cols.community,
          cols.sequence,
          cols.position,
          cols.type,
          cols.subject,
          cols.source,
          cols.actor,
          cols.causation,
          cols.correlation,
          cols.occurred,
          cols.recorded,
          cols.version,
          cols.data,
          cols.prev,
          cols.hash,
        ],
      );
    },
  };
}
