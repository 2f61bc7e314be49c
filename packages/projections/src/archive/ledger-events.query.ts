import { BadUserInputError } from '@gatehouse/domain';
import type { RecordedEvent } from '@gatehouse/ledger';
import type { DataSource } from 'typeorm';
import { GENESIS_HASH } from '@gatehouse/ledger';
import { archiveHash } from './archive-hash';

/** An archived event: the ledger envelope plus its community sequence and chain links. */
export type ArchivedEvent = RecordedEvent & { sequence: number; prevHash: string; hash: string };

export type Connection<T> = {
  edges: { cursor: string; node: T }[];
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
};

export type LedgerEventsPageArgs = {
  communityId: string;
  /** Opaque cursor from a previous page's `endCursor` or an edge. */
  after?: string | null;
  /** 1..500, default 50. */
  first?: number | null;
  types?: readonly string[] | null;
};

export type ArchiveStreamOptions = {
  communityId?: string;
  /** Inclusive lower bound on `recordedAt`. */
  since?: Date | string;
  /** Exclusive upper bound on `recordedAt`. */
  until?: Date | string;
  types?: readonly string[];
  pageSize?: number;
};

export type BrokenArchiveLink = {
  communityId: string;
  sequence: number;
  eventId: string;
  /** What the chain requires at this link (a hash, or the sequence number for a gap). */
  expected: string;
  actual: string;
  reason: 'hash' | 'prev_hash' | 'sequence';
};

export const MAX_PAGE = 500;
export const DEFAULT_PAGE = 50;

type Row = {
  id: string;
  community_id: string;
  sequence: string;
  position: string;
  type: string;
  subject: string | null;
  source: RecordedEvent['source'];
  actor: string | null;
  causation_id: string | null;
  correlation_id: string | null;
  occurred_at: Date;
  recorded_at: Date;
  schema_version: number;
  data: unknown;
  prev_hash: string;
  hash: string;
};

const COLUMNS = `id, community_id, sequence, position, type, subject, source, actor, causation_id,
  correlation_id, occurred_at, recorded_at, schema_version, data, prev_hash, hash`;

function toEvent(r: Row): ArchivedEvent {
  return {
    id: r.id,
    type: r.type,
    communityId: r.community_id,
    subject: r.subject,
    occurredAt: r.occurred_at.toISOString(),
    recordedAt: r.recorded_at.toISOString(),
    source: r.source,
    actor: r.actor,
    causationId: r.causation_id,
    correlationId: r.correlation_id,
    schemaVersion: r.schema_version,
    data: r.data,
    position: r.position,
    sequence: Number(r.sequence),
    prevHash: r.prev_hash,
    hash: r.hash,
  };
}

export function encodeCursor(sequence: number): string {
  return Buffer.from(String(sequence), 'utf8').toString('base64');
}

export function decodeCursorOrThrow(cursor: string): number {
  const text = Buffer.from(cursor, 'base64').toString('utf8');
  if (!/^[0-9]{1,15}$/.test(text) || encodeCursor(Number(text)) !== cursor) {
    throw new BadUserInputError('Invalid cursor', { after: 'is not a cursor from this connection' });
  }
  return Number(text);
}

function typesFilter(types: readonly string[] | null | undefined): string[] | null {
  return types && types.length > 0 ? [...types] : null;
}

/** Reads of the ledger archive: GraphQL pages, tamper checks and exports. */
export class LedgerEventsQuery {
  constructor(private readonly ds: DataSource) {}

  /** A Relay page of one community's events in log order. */
  async page(args: LedgerEventsPageArgs): Promise<Connection<ArchivedEvent>> {
    const first = args.first ?? DEFAULT_PAGE;
    if (!Number.isInteger(first) || first < 1 || first > MAX_PAGE) {
      throw new BadUserInputError(`first must be between 1 and ${MAX_PAGE}`, {
        first: `must be an integer from 1 to ${MAX_PAGE}`,
      });
    }
    const after = args.after ? decodeCursorOrThrow(args.after) : 0;
    const rows: Row[] = await this.ds.query(
      `SELECT ${COLUMNS} FROM ledger_events
        WHERE community_id = $1 AND sequence > $2 AND ($3::text[] IS NULL OR type = ANY($3::text[]))
        ORDER BY sequence LIMIT $4`,
      [args.communityId, after, typesFilter(args.types), first + 1],
    );
    const page = rows.slice(0, first).map(toEvent);
    const edges = page.map((node) => ({ cursor: encodeCursor(node.sequence), node }));
    return {
      edges,
      pageInfo: {
        hasNextPage: rows.length > first,
        endCursor: edges.length ? edges[edges.length - 1].cursor : null,
      },
    };
  }

  /**
   * Archived events in log order (per community; communities one after another), fetched in
   * keyset pages, for exports.
   */
  async *streamArchive(options: ArchiveStreamOptions = {}): AsyncGenerator<ArchivedEvent> {
    const pageSize = options.pageSize ?? 1000;
    const since = options.since ? new Date(options.since).toISOString() : null;
    const until = options.until ? new Date(options.until).toISOString() : null;
    let community = '';
    let sequence = 0;
    for (;;) {
      const rows: Row[] = await this.ds.query(
        `SELECT ${COLUMNS} FROM ledger_events
          WHERE ($1::text IS NULL OR community_id = $1)
            AND (community_id, sequence) > ($2, $3)
            AND ($4::timestamptz IS NULL OR recorded_at >= $4)
            AND ($5::timestamptz IS NULL OR recorded_at < $5)
            AND ($6::text[] IS NULL OR type = ANY($6::text[]))
          ORDER BY community_id, sequence LIMIT $7`,
        [
          options.communityId ?? null,
          community,
          sequence,
          since,
          until,
          typesFilter(options.types),
          pageSize,
        ],
      );
      for (const r of rows) yield toEvent(r);
      if (rows.length < pageSize) return;
      const last = rows[rows.length - 1];
      community = last.community_id;
      sequence = Number(last.sequence);
    }
  }

  /** The first broken link of the archive's hash chains (one community or all), or null. */
  async verifyArchive(communityId?: string): Promise<BrokenArchiveLink | null> {
    const communities: string[] =
      communityId !== undefined
        ? [communityId]
        : (
            (await this.ds.query(
              `SELECT DISTINCT community_id FROM ledger_events ORDER BY community_id`,
            )) as { community_id: string }[]
          ).map((r) => r.community_id);
    for (const c of communities) {
      let prev = GENESIS_HASH;
      let expectedSequence = 1;
      for await (const e of this.streamArchive({ communityId: c, pageSize: 5000 })) {
        const at = { communityId: c, sequence: e.sequence, eventId: e.id };
        if (e.sequence !== expectedSequence) {
          return {
            ...at,
            expected: String(expectedSequence),
            actual: String(e.sequence),
            reason: 'sequence',
          };
        }
        if (e.prevHash !== prev) return { ...at, expected: prev, actual: e.prevHash, reason: 'prev_hash' };
        const expected = archiveHash(prev, e);
        if (expected !== e.hash) return { ...at, expected, actual: e.hash, reason: 'hash' };
        prev = e.hash;
        expectedSequence++;
      }
    }
    return null;
  }
}
