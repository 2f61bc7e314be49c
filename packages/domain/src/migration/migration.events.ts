import type { EpochMs } from '../time';

type Fact<Type extends string, Data> = { type: Type; data: Data };

/**
 * A customer who paid at Stripe before the community used Gatehouse and is not a member yet: a
 * pending member, invited to claim the account with `invitationToken`.
 */
export type MemberImported = Fact<
  'MemberImported',
  {
    communityId: string;
    memberId: string;
    stripeCustomerId: string;
    email: string;
    invitationToken: string;
    importedAt: EpochMs;
  }
>;

/**
 * A Stripe subscription found on an import, tied to a member. `subscription` is the Stripe object as
 * listed (verbatim, in the account's API version); access follows its state at `importedAt`.
 */
export type SubscriptionImported = Fact<
  'SubscriptionImported',
  {
    communityId: string;
    memberId: string;
    stripeCustomerId: string;
    email?: string;
    /** How the member was found: Stripe metadata, a customer id already linked, an email, or new. */
    linkedBy: MemberLinkedBy;
    subscription: Record<string, unknown>;
    /** A canceled subscription paid through a period that has not ended: access runs until then. */
    paidThroughUntil?: EpochMs;
    importedAt: EpochMs;
  }
>;

export type MemberLinkedBy = 'metadata' | 'customer' | 'email' | 'new';

export type MigrationFact = MemberImported | SubscriptionImported;

export const MIGRATION_FACT_TYPES = [
  'MemberImported',
  'SubscriptionImported',
] as const satisfies readonly MigrationFact['type'][];

export function isMigrationFact(event: { type: string }): event is MigrationFact {
  return (MIGRATION_FACT_TYPES as readonly string[]).includes(event.type);
}

/** Fact ids are derived from Stripe ids, so a re-run of an import appends nothing the ledger knows. */
export const migrationFactIds = {
  subscription: (communityId: string, subscriptionId: string) => `migration:${communityId}:${subscriptionId}`,
  member: (communityId: string, customerId: string) => `migration:${communityId}:member:${customerId}`,
};

export function isMigrationFactId(id: string): boolean {
  return id.startsWith('migration:');
}
