import {
  decideAccess,
  type AccessDecision,
  type AccessGrant,
  type Catalog,
  type EpochMs,
  type ResourceRef,
} from '@gatehouse/domain';
import type { DataSource, EntitySubscriberInterface, QueryRunner } from 'typeorm';
import type { ProjectionTx } from '../runtime/projection';
import type { PeerMessage } from '../runtime/projector-lease';

export type AccessIndexUpdate = {
  members: { communityId: string; memberId: string; grants: AccessGrant[] }[];
  catalogs: { communityId: string; catalog: Catalog }[];
};

export type GrantRow = {
  community_id: string;
  member_id: string;
  resource_kind: AccessGrant['resource']['kind'];
  resource_id: string | null;
  source: AccessGrant['source'];
  valid_from: Date;
  valid_until: Date | null;
  suspended: boolean;
  caused_by: string;
};

export function grantFromRow(r: GrantRow): AccessGrant {
  return {
    resource:
      r.resource_kind === 'COMMUNITY'
        ? { kind: 'COMMUNITY' }
        : { kind: r.resource_kind, id: r.resource_id ?? '' },
    source: r.source,
    validFrom: r.valid_from.getTime(),
    validUntil: r.valid_until === null ? null : r.valid_until.getTime(),
    causedBy: r.caused_by,
    suspended: r.suspended,
  };
}

export const GRANT_COLUMNS = `community_id, member_id, resource_kind, resource_id, source, valid_from, valid_until, suspended, caused_by`;

/**
 * Every member's current access intervals (and each community's catalog) held in memory, so that
 * `canAccess` is a map lookup plus an interval scan. The access projection stages its changes on the
 * batch's transaction; they are published here only after that transaction commits.
 */
export class AccessIndex {
  private readonly grants = new Map<string, Map<string, AccessGrant[]>>();
  private readonly catalogs = new Map<string, Catalog>();
  private readonly pending = new Map<QueryRunner, AccessIndexUpdate[]>();
  private liveSchema: string | null = null;
  private attached: DataSource | null = null;

  /** Loads the committed read model and starts following commits. Call before starting the projector. */
  async load(ds: DataSource): Promise<void> {
    this.attach(ds);
    const [{ schema }] = await ds.query<{ schema: string }[]>('SELECT current_schema() AS schema');
    this.liveSchema = schema;
    const rows = await ds.query<GrantRow[]>(
      `SELECT ${GRANT_COLUMNS} FROM access_grants WHERE superseded_at IS NULL ORDER BY community_id, member_id, id`,
    );
    const catalogs = await ds.query<{ community_id: string; state: Catalog }[]>(
      'SELECT community_id, state FROM access_catalogs',
    );
    // Swapped in at once: a server that reloads while answering never answers from half an index.
    this.grants.clear();
    this.catalogs.clear();
    for (const r of rows) {
      const members = this.communityMap(r.community_id);
      const list = members.get(r.member_id) ?? [];
      list.push(grantFromRow(r));
      members.set(r.member_id, list);
    }
    for (const c of catalogs) this.catalogs.set(c.community_id, c.state);
  }

  /**
   * Reads again the members and catalogs another server's projector changed (a peer message), as
   * committed now: a later commit's rows are only newer.
   */
  async refresh(ds: DataSource, changed: Extract<PeerMessage, { t: 'access' }>): Promise<void> {
    const update: AccessIndexUpdate = { members: [], catalogs: [] };
    if (changed.m.length > 0) {
      const rows = await ds.query<GrantRow[]>(
        `SELECT ${GRANT_COLUMNS} FROM access_grants
          WHERE superseded_at IS NULL
            AND (community_id, member_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))
          ORDER BY community_id, member_id, id`,
        [changed.m.map(([c]) => c), changed.m.map(([, m]) => m)],
      );
      const byMember = new Map<string, AccessIndexUpdate['members'][number]>();
      for (const [communityId, memberId] of changed.m)
        byMember.set(`${communityId}\u0000${memberId}`, { communityId, memberId, grants: [] });
      for (const r of rows)
        byMember.get(`${r.community_id}\u0000${r.member_id}`)?.grants.push(grantFromRow(r));
      update.members = [...byMember.values()];
    }
    if (changed.c.length > 0) {
      const rows = await ds.query<{ community_id: string; state: Catalog }[]>(
        'SELECT community_id, state FROM access_catalogs WHERE community_id = ANY($1::text[])',
        [changed.c],
      );
      update.catalogs = rows.map((r) => ({ communityId: r.community_id, catalog: r.state }));
    }
    this.publish(update);
  }

  grantsOf(communityId: string, memberId: string): AccessGrant[] {
    return this.grants.get(communityId)?.get(memberId) ?? [];
  }

  /** Members of a community that hold (or held) any grant. */
  membersOf(communityId: string): Iterable<[string, AccessGrant[]]> {
    return this.grants.get(communityId)?.entries() ?? [];
  }

  catalog(communityId: string): Catalog | undefined {
    return this.catalogs.get(communityId);
  }

  decide(communityId: string, memberId: string, resource: ResourceRef, at: EpochMs): AccessDecision {
    return decideAccess(this.grantsOf(communityId, memberId), resource, at);
  }

  /** Called by the projection inside its transaction; ignored for rebuilds into a shadow schema. */
  async stage(tx: ProjectionTx, update: AccessIndexUpdate): Promise<void> {
    const runner = tx.manager.queryRunner;
    if (!runner || this.liveSchema === null) return;
    const [{ schema }] = await tx.query<{ schema: string }>('SELECT current_schema() AS schema');
    if (schema !== this.liveSchema) return;
    const list = this.pending.get(runner) ?? [];
    list.push(update);
    this.pending.set(runner, list);
    if (update.members.length > 0 || update.catalogs.length > 0)
      tx.tellPeers?.({
        t: 'access',
        m: update.members.map((m) => [m.communityId, m.memberId]),
        c: update.catalogs.map((c) => c.communityId),
      });
  }

  /** Applies an update directly (tests, and the commit hook). */
  publish(update: AccessIndexUpdate): void {
    for (const c of update.catalogs) this.catalogs.set(c.communityId, c.catalog);
    for (const m of update.members) this.communityMap(m.communityId).set(m.memberId, m.grants);
  }

  private communityMap(communityId: string): Map<string, AccessGrant[]> {
    let members = this.grants.get(communityId);
    if (!members) {
      members = new Map();
      this.grants.set(communityId, members);
    }
    return members;
  }

  private attach(ds: DataSource): void {
    if (this.attached === ds) return;
    this.attached = ds;
    const subscriber: EntitySubscriberInterface = {
      afterTransactionCommit: ({ queryRunner }) => {
        if (queryRunner.isTransactionActive) return;
        const updates = this.pending.get(queryRunner);
        this.pending.delete(queryRunner);
        for (const u of updates ?? []) this.publish(u);
      },
      afterTransactionRollback: ({ queryRunner }) => {
        if (!queryRunner.isTransactionActive) this.pending.delete(queryRunner);
      },
    };
    ds.subscribers.push(subscriber);
  }
}
