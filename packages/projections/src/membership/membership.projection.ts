import {
  CATALOG_EVENT_TYPES,
  compareText,
  diffGrants,
  emptyCatalog,
  emptyMemberState,
  evolveCatalog,
  evolveMembership,
  grantsFor,
  resourceKey,
  type AccessChange,
  type AccessGrant,
  type Catalog,
  type CatalogEvent,
  type MembershipEvent,
  type MemberState,
} from '@gatehouse/domain';
import type { RecordedEvent } from '@gatehouse/ledger';
import pino, { type Logger } from 'pino';
import {
  GRANT_COLUMNS,
  grantFromRow,
  type AccessIndex,
  type AccessIndexUpdate,
} from '../access/access-index';
import { accessChangeId, lapsesBetween } from '../access/history';
import type { Projection, ProjectionTx } from '../runtime/projection';
import { readStripeEvent, type StripeHints, type StripeReading } from './stripe-event.translate';

/** What the projection keeps per member: the domain state plus what the domain does not fold. */
export type MemberDoc = {
  state: MemberState;
  email?: string;
  /** invoiceId → when a payment action was asked for and when the invoice was paid (India e-mandates, 3DS). */
  invoices: Record<string, { actionAt?: number; paidAt?: number; subscriptionId?: string }>;
  /** Versions of grant rows written so far (gives deterministic row ids). */
  grantSeq: number;
  /** The latest instant the member's access was compared at (a fact's time): lapses are found from it. */
  evaluatedAt?: number;
};

export function emptyMemberDoc(): MemberDoc {
  return { state: emptyMemberState(), invoices: {}, grantSeq: 0 };
}

const MEMBER_ADMIN_TYPES = ['MemberJoined', 'ComplimentaryAccessGranted', 'ComplimentaryAccessRevoked'];
const CATALOG_TYPES: ReadonlySet<string> = new Set(
  CATALOG_EVENT_TYPES.filter((t) => !MEMBER_ADMIN_TYPES.includes(t)),
);

type CurrentGrant = { id: string; key: string; grant: AccessGrant; recordedAt: string };

type MemberSlot = {
  communityId: string;
  memberId: string;
  doc: MemberDoc;
  grants: CurrentGrant[];
  historyCount: number;
  dirty: boolean;
};

type Parked = {
  communityId: string;
  eventId: string;
  keys: string[];
  reading: StripeReading;
  occurredAt: string;
  recordedAt: string;
  reason: string;
};

/** One fact to fold into one member, with the ledger event that produced it now (a release may be later). */
type Unit = {
  communityId: string;
  memberId: string;
  fact: MembershipEvent | null;
  hints: StripeHints;
  factEventId: string;
  effectiveAt: number;
  recordedAt: string;
  actor: string | null;
};

type Step = { kind: 'member'; unit: Unit } | { kind: 'catalog'; event: RecordedEvent };

const member = (c: string, m: string) => `${c}\u0000${m}`;
const grantKey = (g: AccessGrant) =>
  `${resourceKey(g.resource)}|${g.source}|${g.validFrom}|${g.validUntil ?? ''}|${g.causedBy}|${g.suspended ? 1 : 0}`;
const byKey = (a: { key: string }, b: { key: string }) => compareText(a.key, b.key);
const iso = (ms: number) => new Date(ms).toISOString();

/** Keys a Stripe event can be tied to a member by, strongest first. */
function keysOf(h: StripeHints): string[] {
  return [
    h.subscriptionId,
    h.paymentIntentId,
    h.chargeId,
    h.customerId,
    h.email === undefined ? undefined : `email:${h.email.toLowerCase()}`,
  ].filter((k): k is string => k !== undefined);
}

/**
 * Memberships and access, folded from Stripe facts and member admin facts with the domain's
 * `evolveMembership` and `grantsFor`. Writes member states, access intervals as bitemporal versions,
 * and the access history; catalog facts are folded here too so replay never depends on another
 * projection's progress. Each event is handled on its own inside the batch, so the rows do not depend
 * on where batches were cut (live equals rebuild).
 */
export class MembershipProjection implements Projection {
  readonly name = 'membership-access';
  readonly tables = [
    'member_states',
    'member_facts',
    'stripe_links',
    'stripe_unlinked',
    'access_catalogs',
    'access_grants',
    'access_changes',
  ];
  private readonly log: Logger;

  constructor(private readonly options: { index?: AccessIndex; logger?: Logger } = {}) {
    this.log = options.logger ?? pino({ name: 'membership-projection' });
  }

  async apply(tx: ProjectionTx, events: readonly RecordedEvent[]): Promise<void> {
    const relevant = events.filter(
      (e) => e.source === 'stripe' || CATALOG_TYPES.has(e.type) || MEMBER_ADMIN_TYPES.includes(e.type),
    );
    if (relevant.length === 0) return;
    const communities = [...new Set(relevant.map((e) => e.communityId))];

    const catalogs = new Map<string, Catalog>();
    for (const r of await tx.query<{ community_id: string; state: Catalog }>(
      'SELECT community_id, state FROM access_catalogs WHERE community_id = ANY($1)',
      [communities],
    )) {
      catalogs.set(r.community_id, r.state);
    }
    const catalogsChanged = new Set<string>();

    // 1. Translate, and load what is already known about the identities involved.
    const readings = new Map<string, StripeReading>();
    const wantedKeys = new Map<string, Set<string>>();
    for (const e of relevant) {
      if (e.source !== 'stripe') {
        const email = (e.data as { email?: string }).email;
        if (e.type === 'MemberJoined' && email)
          wantedKeys.set(
            e.communityId,
            (wantedKeys.get(e.communityId) ?? new Set()).add(`email:${email.toLowerCase()}`),
          );
        continue;
      }
      const reading = readStripeEvent(e.data);
      readings.set(e.id, reading);
      const set = wantedKeys.get(e.communityId) ?? new Set<string>();
      for (const k of keysOf(reading.hints)) set.add(k);
      wantedKeys.set(e.communityId, set);
    }
    const links = new Map<string, Map<string, string>>(communities.map((c) => [c, new Map()]));
    const pairs = [...wantedKeys].flatMap(([c, keys]) => [...keys].map((k) => [c, k] as const));
    if (pairs.length > 0) {
      for (const r of await tx.query<{ community_id: string; stripe_key: string; member_id: string }>(
        // One primary-key probe per wanted key, never a scan of every link. The LIMIT (a key has one
        // link) keeps the planner from flattening the subquery into a join, which it would hash over
        // the whole table: a batch then cost as much as all the links ever learned.
        `SELECT l.community_id, l.stripe_key, l.member_id FROM unnest($1::text[], $2::text[]) AS w(c, k)
           CROSS JOIN LATERAL (
             SELECT * FROM stripe_links s WHERE s.community_id = w.c AND s.stripe_key = w.k LIMIT 1) l`,
        [pairs.map((p) => p[0]), pairs.map((p) => p[1])],
      )) {
        links.get(r.community_id)?.set(r.stripe_key, r.member_id);
      }
    }
    // Keys this batch can learn: those of events that name their member or match a known link, and
    // the emails members join with; loadParked follows every key that shares an event with one.
    const learnable = new Map<string, Set<string>>(communities.map((c) => [c, new Set()]));
    const unresolved = new Map<string, string[][]>(communities.map((c) => [c, []]));
    for (const e of relevant) {
      const c = e.communityId;
      if (e.source !== 'stripe') {
        const email = (e.data as { email?: string }).email;
        if (e.type === 'MemberJoined' && email) learnable.get(c)?.add(`email:${email.toLowerCase()}`);
        continue;
      }
      const reading = readings.get(e.id) as StripeReading;
      const keys = keysOf(reading.hints);
      const known = links.get(c) as Map<string, string>;
      if (reading.hints.memberId !== undefined || keys.some((k) => known.has(k)))
        for (const k of keys) learnable.get(c)?.add(k);
      else if (keys.length > 0) unresolved.get(c)?.push(keys);
    }
    const parked = await this.loadParked(tx, communities, learnable, unresolved);
    const newLinks: { c: string; k: string; m: string }[] = [];
    const released = new Set<string>();
    const newlyParked: Parked[] = [];

    // 2. Resolve members in log order; learning a link releases the events parked under it.
    const steps: Step[] = [];
    const unitFor = (
      c: string,
      m: string,
      reading: StripeReading,
      factEventId: string,
      occurredAt: string,
      now: RecordedEvent,
    ): void => {
      for (const k of keysOf(reading.hints)) learn(c, k, m, now);
      if (reading.fact) {
        steps.push({
          kind: 'member',
          unit: {
            communityId: c,
            memberId: m,
            fact: reading.fact,
            hints: reading.hints,
            factEventId,
            effectiveAt: Date.parse(occurredAt),
            recordedAt: now.recordedAt,
            actor: now.actor,
          },
        });
      }
    };
    const learn = (c: string, key: string, m: string, now: RecordedEvent): void => {
      const known = links.get(c) as Map<string, string>;
      if (known.has(key)) return;
      known.set(key, m);
      newLinks.push({ c, k: key, m });
      const list = parked.get(c) as Parked[];
      // Released in a canonical order, so that rows do not depend on whether they were parked in this batch.
      const waiting = list
        .filter((x) => x.keys.includes(key))
        .sort((x, y) => compareText(x.occurredAt, y.occurredAt) || compareText(x.eventId, y.eventId));
      for (const p of waiting) {
        // A release above may already have released this one through another of its keys.
        if (!list.includes(p)) continue;
        list.splice(list.indexOf(p), 1);
        released.add(member(c, p.eventId));
        unitFor(c, m, p.reading, p.eventId, p.occurredAt, now);
      }
    };
    for (const e of relevant) {
      const c = e.communityId;
      if (CATALOG_TYPES.has(e.type)) {
        steps.push({ kind: 'catalog', event: e });
        continue;
      }
      if (e.source !== 'stripe') {
        const d = e.data as { memberId?: string; email?: string };
        if (!d.memberId) {
          this.log.warn({ eventId: e.id, type: e.type }, 'member fact without memberId skipped');
          continue;
        }
        steps.push({
          kind: 'member',
          unit: {
            communityId: c,
            memberId: d.memberId,
            fact: { type: e.type, data: e.data, metadata: { eventId: e.id } } as MembershipEvent,
            hints: {},
            factEventId: e.id,
            effectiveAt: Date.parse(e.occurredAt),
            recordedAt: e.recordedAt,
            actor: e.actor,
          },
        });
        if (e.type === 'MemberJoined' && d.email) learn(c, `email:${d.email.toLowerCase()}`, d.memberId, e);
        continue;
      }
      const reading = readings.get(e.id) as StripeReading;
      const keys = keysOf(reading.hints);
      const known = links.get(c) as Map<string, string>;
      const m = reading.hints.memberId ?? keys.map((k) => known.get(k)).find((x) => x !== undefined);
      if (m !== undefined) {
        unitFor(c, m, reading, e.id, e.occurredAt, e);
      } else if (reading.fact || keys.length > 0) {
        // Unresolved: kept aside (visible in stripe_unlinked) and applied once any of its keys is linked.
        const p: Parked = {
          communityId: c,
          eventId: e.id,
          keys,
          reading,
          occurredAt: e.occurredAt,
          recordedAt: e.recordedAt,
          reason: keys.length > 0 ? `no member known for ${keys.join(', ')}` : 'no member reference',
        };
        (parked.get(c) as Parked[]).push(p);
        newlyParked.push(p);
      }
    }

    // 3. Load the members involved, then fold step by step.
    const slots = new Map<string, MemberSlot>();
    const wanted = [
      ...new Set(
        steps.flatMap((s) => (s.kind === 'member' ? [member(s.unit.communityId, s.unit.memberId)] : [])),
      ),
    ];
    await this.loadMembers(
      tx,
      wanted.map((k) => k.split('\u0000') as [string, string]),
      slots,
    );
    const fullyLoaded = new Set<string>();
    const facts: { c: string; m: string; id: string; at: number; fact: MembershipEvent }[] = [];
    const grantInserts = new Map<
      string,
      { id: string; c: string; m: string; g: AccessGrant; recordedAt: string }
    >();
    const grantSupersedes = new Map<string, string>();
    const grantDeletes = new Set<string>();
    const changes: (AccessChange & {
      id: string;
      c: string;
      m: string;
      ordinal: number;
      recordedAt: string;
      actor: string | null;
      eventId: string;
    })[] = [];

    const recompute = (
      slot: MemberSlot,
      effectiveAt: number,
      recordedAt: string,
      producedBy: string,
      actor: string | null,
    ) => {
      const catalog = catalogs.get(slot.communityId);
      const community = catalog?.community;
      const after = community && catalog ? grantsFor(slot.doc.state, catalog, community) : [];
      const before = slot.grants;
      const beforeGrants = before.map((g) => g.grant);
      // Access that ran out by time alone since the last fact (a grace period ending) is a change
      // too, stored at the next fact of the member, whatever that fact changes, as known when it
      // ended and with no actor: the row `accessHistory` showed before this fact arrived.
      const since = slot.doc.evaluatedAt;
      const lapsed =
        since === undefined
          ? []
          : lapsesBetween(beforeGrants, since, effectiveAt, () =>
              Math.max(...before.map((g) => Date.parse(g.recordedAt))),
            );
      slot.doc.evaluatedAt = Math.max(since ?? effectiveAt, effectiveAt);
      const record = (d: AccessChange, known: string, by: string | null) => {
        const ordinal = slot.historyCount++;
        changes.push({
          ...d,
          id: accessChangeId(slot.communityId, slot.memberId, ordinal),
          c: slot.communityId,
          m: slot.memberId,
          ordinal,
          recordedAt: known,
          actor: by,
          eventId: producedBy,
        });
      };
      for (const l of lapsed) record(l, new Date(l.recordedAt).toISOString(), null);
      const afterKeys = new Set(after.map(grantKey));
      const beforeKeys = new Set(before.map((g) => g.key));
      const kept = before.filter((g) => afterKeys.has(g.key));
      for (const g of before) {
        if (afterKeys.has(g.key)) continue;
        // A version replaced at the instant it was recorded was never believed: it is dropped, whether
        // or not an earlier batch wrote it, so rows do not depend on where batches were cut.
        if (g.recordedAt === recordedAt) {
          if (!grantInserts.delete(g.id)) grantDeletes.add(g.id);
        } else {
          grantSupersedes.set(g.id, recordedAt);
        }
      }
      const added: CurrentGrant[] = [];
      for (const g of after) {
        const key = grantKey(g);
        if (beforeKeys.has(key)) continue;
        slot.doc.grantSeq++;
        const id = `${slot.communityId}/${slot.memberId}/g${slot.doc.grantSeq}`;
        added.push({ id, key, grant: g, recordedAt });
        grantInserts.set(id, { id, c: slot.communityId, m: slot.memberId, g, recordedAt });
      }
      slot.grants = [...kept, ...added].sort(byKey);
      slot.dirty = true;
      if (added.length === 0 && kept.length === before.length) return;
      let diff = diffGrants(beforeGrants, after, effectiveAt, producedBy);
      if (diff.length === 0) {
        // A grant that starts later (an admin grant from a future date) is a change at its start.
        const later = added.map((g) => g.grant.validFrom).filter((t) => t > effectiveAt);
        if (later.length > 0) diff = diffGrants(beforeGrants, after, Math.min(...later), producedBy);
      }
      for (const d of diff) record(d, recordedAt, actor);
    };

    for (const step of steps) {
      if (step.kind === 'catalog') {
        const e = step.event;
        const c = e.communityId;
        catalogs.set(
          c,
          evolveCatalog(catalogs.get(c) ?? emptyCatalog(), { type: e.type, data: e.data } as CatalogEvent),
        );
        catalogsChanged.add(c);
        // A catalog fact (grace days, paid-only, a tier's groups) can change every member's access.
        if (!fullyLoaded.has(c)) {
          await this.loadCommunity(tx, c, slots);
          fullyLoaded.add(c);
        }
        for (const slot of slots.values()) {
          if (slot.communityId === c) recompute(slot, Date.parse(e.occurredAt), e.recordedAt, e.id, e.actor);
        }
        continue;
      }
      const u = step.unit;
      const key = member(u.communityId, u.memberId);
      let slot = slots.get(key);
      if (!slot) {
        slot = {
          communityId: u.communityId,
          memberId: u.memberId,
          doc: emptyMemberDoc(),
          grants: [],
          historyCount: 0,
          dirty: true,
        };
        slots.set(key, slot);
      }
      const fact = this.complete(u, catalogs.get(u.communityId));
      if (!fact) continue;
      slot.doc = foldDoc(slot.doc, fact);
      facts.push({ c: u.communityId, m: u.memberId, id: u.factEventId, at: u.effectiveAt, fact });
      recompute(slot, u.effectiveAt, u.recordedAt, u.factEventId, u.actor);
    }

    await this.write(tx, {
      slots,
      facts,
      grantInserts: [...grantInserts.values()],
      grantSupersedes,
      grantDeletes,
      changes,
      newLinks,
      newlyParked,
      released,
      catalogs,
      catalogsChanged,
    });

    if (this.options.index) {
      const update: AccessIndexUpdate = {
        members: [...slots.values()]
          .filter((s) => s.dirty)
          .map((s) => ({
            communityId: s.communityId,
            memberId: s.memberId,
            grants: s.grants.map((g) => g.grant),
          })),
        catalogs: [...catalogsChanged].map((c) => ({ communityId: c, catalog: catalogs.get(c) as Catalog })),
      };
      await this.options.index.stage(tx, update);
    }
  }

  /** Fills what a Stripe fact could not know on its own (the member, a Checkout's Stripe price). */
  private complete(u: Unit, catalog: Catalog | undefined): MembershipEvent | null {
    const f = u.fact;
    if (!f) return null;
    if (f.type === 'OneTimePurchaseCompleted') {
      const price = u.hints.priceId && catalog ? catalog.prices[u.hints.priceId] : undefined;
      const stripePriceId = f.data.stripePriceId || price?.stripePriceId || '';
      if (!stripePriceId)
        this.log.warn(
          { eventId: u.factEventId },
          'one-time purchase without a known price: kept, grants nothing',
        );
      return {
        ...f,
        data: {
          ...f.data,
          memberId: u.memberId,
          stripePriceId,
          ...(!f.data.stripeProductId &&
            price?.stripeProductId && { stripeProductId: price.stripeProductId }),
        },
      };
    }
    if (f.type === 'SubscriptionObserved' || f.type === 'SubscriptionDeleted') {
      return { ...f, data: { ...f.data, memberId: u.memberId } } as MembershipEvent;
    }
    return f;
  }

  /**
   * The parked events this batch could release: those parked under a key it can learn, directly or
   * through the other keys of an event that key resolves (in the batch or parked), followed until no
   * key is new. Events parked under keys nobody can learn now stay in the table unread, so a batch
   * costs the same however much is parked.
   */
  private async loadParked(
    tx: ProjectionTx,
    communities: readonly string[],
    learnable: ReadonlyMap<string, ReadonlySet<string>>,
    unresolved: Map<string, string[][]>,
  ): Promise<Map<string, Parked[]>> {
    const parked = new Map<string, Parked[]>(communities.map((c) => [c, []]));
    const known = new Map<string, Set<string>>(communities.map((c) => [c, new Set(learnable.get(c))]));
    const loaded = new Set<string>();
    let frontier = [...known].flatMap(([c, keys]) => [...keys].map((k) => [c, k] as const));
    const reach = (c: string, keys: readonly string[], into: (readonly [string, string])[]) => {
      const mine = known.get(c) as Set<string>;
      for (const k of keys)
        if (!mine.has(k)) {
          mine.add(k);
          into.push([c, k]);
        }
    };
    while (frontier.length > 0) {
      // Unresolved events of this batch that share a key with what can be learned resolve too.
      for (let grew = true; grew;) {
        grew = false;
        for (const [c, sets] of unresolved) {
          const mine = known.get(c) as Set<string>;
          for (let i = sets.length - 1; i >= 0; i--) {
            if (!sets[i].some((k) => mine.has(k))) continue;
            reach(c, sets[i], frontier);
            sets.splice(i, 1);
            grew = true;
          }
        }
      }
      const rows = await tx.query<{
        community_id: string;
        event_id: string;
        keys: string[];
        reading: StripeReading;
        occurred_at: Date;
        recorded_at: Date;
        reason: string;
      }>(
        `SELECT * FROM stripe_unlinked WHERE community_id = ANY($1) AND keys && $2::text[]
          ORDER BY recorded_at, event_id`,
        [[...new Set(frontier.map((f) => f[0]))], [...new Set(frontier.map((f) => f[1]))]],
      );
      const next: (readonly [string, string])[] = [];
      for (const r of rows) {
        const mine = known.get(r.community_id);
        // A key of another community (an email, say) does not release this one.
        if (!mine || !r.keys.some((k) => mine.has(k))) continue;
        const id = member(r.community_id, r.event_id);
        if (loaded.has(id)) continue;
        loaded.add(id);
        parked.get(r.community_id)?.push({
          communityId: r.community_id,
          eventId: r.event_id,
          keys: r.keys,
          reading: r.reading,
          occurredAt: r.occurred_at.toISOString(),
          recordedAt: r.recorded_at.toISOString(),
          reason: r.reason,
        });
        reach(r.community_id, r.keys, next);
      }
      frontier = next;
    }
    for (const list of parked.values())
      list.sort((x, y) => compareText(x.recordedAt, y.recordedAt) || compareText(x.eventId, y.eventId));
    return parked;
  }

  private async loadMembers(
    tx: ProjectionTx,
    wanted: [string, string][],
    slots: Map<string, MemberSlot>,
  ): Promise<void> {
    if (wanted.length === 0) return;
    const cs = wanted.map((w) => w[0]);
    const ms = wanted.map((w) => w[1]);
    const rows = await tx.query<{
      community_id: string;
      member_id: string;
      doc: MemberDoc;
      history_count: number;
    }>(
      // Probes per member, as for the links: LIMIT (one state per member) and OFFSET 0 keep the
      // subqueries from being flattened into joins hashed over every member of every community.
      `SELECT s.community_id, s.member_id, s.doc, s.history_count FROM unnest($1::text[], $2::text[]) AS w(c, m)
         CROSS JOIN LATERAL (
           SELECT * FROM member_states s WHERE s.community_id = w.c AND s.member_id = w.m LIMIT 1) s`,
      [cs, ms],
    );
    const grants = await tx.query<Parameters<typeof grantFromRow>[0] & { id: string; recorded_at: Date }>(
      `SELECT g.id, g.recorded_at, ${GRANT_COLUMNS.split(', ')
        .map((c) => `g.${c}`)
        .join(', ')} FROM unnest($1::text[], $2::text[]) AS w(c, m)
         CROSS JOIN LATERAL (
           SELECT * FROM access_grants g
            WHERE g.community_id = w.c AND g.member_id = w.m AND g.superseded_at IS NULL OFFSET 0) g
        ORDER BY g.id`,
      [cs, ms],
    );
    this.fill(rows, grants, slots);
  }

  private async loadCommunity(
    tx: ProjectionTx,
    communityId: string,
    slots: Map<string, MemberSlot>,
  ): Promise<void> {
    const loaded = [...slots.values()].filter((s) => s.communityId === communityId).map((s) => s.memberId);
    const rows = await tx.query<{
      community_id: string;
      member_id: string;
      doc: MemberDoc;
      history_count: number;
    }>(
      `SELECT community_id, member_id, doc, history_count FROM member_states WHERE community_id = $1 AND member_id <> ALL($2::text[])`,
      [communityId, loaded],
    );
    const grants = await tx.query<Parameters<typeof grantFromRow>[0] & { id: string; recorded_at: Date }>(
      `SELECT id, recorded_at, ${GRANT_COLUMNS} FROM access_grants
        WHERE community_id = $1 AND member_id <> ALL($2::text[]) AND superseded_at IS NULL ORDER BY id`,
      [communityId, loaded],
    );
    this.fill(rows, grants, slots);
  }

  private fill(
    rows: { community_id: string; member_id: string; doc: MemberDoc; history_count: number }[],
    grants: (Parameters<typeof grantFromRow>[0] & { id: string; recorded_at: Date })[],
    slots: Map<string, MemberSlot>,
  ): void {
    for (const r of rows) {
      slots.set(member(r.community_id, r.member_id), {
        communityId: r.community_id,
        memberId: r.member_id,
        doc: r.doc,
        grants: [],
        historyCount: r.history_count,
        dirty: false,
      });
    }
    for (const g of grants) {
      const slot = slots.get(member(g.community_id, g.member_id));
      const grant = grantFromRow(g);
      slot?.grants.push({ id: g.id, key: grantKey(grant), grant, recordedAt: g.recorded_at.toISOString() });
    }
    for (const slot of slots.values()) slot.grants.sort(byKey);
  }

  private async write(
    tx: ProjectionTx,
    w: {
      slots: Map<string, MemberSlot>;
      facts: { c: string; m: string; id: string; at: number; fact: MembershipEvent }[];
      grantInserts: { id: string; c: string; m: string; g: AccessGrant; recordedAt: string }[];
      grantSupersedes: Map<string, string>;
      grantDeletes: Set<string>;
      changes: (AccessChange & {
        id: string;
        c: string;
        m: string;
        ordinal: number;
        recordedAt: string;
        actor: string | null;
        eventId: string;
      })[];
      newLinks: { c: string; k: string; m: string }[];
      newlyParked: Parked[];
      released: Set<string>;
      catalogs: Map<string, Catalog>;
      catalogsChanged: Set<string>;
    },
  ): Promise<void> {
    const dirty = [...w.slots.values()].filter((s) => s.dirty);
    // Large batches go as one JSON parameter: cheaper to encode than many parallel arrays.
    if (dirty.length > 0) {
      await tx.query(
        `INSERT INTO member_states (community_id, member_id, email, doc, history_count)
         SELECT c, m, email, doc, n FROM json_to_recordset($1::json) AS t(c text, m text, email text, doc json, n int)
         ON CONFLICT (community_id, member_id) DO UPDATE
           SET email = EXCLUDED.email, doc = EXCLUDED.doc, history_count = EXCLUDED.history_count`,
        [
          JSON.stringify(
            dirty.map((s) => ({
              c: s.communityId,
              m: s.memberId,
              email: s.doc.email ?? null,
              doc: s.doc,
              n: s.historyCount,
            })),
          ),
        ],
      );
    }
    if (w.facts.length > 0) {
      await tx.query(
        `INSERT INTO member_facts (community_id, member_id, event_id, observed_at, fact)
         SELECT c, m, id, at, fact FROM json_to_recordset($1::json) AS t(c text, m text, id text, at timestamptz, fact json)
         ON CONFLICT DO NOTHING`,
        [JSON.stringify(w.facts.map((f) => ({ c: f.c, m: f.m, id: f.id, at: iso(f.at), fact: f.fact })))],
      );
    }
    if (w.newLinks.length > 0) {
      await tx.query(
        `INSERT INTO stripe_links (community_id, stripe_key, member_id)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) ON CONFLICT DO NOTHING`,
        [w.newLinks.map((l) => l.c), w.newLinks.map((l) => l.k), w.newLinks.map((l) => l.m)],
      );
    }
    const parkedNow = w.newlyParked.filter((p) => !w.released.has(member(p.communityId, p.eventId)));
    const releasedBefore = [...w.released]
      .map((k) => k.split('\u0000'))
      .filter(([c, id]) => !w.newlyParked.some((p) => p.communityId === c && p.eventId === id));
    if (releasedBefore.length > 0) {
      await tx.query(
        `DELETE FROM stripe_unlinked u USING unnest($1::text[], $2::text[]) AS r(c, id) WHERE u.community_id = r.c AND u.event_id = r.id`,
        [releasedBefore.map((r) => r[0]), releasedBefore.map((r) => r[1])],
      );
    }
    if (parkedNow.length > 0) {
      await tx.query(
        `INSERT INTO stripe_unlinked (community_id, event_id, keys, reading, occurred_at, recorded_at, reason)
         SELECT c, id, string_to_array(k, ' '), r, o, rec, reason
           FROM unnest($1::text[], $2::text[], $3::text[], $4::json[], $5::timestamptz[], $6::timestamptz[], $7::text[]) AS t(c, id, k, r, o, rec, reason)
         ON CONFLICT DO NOTHING`,
        [
          parkedNow.map((p) => p.communityId),
          parkedNow.map((p) => p.eventId),
          parkedNow.map((p) => p.keys.join(' ')),
          parkedNow.map((p) => JSON.stringify(p.reading)),
          parkedNow.map((p) => p.occurredAt),
          parkedNow.map((p) => p.recordedAt),
          parkedNow.map((p) => p.reason),
        ],
      );
      for (const p of parkedNow)
        this.log.warn(
          { communityId: p.communityId, eventId: p.eventId, reason: p.reason },
          'stripe event not linked to a member yet',
        );
    }
    if (w.catalogsChanged.size > 0) {
      const cs = [...w.catalogsChanged];
      await tx.query(
        `INSERT INTO access_catalogs (community_id, state) SELECT * FROM unnest($1::text[], $2::jsonb[])
         ON CONFLICT (community_id) DO UPDATE SET state = EXCLUDED.state`,
        [cs, cs.map((c) => JSON.stringify(w.catalogs.get(c)))],
      );
    }
    if (w.grantDeletes.size > 0) {
      await tx.query('DELETE FROM access_grants WHERE id = ANY($1)', [[...w.grantDeletes]]);
    }
    if (w.grantInserts.length > 0) {
      await tx.query(
        `INSERT INTO access_grants (id, community_id, member_id, resource_kind, resource_id, source, valid_from, valid_until,
           suspended, caused_by, recorded_at, superseded_at)
         SELECT id, c, m, kind, rid, source, vf, vu, sus, cause, rec, NULL
           FROM json_to_recordset($1::json) AS t(id text, c text, m text, kind text, rid text, source text, vf timestamptz,
             vu timestamptz, sus boolean, cause text, rec timestamptz)`,
        [
          JSON.stringify(
            w.grantInserts.map((g) => ({
              id: g.id,
              c: g.c,
              m: g.m,
              kind: g.g.resource.kind,
              rid: g.g.resource.id ?? null,
              source: g.g.source,
              vf: iso(g.g.validFrom),
              vu: g.g.validUntil === null ? null : iso(g.g.validUntil),
              sus: g.g.suspended,
              cause: g.g.causedBy,
              rec: g.recordedAt,
            })),
          ),
        ],
      );
    }
    // After the inserts: a version written and replaced within this batch is superseded too.
    if (w.grantSupersedes.size > 0) {
      await tx.query(
        `UPDATE access_grants g SET superseded_at = s.at FROM unnest($1::text[], $2::timestamptz[]) AS s(id, at) WHERE g.id = s.id`,
        [[...w.grantSupersedes.keys()], [...w.grantSupersedes.values()]],
      );
    }
    if (w.changes.length > 0) {
      await tx.query(
        `INSERT INTO access_changes (id, community_id, member_id, ordinal, resource_kind, resource_id, change, source,
           effective_at, recorded_at, valid_until, actor, caused_by, event_id)
         SELECT id, c, m, n, kind, rid, change, source, eff, rec, vu, actor, cause, ev
           FROM json_to_recordset($1::json) AS t(id text, c text, m text, n int, kind text, rid text, change text, source text,
             eff timestamptz, rec timestamptz, vu timestamptz, actor text, cause text, ev text)`,
        [
          JSON.stringify(
            w.changes.map((c) => ({
              id: c.id,
              c: c.c,
              m: c.m,
              n: c.ordinal,
              kind: c.resource.kind,
              rid: c.resource.id ?? null,
              change: c.change,
              source: c.source,
              eff: iso(c.effectiveAt),
              rec: c.recordedAt,
              vu: c.validUntil === null ? null : iso(c.validUntil),
              actor: c.actor,
              cause: c.causedBy,
              ev: c.eventId,
            })),
          ),
        ],
      );
    }
  }
}

/** The member's document after one fact: the domain fold plus invoice actions and the email. */
export function foldDoc(doc: MemberDoc, fact: MembershipEvent): MemberDoc {
  const state = evolveMembership(doc.state, fact);
  let { invoices, email } = doc;
  if (fact.type === 'InvoicePaymentActionRequired' || fact.type === 'InvoicePaid') {
    const d = fact.data;
    const prev = invoices[d.invoiceId] ?? {};
    const next =
      fact.type === 'InvoicePaid'
        ? { ...prev, paidAt: Math.min(prev.paidAt ?? Infinity, d.observedAt) }
        : { ...prev, actionAt: Math.min(prev.actionAt ?? Infinity, d.observedAt) };
    invoices = {
      ...invoices,
      [d.invoiceId]: { ...next, ...(d.subscriptionId && { subscriptionId: d.subscriptionId }) },
    };
  }
  if (fact.type === 'MemberJoined' && fact.data.email && !email) email = fact.data.email.toLowerCase();
  return { ...doc, state, invoices, ...(email && { email }) };
}
