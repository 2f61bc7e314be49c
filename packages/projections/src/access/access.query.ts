import {
  BadUserInputError,
  decideAccess,
  resourceKey,
  type AccessChangeKind,
  type AccessDecision,
  type AccessGrant,
  type AccessSource,
  type EpochMs,
  type ResourceRef,
} from '@gatehouse/domain';
import type { DataSource, EntityManager } from 'typeorm';
import { GRANT_COLUMNS, grantFromRow, type AccessIndex, type GrantRow } from './access-index';
import { accessChangeId, lapsesBetween } from './history';

export type AccessChangeRecord = {
  id: string;
  resource: ResourceRef;
  change: AccessChangeKind;
  source: AccessSource;
  effectiveAt: EpochMs;
  recordedAt: EpochMs;
  validUntil: EpochMs | null;
  actor: string | null;
  causedBy: string;
};

export type MemberAccessRecord = { memberId: string; validUntil: EpochMs | null; source: AccessSource };

export type Page<T> = {
  edges: { cursor: string; node: T }[];
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
};

export const ACCESS_MAX_PAGE = 500;
export const ACCESS_DEFAULT_PAGE = 50;

function pageSizeOrThrow(first: number | undefined): number {
  const n = first ?? ACCESS_DEFAULT_PAGE;
  if (!Number.isInteger(n) || n < 1 || n > ACCESS_MAX_PAGE) {
    throw new BadUserInputError(`first must be between 1 and ${ACCESS_MAX_PAGE}`, {
      first: `must be an integer from 1 to ${ACCESS_MAX_PAGE}`,
    });
  }
  return n;
}

const CURSOR_PREFIX = { history: 'ach:', list: 'mem:' } as const;

function encode(kind: keyof typeof CURSOR_PREFIX, value: string): string {
  return Buffer.from(CURSOR_PREFIX[kind] + value, 'utf8').toString('base64url');
}

function decodeOrThrow(kind: keyof typeof CURSOR_PREFIX, cursor: string): string {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  if (
    !text.startsWith(CURSOR_PREFIX[kind]) ||
    encode(kind, text.slice(CURSOR_PREFIX[kind].length)) !== cursor
  ) {
    throw new BadUserInputError('Invalid cursor', { after: 'is not a cursor from this connection' });
  }
  return text.slice(CURSOR_PREFIX[kind].length);
}

type ChangeRow = {
  ordinal: number;
  resource_kind: ResourceRef['kind'];
  resource_id: string | null;
  change: AccessChangeKind;
  source: AccessSource;
  effective_at: Date;
  recorded_at: Date;
  valid_until: Date | null;
  actor: string | null;
  caused_by: string;
};

/**
 * Access decisions and history. Current knowledge comes from the in-memory index; `asKnownAt`
 * answers from the bitemporal grant versions: the rows recorded by then and not yet superseded.
 */
export class AccessQuery {
  constructor(
    private readonly ds: DataSource,
    private readonly index: AccessIndex,
  ) {}

  canAccess(communityId: string, memberId: string, resource: ResourceRef, at: EpochMs): AccessDecision {
    return this.index.decide(communityId, memberId, resource, at);
  }

  /** What was believed at `knownAt` about access at `at`. */
  async canAccessAsKnownAt(
    communityId: string,
    memberId: string,
    resource: ResourceRef,
    at: EpochMs,
    knownAt: EpochMs,
  ): Promise<AccessDecision> {
    return decideAccess(await this.grantsAsKnownAt(communityId, memberId, knownAt), resource, at);
  }

  async grantsAsKnownAt(communityId: string, memberId: string, knownAt: EpochMs): Promise<AccessGrant[]> {
    const rows = await this.ds.query<Parameters<typeof grantFromRow>[0][]>(
      `SELECT ${GRANT_COLUMNS} FROM access_grants
        WHERE community_id = $1 AND member_id = $2 AND recorded_at <= $3 AND (superseded_at IS NULL OR superseded_at > $3)
        ORDER BY id`,
      [communityId, memberId, new Date(knownAt).toISOString()],
    );
    return rows.map(grantFromRow);
  }

  /**
   * A member's access changes, oldest first, as a Relay page. After the stored rows come the lapses
   * up to `now` that no fact has stored yet (access that ran out by time alone), with the ids and
   * ordinals the member's next fact stores them under.
   */
  async history(
    communityId: string,
    memberId: string,
    now: EpochMs,
    first?: number,
    after?: string,
  ): Promise<Page<AccessChangeRecord>> {
    const n = pageSizeOrThrow(first);
    const from = after ? Number(decodeOrThrow('history', after)) : -1;
    if (!Number.isInteger(from))
      throw new BadUserInputError('Invalid cursor', { after: 'is not a cursor from this connection' });
    // One snapshot, so that a fact projected meanwhile neither repeats a lapse nor hides it.
    const rows = await this.ds.transaction('REPEATABLE READ', async (m) => {
      const stored = await m.query<ChangeRow[]>(
        `SELECT ordinal, resource_kind, resource_id, change, source, effective_at, recorded_at, valid_until, actor, caused_by
           FROM access_changes WHERE community_id = $1 AND member_id = $2 AND ordinal > $3 ORDER BY ordinal LIMIT $4`,
        [communityId, memberId, from, n + 1],
      );
      return stored.length > n
        ? stored
        : [...stored, ...(await this.pendingLapses(m, communityId, memberId, now))];
    });
    const rest = rows.filter((r) => r.ordinal > from);
    const edges = rest.slice(0, n).map((r) => ({
      cursor: encode('history', String(r.ordinal)),
      node: {
        id: accessChangeId(communityId, memberId, r.ordinal),
        resource:
          r.resource_kind === 'COMMUNITY'
            ? { kind: 'COMMUNITY' as const }
            : { kind: r.resource_kind, id: r.resource_id ?? '' },
        change: r.change,
        source: r.source,
        effectiveAt: r.effective_at.getTime(),
        recordedAt: r.recorded_at.getTime(),
        validUntil: r.valid_until === null ? null : r.valid_until.getTime(),
        actor: r.actor,
        causedBy: r.caused_by,
      },
    }));
    return { edges, pageInfo: { hasNextPage: rest.length > n, endCursor: edges.at(-1)?.cursor ?? null } };
  }

  /** The lapses since the member's last fact, as the rows the projection will store. */
  private async pendingLapses(
    m: EntityManager,
    communityId: string,
    memberId: string,
    now: EpochMs,
  ): Promise<ChangeRow[]> {
    const [state] = await m.query<{ evaluated_at: number | null; history_count: number }[]>(
      `SELECT (doc->>'evaluatedAt')::float8 AS evaluated_at, history_count
         FROM member_states WHERE community_id = $1 AND member_id = $2`,
      [communityId, memberId],
    );
    if (!state || state.evaluated_at === null) return [];
    const grants = await m.query<(GrantRow & { recorded_at: Date })[]>(
      `SELECT recorded_at, ${GRANT_COLUMNS} FROM access_grants
        WHERE community_id = $1 AND member_id = $2 AND superseded_at IS NULL ORDER BY id`,
      [communityId, memberId],
    );
    const lapses = lapsesBetween(grants.map(grantFromRow), state.evaluated_at, now, () =>
      Math.max(...grants.map((g) => g.recorded_at.getTime())),
    );
    return lapses.map((c, i) => ({
      ordinal: state.history_count + i,
      resource_kind: c.resource.kind,
      resource_id: c.resource.id ?? null,
      change: c.change,
      source: c.source,
      effective_at: new Date(c.effectiveAt),
      recorded_at: new Date(c.recordedAt),
      valid_until: c.validUntil === null ? null : new Date(c.validUntil),
      actor: null,
      caused_by: c.causedBy,
    }));
  }

  /** Members with access to `resource` at `at`, ordered by member id, with the total. */
  accessList(
    communityId: string,
    resource: ResourceRef,
    at: EpochMs,
    first?: number,
    after?: string,
  ): Page<MemberAccessRecord> & { totalCount: number } {
    const n = pageSizeOrThrow(first);
    const from = after ? decodeOrThrow('list', after) : null;
    const key = resourceKey(resource);
    const all: MemberAccessRecord[] = [];
    for (const [memberId, grants] of this.index.membersOf(communityId)) {
      if (!grants.some((g) => resourceKey(g.resource) === key)) continue;
      const d = decideAccess(grants, resource, at);
      if (!d.allowed) continue;
      const best = [...d.grants].sort((a, b) => (b.validUntil ?? Infinity) - (a.validUntil ?? Infinity))[0];
      all.push({ memberId, validUntil: d.validUntil, source: best.source });
    }
    all.sort((a, b) => (a.memberId < b.memberId ? -1 : a.memberId > b.memberId ? 1 : 0));
    const rest = from === null ? all : all.filter((m) => m.memberId > from);
    const edges = rest.slice(0, n).map((node) => ({ cursor: encode('list', node.memberId), node }));
    return {
      edges,
      pageInfo: { hasNextPage: rest.length > n, endCursor: edges.at(-1)?.cursor ?? null },
      totalCount: all.length,
    };
  }
}
