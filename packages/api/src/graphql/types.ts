import { GraphQLJSON } from 'graphql-scalars';
import { Field, Float, ID, Int, ObjectType, createUnionType } from 'type-graphql';
import {
  AccessChangeKind,
  AccessSource,
  BillingFrequency,
  ChangeTiming,
  CouponDuration,
  InvitationAudience,
  MembershipStatus,
  Region,
  ResourceKind,
} from './enums';

// GraphQL object types: plain data shapes filled by the query objects, never TypeORM entities.

@ObjectType()
export class PageInfo {
  @Field() hasNextPage!: boolean;
  @Field(() => String, { nullable: true }) endCursor!: string | null;
}

@ObjectType()
export class LedgerEvent {
  @Field(() => ID) id!: string;
  @Field({ description: 'Opaque, ordered within the community.' }) position!: string;
  @Field() type!: string;
  @Field(() => ID) communityId!: string;
  @Field(() => String, { nullable: true }) subject!: string | null;
  @Field() source!: string;
  @Field(() => String, { nullable: true }) actor!: string | null;
  @Field() occurredAt!: Date;
  @Field() recordedAt!: Date;
  @Field(() => GraphQLJSON) data!: unknown;
}

@ObjectType()
export class LedgerEventEdge {
  @Field() cursor!: string;
  @Field(() => LedgerEvent) node!: LedgerEvent;
}

@ObjectType()
export class LedgerEventConnection {
  @Field(() => [LedgerEventEdge]) edges!: LedgerEventEdge[];
  @Field(() => PageInfo) pageInfo!: PageInfo;
}

@ObjectType()
export class Price {
  @Field(() => ID) id!: string;
  @Field() stripePriceId!: string;
  // `product` and `supersededBy` are resolved by PriceResolver from the catalog.
  @Field(() => Int) amount!: number;
  @Field() currency!: string;
  @Field(() => BillingFrequency) frequency!: BillingFrequency;
  @Field(() => Int, { nullable: true }) installments!: number | null;
  @Field(() => Int, { nullable: true }) trialDays!: number | null;
  @Field() active!: boolean;
  communityId!: string;
  productKind!: 'TIER' | 'GROUP' | 'EVENT';
  productId!: string;
  supersededById!: string | null;
}

@ObjectType()
export class Group {
  @Field(() => ID) id!: string;
  @Field() name!: string;
  @Field(() => [Price]) prices!: Price[];
}

@ObjectType()
export class Tier {
  @Field(() => ID) id!: string;
  @Field() name!: string;
  @Field(() => Int) rank!: number;
  @Field(() => [Group]) groups!: Group[];
  @Field(() => [Price]) prices!: Price[];
}

@ObjectType()
export class Event {
  @Field(() => ID) id!: string;
  @Field() name!: string;
  @Field() startsAt!: Date;
  @Field() endsAt!: Date;
  @Field(() => Int, { nullable: true }) capacity!: number | null;
  @Field(() => [Price]) prices!: Price[];
}

export const Product = createUnionType({
  name: 'Product',
  types: () => [Tier, Group, Event] as const,
  resolveType: (value) => {
    if ('rank' in value) return Tier;
    if ('startsAt' in value) return Event;
    return Group;
  },
});

@ObjectType()
export class Community {
  @Field(() => ID) id!: string;
  @Field() name!: string;
  @Field(() => Region) region!: Region;
  @Field(() => String, { nullable: true }) stripeAccountId!: string | null;
  @Field() paidOnly!: boolean;
  @Field(() => Date, { nullable: true }) freeMembersUntil!: Date | null;
  @Field(() => Int) pastDueGraceDays!: number;
  @Field(() => [Tier]) tiers!: Tier[];
  @Field(() => [Group]) groups!: Group[];
  @Field(() => [Event]) events!: Event[];
}

@ObjectType()
export class Resource {
  @Field(() => ResourceKind) kind!: ResourceKind;
  @Field(() => ID, { nullable: true }) id!: string | null;
  @Field() name!: string;
}

@ObjectType()
export class ScheduledChange {
  @Field(() => Price) toPrice!: Price;
  @Field() effectiveAt!: Date;
}

@ObjectType()
export class Membership {
  @Field(() => ID) communityId!: string;
  @Field(() => ID) memberId!: string;
  @Field(() => MembershipStatus) status!: MembershipStatus;
  @Field(() => Tier, { nullable: true }) tier!: Tier | null;
  @Field(() => Price, { nullable: true }) price!: Price | null;
  @Field(() => Date, { nullable: true }) trialEndsAt!: Date | null;
  @Field(() => Date, { nullable: true }) currentPeriodEnd!: Date | null;
  @Field() cancelAtPeriodEnd!: boolean;
  @Field(() => Int, { nullable: true }) installmentsPaid!: number | null;
  @Field(() => Int, { nullable: true }) installmentsTotal!: number | null;
  @Field(() => ScheduledChange, { nullable: true }) scheduledChange!: ScheduledChange | null;
  @Field(() => String, { nullable: true }) stripeSubscriptionId!: string | null;
  @Field({
    description: 'A renewal waits for the member to authenticate the payment (e.g. an Indian e-mandate).',
  })
  paymentActionRequired!: boolean;
}

@ObjectType()
export class AccessGrant {
  @Field(() => Resource) resource!: Resource;
  @Field(() => AccessSource) source!: AccessSource;
  @Field() validFrom!: Date;
  @Field(() => Date, { nullable: true }) validUntil!: Date | null;
  @Field(() => LedgerEvent) causedBy!: LedgerEvent;
}

@ObjectType()
export class AccessDecision {
  @Field() allowed!: boolean;
  @Field() reason!: string;
  @Field(() => Date, { nullable: true }) validUntil!: Date | null;
  @Field(() => [AccessGrant]) grants!: AccessGrant[];
}

@ObjectType()
export class AccessChange {
  @Field(() => ID) id!: string;
  @Field(() => Resource) resource!: Resource;
  @Field(() => AccessChangeKind) change!: AccessChangeKind;
  @Field(() => AccessSource) source!: AccessSource;
  @Field() effectiveAt!: Date;
  @Field() recordedAt!: Date;
  @Field(() => String, { nullable: true }) actor!: string | null;
  @Field(() => LedgerEvent) causedBy!: LedgerEvent;
}

@ObjectType()
export class AccessChangeEdge {
  @Field() cursor!: string;
  @Field(() => AccessChange) node!: AccessChange;
}

@ObjectType()
export class AccessChangeConnection {
  @Field(() => [AccessChangeEdge]) edges!: AccessChangeEdge[];
  @Field(() => PageInfo) pageInfo!: PageInfo;
}

@ObjectType()
export class ProrationLine {
  @Field() description!: string;
  @Field(() => Int) amount!: number;
  @Field() periodStart!: Date;
  @Field() periodEnd!: Date;
}

@ObjectType()
export class ProrationPreview {
  @Field(() => Price) fromPrice!: Price;
  @Field(() => Price) toPrice!: Price;
  @Field() prorationDate!: Date;
  @Field(() => Int) credit!: number;
  @Field(() => Int) charge!: number;
  @Field(() => Int) net!: number;
  @Field() currency!: string;
  @Field(() => [ProrationLine]) lines!: ProrationLine[];
  @Field(() => Int) dueNow!: number;
  @Field(() => ChangeTiming) timing!: ChangeTiming;
}

@ObjectType()
export class ProrationOutcome {
  @Field(() => ID) id!: string;
  @Field(() => ID) memberId!: string;
  @Field(() => String, { nullable: true }) stripeInvoiceId!: string | null;
  @Field(() => Price, { nullable: true }) fromPrice!: Price | null;
  @Field(() => Price, { nullable: true }) toPrice!: Price | null;
  @Field(() => Int) credit!: number;
  @Field(() => Int) charge!: number;
  @Field(() => Int) net!: number;
  @Field() currency!: string;
  @Field() effectiveAt!: Date;
  @Field(() => Boolean, { nullable: true }) previewMatched!: boolean | null;
  @Field(() => LedgerEvent) causedBy!: LedgerEvent;
}

@ObjectType()
export class MemberAccess {
  @Field(() => ID) memberId!: string;
  @Field(() => Membership) membership!: Membership;
  @Field(() => Date, { nullable: true }) validUntil!: Date | null;
  @Field(() => AccessSource) source!: AccessSource;
}

@ObjectType()
export class MemberAccessEdge {
  @Field() cursor!: string;
  @Field(() => MemberAccess) node!: MemberAccess;
}

@ObjectType()
export class MemberAccessConnection {
  @Field(() => [MemberAccessEdge]) edges!: MemberAccessEdge[];
  @Field(() => PageInfo) pageInfo!: PageInfo;
  @Field(() => Int) totalCount!: number;
}

@ObjectType()
export class UpsellOffer {
  @Field(() => Product) product!: typeof Product;
  @Field(() => Price) price!: Price;
  @Field(() => Int, { nullable: true }) trialDays!: number | null;
  @Field(() => ProrationPreview, { nullable: true }) preview!: ProrationPreview | null;
}

@ObjectType()
export class CheckoutSession {
  @Field(() => ID) id!: string;
  @Field() url!: string;
}

@ObjectType()
export class InvitationLink {
  @Field(() => ID) id!: string;
  @Field() token!: string;
  @Field() url!: string;
  @Field() embedHtml!: string;
  @Field(() => InvitationAudience) audience!: InvitationAudience;
  @Field(() => [Price]) prices!: Price[];
  @Field(() => Date, { nullable: true }) expiresAt!: Date | null;
  @Field(() => Int, { nullable: true }) maxUses!: number | null;
  @Field(() => Int, {
    description:
      'Uses taken: one when a buyer starts Checkout, given back if Stripe expires the session unpaid (after an hour on a link with maxUses).',
  })
  uses!: number;
}

@ObjectType()
export class PromoCode {
  @Field(() => ID) id!: string;
  @Field() code!: string;
  @Field() stripePromotionCodeId!: string;
  @Field(() => Float, { nullable: true }) percentOff!: number | null;
  @Field(() => Int, { nullable: true }) amountOff!: number | null;
  @Field(() => String, { nullable: true }) currency!: string | null;
  @Field(() => CouponDuration) duration!: CouponDuration;
  @Field(() => Int, { nullable: true }) durationInMonths!: number | null;
  @Field(() => Int, { nullable: true }) maxRedemptions!: number | null;
  @Field(() => Date, { nullable: true }) expiresAt!: Date | null;
  @Field(() => Int) timesRedeemed!: number;
}

@ObjectType()
export class ImportReport {
  @Field() dryRun!: boolean;
  @Field(() => Int) linked!: number;
  @Field(() => Int) invited!: number;
  @Field(() => Int) skipped!: number;
  @Field(() => [String]) problems!: string[];
}

@ObjectType()
export class RebuildReport {
  @Field() projection!: string;
  @Field(() => Int) events!: number;
  @Field(() => Float) seconds!: number;
}
