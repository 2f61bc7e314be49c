import {
  BadUserInputError,
  type AccessGrant as DomainGrant,
  type Catalog,
  type EpochMs,
  type ResourceRef,
} from '@gatehouse/domain';
import {
  defineLazyField,
  type AccessQuery,
  type MembershipQuery,
  type MembershipRecord,
} from '@gatehouse/projections';
import { toMembership } from './membership.mapper';
import type { DataSource } from 'typeorm';
import type { AccessChangeKind, AccessSource, ResourceKind } from '../graphql/enums';
import type { ResourceInput } from '../graphql/inputs';
import type {
  AccessChangeConnection,
  AccessDecision,
  AccessGrant,
  LedgerEvent,
  MemberAccessConnection,
  Membership,
  Resource,
} from '../graphql/types';

export type AccessServiceDeps = {
  ds: DataSource;
  access: AccessQuery;
  memberships: MembershipQuery;
  now?: () => EpochMs;
};

type LedgerEventRow = {
  id: string;
  position: string;
  type: string;
  community_id: string;
  subject: string | null;
  source: string;
  actor: string | null;
  occurred_at: Date;
  recorded_at: Date;
  data: unknown;
};

// Ledger events never change, so a bounded cache of them is always right.
const EVENT_CACHE_SIZE = 50_000;

const date = (ms: EpochMs | null | undefined): Date | null =>
  ms === null || ms === undefined ? null : new Date(ms);

export function resourceRefOrThrow(input: ResourceInput): ResourceRef {
  if (input.kind === 'COMMUNITY') return { kind: 'COMMUNITY' };
  if (!input.id)
    throw new BadUserInputError(`resource.id is required for ${input.kind}`, {
      'resource.id': `is required for ${input.kind}`,
    });
  return { kind: input.kind, id: input.id };
}

/**
 * The membership and access queries behind the GraphQL resolvers: current decisions from the
 * in-memory index, `asKnownAt` from the bitemporal rows, `causedBy` from the ledger archive
 * (`ledger_events`), fetched only when the field is selected.
 */
export class AccessService {
  private readonly events = new Map<string, Promise<LedgerEvent>>();
  private readonly now: () => EpochMs;

  constructor(private readonly deps: AccessServiceDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** The membership as recorded (the tiers service adds pending price migrations on top). */
  async membership(communityId: string, memberId: string, asOf?: Date): Promise<Membership> {
    const at = this.now();
    const record = await this.deps.memberships.get(communityId, memberId, at, asOf?.getTime());
    const catalog = await this.deps.memberships.catalog(communityId);
    return toMembership(communityId, catalog, record, [], asOf?.getTime() ?? at);
  }

  async canAccess(
    communityId: string,
    memberId: string,
    resource: ResourceInput,
    at?: Date,
    asKnownAt?: Date,
  ): Promise<AccessDecision> {
    const ref = resourceRefOrThrow(resource);
    const when = at?.getTime() ?? this.now();
    const decision =
      asKnownAt === undefined
        ? this.deps.access.canAccess(communityId, memberId, ref, when)
        : await this.deps.access.canAccessAsKnownAt(communityId, memberId, ref, when, asKnownAt.getTime());
    const catalog =
      this.deps.memberships.catalogCached(communityId) ?? (await this.deps.memberships.catalog(communityId));
    return {
      allowed: decision.allowed,
      reason: decision.reason,
      validUntil: date(decision.validUntil),
      grants: decision.grants.map((g) => this.toGrant(communityId, g, catalog)),
    };
  }

  async accessHistory(
    communityId: string,
    memberId: string,
    first?: number,
    after?: string,
  ): Promise<AccessChangeConnection> {
    const page = await this.deps.access.history(communityId, memberId, this.now(), first, after);
    const catalog = await this.deps.memberships.catalog(communityId);
    return {
      edges: page.edges.map(({ cursor, node }) => ({
        cursor,
        node: this.withCause(communityId, node.causedBy, {
          id: node.id,
          resource: this.toResource(node.resource, catalog),
          change: node.change as AccessChangeKind,
          source: node.source as AccessSource,
          effectiveAt: new Date(node.effectiveAt),
          recordedAt: new Date(node.recordedAt),
          actor: node.actor,
        }),
      })),
      pageInfo: page.pageInfo,
    };
  }

  async accessList(
    communityId: string,
    resource: ResourceInput,
    at?: Date,
    first?: number,
    after?: string,
  ): Promise<MemberAccessConnection> {
    const when = at?.getTime() ?? this.now();
    const page = this.deps.access.accessList(communityId, resourceRefOrThrow(resource), when, first, after);
    const [records, catalog] = await Promise.all([
      this.deps.memberships.many(
        communityId,
        page.edges.map((e) => e.node.memberId),
        when,
      ),
      this.deps.memberships.catalog(communityId),
    ]);
    return {
      edges: page.edges.map(({ cursor, node }) => ({
        cursor,
        node: {
          memberId: node.memberId,
          membership: toMembership(
            communityId,
            catalog,
            records.get(node.memberId) as MembershipRecord,
            [],
            when,
          ),
          validUntil: date(node.validUntil),
          source: node.source as AccessSource,
        },
      })),
      pageInfo: page.pageInfo,
      totalCount: page.totalCount,
    };
  }

  /** The archived ledger event with this id (cached); a stub naming the id if the archive has not caught up. */
  ledgerEvent(communityId: string, id: string): Promise<LedgerEvent> {
    let cached = this.events.get(id);
    if (!cached) {
      cached = this.loadEvent(communityId, id);
      this.events.set(id, cached);
      if (this.events.size > EVENT_CACHE_SIZE) this.events.delete(this.events.keys().next().value as string);
    }
    return cached;
  }

  private async loadEvent(communityId: string, id: string): Promise<LedgerEvent> {
    const rows = await this.deps.ds.query<LedgerEventRow[]>(
      `SELECT id, position, type, community_id, subject, source, actor, occurred_at, recorded_at, data
         FROM ledger_events WHERE id = $1 AND community_id = $2`,
      [id, communityId],
    );
    const r = rows[0];
    if (!r) {
      this.events.delete(id);
      const now = new Date(this.now());
      return {
        id,
        position: '',
        type: 'unknown',
        communityId,
        subject: null,
        source: 'unknown',
        actor: null,
        occurredAt: now,
        recordedAt: now,
        data: {},
      };
    }
    return {
      id: r.id,
      position: r.position,
      type: r.type,
      communityId: r.community_id,
      subject: r.subject,
      source: r.source,
      actor: r.actor,
      occurredAt: r.occurred_at,
      recordedAt: r.recorded_at,
      data: r.data,
    };
  }

  /** Adds `causedBy` as a lazy property: the archive is read only when a query selects the field. */
  private withCause<T extends object>(
    communityId: string,
    eventId: string,
    value: T,
  ): T & { causedBy: LedgerEvent } {
    return defineLazyField(value, 'causedBy', () => this.ledgerEvent(communityId, eventId)) as T & {
      causedBy: LedgerEvent;
    };
  }

  private toGrant(communityId: string, g: DomainGrant, catalog: Catalog | null): AccessGrant {
    return this.withCause(communityId, g.causedBy, {
      resource: this.toResource(g.resource, catalog),
      source: g.source as AccessSource,
      validFrom: new Date(g.validFrom),
      validUntil: date(g.validUntil),
    });
  }

  private toResource(ref: ResourceRef, catalog: Catalog | null): Resource {
    const id = ref.id ?? null;
    const name =
      ref.kind === 'COMMUNITY'
        ? (catalog?.community?.name ?? 'community')
        : ref.kind === 'GROUP'
          ? (catalog?.groups[id ?? '']?.name ?? id ?? '')
          : (catalog?.events[id ?? '']?.name ?? id ?? '');
    return { kind: ref.kind as ResourceKind, id: ref.kind === 'COMMUNITY' ? null : id, name };
  }
}
