import type { Catalog } from '../catalog/catalog.evolve';
import { BadUserInputError } from '../errors';
import type { EpochMs } from '../time';
import {
  migrationFactIds,
  type MemberImported,
  type MemberLinkedBy,
  type SubscriptionImported,
} from './migration.events';

/** A Stripe subscription as the import sees it (translated at the edge, plus the verbatim object). */
export type ImportCandidate = {
  subscriptionId: string;
  customerId: string | null;
  /** The customer's email, when Stripe has one. */
  email?: string;
  /** `gatehouse_member_id` from the subscription's (or customer's) metadata. */
  metadataMemberId?: string;
  status: string;
  currentPeriodEnd: EpochMs | null;
  raw: Record<string, unknown>;
};

/** Members the community already knows, by the keys an import can match. */
export type MemberDirectory = {
  byCustomer: ReadonlyMap<string, string>;
  /** Lower-case email → member. */
  byEmail: ReadonlyMap<string, string>;
};

export type ImportInput = {
  communityId: string;
  candidates: readonly ImportCandidate[];
  directory: MemberDirectory;
  /** Ids of migration facts already in the ledger. */
  known: ReadonlySet<string>;
  now: EpochMs;
  /** A new member's id for a Stripe customer (deterministic, so a resumed import finds the same one). */
  newMemberId: (customerId: string) => string;
  invitationToken: (customerId: string) => string;
};

export type ImportOutcome =
  | { subscriptionId: string; action: 'link' | 'invite'; memberId: string; linkedBy: MemberLinkedBy }
  | { subscriptionId: string; action: 'skip'; reason: string };

export type PlannedFact = (MemberImported | SubscriptionImported) & { id: string; subject: string };

export type ImportReportCounts = { linked: number; invited: number; skipped: number; problems: string[] };

export type ImportPlan = { facts: PlannedFact[]; outcomes: ImportOutcome[]; report: ImportReportCounts };

/** The Stripe prices to import must be prices of the community's catalog (so access maps to a product). */
export function checkImportPricesOrThrow(catalog: Catalog, stripePriceIds: readonly string[]): void {
  const known = new Set(Object.values(catalog.prices).map((p) => p.stripePriceId));
  const unknown = stripePriceIds.filter((id) => !known.has(id));
  if (stripePriceIds.length === 0)
    throw new BadUserInputError('Name at least one Stripe price to import', {
      stripePriceIds: 'must not be empty',
    });
  if (unknown.length > 0)
    throw new BadUserInputError(
      `Unknown Stripe prices: ${unknown.join(', ')}; add them with createPrice first`,
      {
        stripePriceIds: `not prices of this community: ${unknown.join(', ')}`,
      },
    );
}

// A first payment that never succeeded granted nothing at Stripe either.
const NEVER_PAID = new Set(['incomplete', 'incomplete_expired']);

/**
 * Decides what an import appends: per subscription, the member it belongs to (metadata, then a
 * customer id already linked, then the customer's email among members, else a new pending member),
 * and the migration facts, with ids derived from Stripe's so that facts already appended are left out.
 */
export function planImport(input: ImportInput): ImportPlan {
  const { communityId, now } = input;
  const facts: PlannedFact[] = [];
  const outcomes: ImportOutcome[] = [];
  const problems: string[] = [];
  const newMembers = new Map<string, string>();
  const seen = new Set<string>();
  let linked = 0;
  let invited = 0;
  const skip = (subscriptionId: string, reason: string, problem = false): void => {
    outcomes.push({ subscriptionId, action: 'skip', reason });
    if (problem) problems.push(`${subscriptionId}: ${reason}`);
  };

  for (const c of input.candidates) {
    if (seen.has(c.subscriptionId)) continue;
    seen.add(c.subscriptionId);
    const factId = migrationFactIds.subscription(communityId, c.subscriptionId);
    if (input.known.has(factId)) {
      skip(c.subscriptionId, 'already imported');
      continue;
    }
    if (NEVER_PAID.has(c.status)) {
      skip(c.subscriptionId, `status ${c.status}: never paid`);
      continue;
    }
    let paidThroughUntil: EpochMs | undefined;
    if (c.status === 'canceled') {
      // Canceled but paid through a period that is still running: access until that period ends.
      if (c.currentPeriodEnd === null || c.currentPeriodEnd <= now) {
        skip(c.subscriptionId, 'canceled and its last period is over');
        continue;
      }
      paidThroughUntil = c.currentPeriodEnd;
    }
    if (!c.customerId) {
      skip(c.subscriptionId, 'no Stripe customer', true);
      continue;
    }
    const email = c.email?.trim().toLowerCase() || undefined;
    let memberId: string | undefined;
    let linkedBy: MemberLinkedBy = 'new';
    if (c.metadataMemberId) [memberId, linkedBy] = [c.metadataMemberId, 'metadata'];
    else if (input.directory.byCustomer.has(c.customerId))
      [memberId, linkedBy] = [input.directory.byCustomer.get(c.customerId), 'customer'];
    else if (email && input.directory.byEmail.has(email))
      [memberId, linkedBy] = [input.directory.byEmail.get(email), 'email'];
    else if (newMembers.has(c.customerId)) memberId = newMembers.get(c.customerId);

    if (memberId === undefined) {
      if (!email) {
        skip(c.subscriptionId, `customer ${c.customerId} has no email and no linked member`, true);
        continue;
      }
      memberId = input.newMemberId(c.customerId);
      newMembers.set(c.customerId, memberId);
      const memberFactId = migrationFactIds.member(communityId, c.customerId);
      if (!input.known.has(memberFactId)) {
        invited++;
        facts.push({
          id: memberFactId,
          subject: memberId,
          type: 'MemberImported',
          data: {
            communityId,
            memberId,
            stripeCustomerId: c.customerId,
            email,
            invitationToken: input.invitationToken(c.customerId),
            importedAt: now,
          },
        });
      }
    }
    if (linkedBy !== 'new') linked++;
    outcomes.push({
      subscriptionId: c.subscriptionId,
      action: linkedBy === 'new' ? 'invite' : 'link',
      memberId,
      linkedBy,
    });
    facts.push({
      id: factId,
      subject: memberId,
      type: 'SubscriptionImported',
      data: {
        communityId,
        memberId,
        stripeCustomerId: c.customerId,
        ...(email && { email }),
        linkedBy,
        subscription: c.raw,
        ...(paidThroughUntil !== undefined && { paidThroughUntil }),
        importedAt: now,
      },
    });
  }
  const skipped = outcomes.filter((o) => o.action === 'skip').length;
  return { facts, outcomes, report: { linked, invited, skipped, problems } };
}
