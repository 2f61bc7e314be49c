import type { Caller } from '../auth/auth';
import type {
  AccessChangeConnection,
  AccessDecision,
  CheckoutSession,
  Community,
  Event,
  Group,
  ImportReport,
  InvitationLink,
  LedgerEventConnection,
  MemberAccessConnection,
  Membership,
  Price,
  PromoCode,
  ProrationOutcome,
  ProrationPreview,
  RebuildReport,
  Tier,
  UpsellOffer,
} from './types';
import type {
  ChangePriceInput,
  ChangeTierInput,
  CreateCommunityInput,
  CreateEventInput,
  CreateGroupInput,
  CreateInvitationLinkInput,
  CreatePriceInput,
  CreatePromoCodeInput,
  CreateTierInput,
  GrantAccessInput,
  ImportStripeSubscriptionsInput,
  MigrateGroupToTiersInput,
  ResourceInput,
  JoinCommunityInput,
  SetPaidOnlyInput,
  StartCheckoutInput,
} from './inputs';

/**
 * What the resolvers need from the rest of Gatehouse. Resolvers authorise and delegate; commands go
 * through the ledger, queries through the projections' query objects. Every method is scoped by the
 * community id it receives.
 */
export interface GatehouseServices {
  // queries
  community(id: string): Promise<Community | null>;
  communityExists(id: string): Promise<boolean>;
  price(communityId: string, priceId: string): Promise<Price | null>;
  product(
    communityId: string,
    kind: 'TIER' | 'GROUP' | 'EVENT',
    id: string,
  ): Promise<Tier | Group | Event | null>;
  membership(communityId: string, memberId: string, asOf?: Date): Promise<Membership>;
  canAccess(
    communityId: string,
    memberId: string,
    resource: ResourceInput,
    at?: Date,
    asKnownAt?: Date,
  ): Promise<AccessDecision>;
  accessHistory(
    communityId: string,
    memberId: string,
    first?: number,
    after?: string,
  ): Promise<AccessChangeConnection>;
  accessList(
    communityId: string,
    resource: ResourceInput,
    at?: Date,
    first?: number,
    after?: string,
  ): Promise<MemberAccessConnection>;
  ledgerEvents(
    communityId: string,
    after?: string,
    first?: number,
    types?: string[],
  ): Promise<LedgerEventConnection>;
  previewTierChange(
    communityId: string,
    memberId: string,
    toPriceId: string,
    at?: Date,
  ): Promise<ProrationPreview>;
  prorationOutcomes(communityId: string, memberId?: string): Promise<ProrationOutcome[]>;
  upsellOffers(communityId: string, memberId: string): Promise<UpsellOffer[]>;
  promoCodes(communityId: string): Promise<PromoCode[]>;
  // commands
  createCommunity(caller: Caller, input: CreateCommunityInput): Promise<Community>;
  createTier(caller: Caller, input: CreateTierInput): Promise<Tier>;
  createGroup(caller: Caller, input: CreateGroupInput): Promise<Group>;
  createEvent(caller: Caller, input: CreateEventInput): Promise<Event>;
  createPrice(caller: Caller, input: CreatePriceInput): Promise<Price>;
  changePrice(caller: Caller, input: ChangePriceInput): Promise<Price>;
  createPromoCode(caller: Caller, input: CreatePromoCodeInput): Promise<PromoCode>;
  createInvitationLink(caller: Caller, input: CreateInvitationLinkInput): Promise<InvitationLink>;
  startCheckout(caller: Caller | null, input: StartCheckoutInput): Promise<CheckoutSession>;
  changeTier(caller: Caller, input: ChangeTierInput): Promise<Membership>;
  billingPortalUrl(caller: Caller, communityId: string, memberId: string, returnUrl: string): Promise<string>;
  grantComplimentaryAccess(caller: Caller, input: GrantAccessInput): Promise<AccessDecision>;
  revokeComplimentaryAccess(
    caller: Caller,
    communityId: string,
    memberId: string,
    resource: ResourceInput,
    reason: string,
  ): Promise<AccessDecision>;
  setPaidOnly(caller: Caller, input: SetPaidOnlyInput): Promise<Community>;
  importStripeSubscriptions(caller: Caller, input: ImportStripeSubscriptionsInput): Promise<ImportReport>;
  joinCommunity(caller: Caller, input: JoinCommunityInput): Promise<AccessDecision>;
  migrateGroupToTiers(caller: Caller, input: MigrateGroupToTiersInput): Promise<ImportReport>;
  rebuildProjections(caller: Caller, communityId?: string): Promise<RebuildReport[]>;
}

export type GraphQLContext = {
  caller: Caller | null;
  requestId: string;
  services: GatehouseServices;
};
