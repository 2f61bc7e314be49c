import type { EpochMs } from '../time';
import type { ChangeTiming, ProrationLine } from '../proration/proration';

type Fact<Type extends string, Data> = { type: Type; data: Data };

/** A member asked to move to another price; an IMMEDIATE change carries the preview Stripe should match. */
export type TierChangeRequested = Fact<
  'TierChangeRequested',
  {
    communityId: string;
    memberId: string;
    subscriptionId: string;
    itemId: string;
    fromPriceId?: string;
    fromStripePriceId: string;
    toPriceId: string;
    toStripePriceId: string;
    quantity: number;
    timing: ChangeTiming;
    /** IMMEDIATE: the `proration_date` sent to Stripe; PERIOD_END: when the new price starts. */
    prorationDate: EpochMs;
    preview: {
      credit: number;
      charge: number;
      net: number;
      dueNow: number;
      currency: string;
      lines: ProrationLine[];
    };
  }
>;

export type PriceMigrationKind = 'PRICE_CHANGE' | 'GROUP_TO_TIERS';

/** One subscriber of a migration was switched (IMMEDIATE) or scheduled to switch at `effectiveAt`. */
export type MemberPriceMigrationScheduled = Fact<
  'MemberPriceMigrationScheduled',
  {
    communityId: string;
    migrationId: string;
    kind: PriceMigrationKind;
    memberId: string;
    subscriptionId: string;
    fromStripePriceId: string;
    toPriceId: string;
    toStripePriceId: string;
    effectiveAt: EpochMs;
    timing: ChangeTiming;
  }
>;

/** A migration's run got through its subscriber list (a rerun picks up only members not yet scheduled). */
export type PriceMigrationCompleted = Fact<
  'PriceMigrationCompleted',
  {
    communityId: string;
    migrationId: string;
    kind: PriceMigrationKind;
    migrated: number;
    skipped: number;
    at: EpochMs;
  }
>;

export type TiersEvent = TierChangeRequested | MemberPriceMigrationScheduled | PriceMigrationCompleted;

export const TIERS_EVENT_TYPES = [
  'TierChangeRequested',
  'MemberPriceMigrationScheduled',
  'PriceMigrationCompleted',
] as const satisfies readonly TiersEvent['type'][];
