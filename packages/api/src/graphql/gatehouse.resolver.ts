import { Arg, Ctx, FieldResolver, ID, Int, Mutation, Query, Resolver, Root } from 'type-graphql';
import {
  AuthError,
  assertAdminOrSelf,
  assertCommunityAdmin,
  assertPlatformAdmin,
  type Caller,
} from '../auth/auth';
import {
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
import type { GraphQLContext } from './services';
import {
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
  Product,
  PromoCode,
  ProrationOutcome,
  ProrationPreview,
  RebuildReport,
  Tier,
  UpsellOffer,
} from './types';

function signedIn(caller: Caller | null): Caller {
  if (!caller) throw new AuthError('UNAUTHENTICATED', 'sign in to do this');
  return caller;
}

@Resolver()
export class GatehouseResolver {
  // ---------------------------------------------------------------- queries

  @Query(() => Community, { nullable: true })
  async community(@Arg('id', () => ID) id: string, @Ctx() ctx: GraphQLContext): Promise<Community | null> {
    assertCommunityAdmin(ctx.caller, id);
    return ctx.services.community(id);
  }

  @Query(() => Membership)
  async membership(
    @Arg('communityId', () => ID) communityId: string,
    @Arg('memberId', () => ID) memberId: string,
    @Arg('asOf', () => Date, { nullable: true }) asOf: Date | undefined,
    @Ctx() ctx: GraphQLContext,
  ): Promise<Membership> {
    assertAdminOrSelf(ctx.caller, communityId, memberId);
    return ctx.services.membership(communityId, memberId, asOf ?? undefined);
  }

  @Query(() => AccessDecision)
  async canAccess(
    @Arg('communityId', () => ID) communityId: string,
    @Arg('memberId', () => ID) memberId: string,
    @Arg('resource', () => ResourceInput) resource: ResourceInput,
    @Arg('at', () => Date, { nullable: true }) at: Date | undefined,
    @Arg('asKnownAt', () => Date, { nullable: true }) asKnownAt: Date | undefined,
    @Ctx() ctx: GraphQLContext,
  ): Promise<AccessDecision> {
    assertAdminOrSelf(ctx.caller, communityId, memberId);
    return ctx.services.canAccess(communityId, memberId, resource, at ?? undefined, asKnownAt ?? undefined);
  }

  @Query(() => AccessChangeConnection)
  async accessHistory(
    @Arg('communityId', () => ID) communityId: string,
    @Arg('memberId', () => ID) memberId: string,
    @Arg('first', () => Int, { nullable: true }) first: number | undefined,
    @Arg('after', () => String, { nullable: true }) after: string | undefined,
    @Ctx() ctx: GraphQLContext,
  ): Promise<AccessChangeConnection> {
    assertAdminOrSelf(ctx.caller, communityId, memberId);
    return ctx.services.accessHistory(communityId, memberId, first ?? undefined, after ?? undefined);
  }

  @Query(() => MemberAccessConnection, { description: 'Who may see this resource at `at` (default now).' })
  async accessList(
    @Arg('communityId', () => ID) communityId: string,
    @Arg('resource', () => ResourceInput) resource: ResourceInput,
    @Arg('at', () => Date, { nullable: true }) at: Date | undefined,
    @Arg('first', () => Int, { nullable: true }) first: number | undefined,
    @Arg('after', () => String, { nullable: true }) after: string | undefined,
    @Ctx() ctx: GraphQLContext,
  ): Promise<MemberAccessConnection> {
    assertCommunityAdmin(ctx.caller, communityId);
    return ctx.services.accessList(
      communityId,
      resource,
      at ?? undefined,
      first ?? undefined,
      after ?? undefined,
    );
  }

  @Query(() => LedgerEventConnection)
  async ledgerEvents(
    @Arg('communityId', () => ID) communityId: string,
    @Arg('after', () => String, { nullable: true }) after: string | undefined,
    @Arg('first', () => Int, { nullable: true }) first: number | undefined,
    @Arg('types', () => [String], { nullable: true }) types: string[] | undefined,
    @Ctx() ctx: GraphQLContext,
  ): Promise<LedgerEventConnection> {
    assertCommunityAdmin(ctx.caller, communityId);
    return ctx.services.ledgerEvents(communityId, after ?? undefined, first ?? undefined, types ?? undefined);
  }

  @Query(() => ProrationPreview)
  async previewTierChange(
    @Arg('communityId', () => ID) communityId: string,
    @Arg('memberId', () => ID) memberId: string,
    @Arg('toPriceId', () => ID) toPriceId: string,
    @Arg('at', () => Date, { nullable: true }) at: Date | undefined,
    @Ctx() ctx: GraphQLContext,
  ): Promise<ProrationPreview> {
    assertAdminOrSelf(ctx.caller, communityId, memberId);
    return ctx.services.previewTierChange(communityId, memberId, toPriceId, at ?? undefined);
  }

  @Query(() => [ProrationOutcome])
  async prorationOutcomes(
    @Arg('communityId', () => ID) communityId: string,
    @Arg('memberId', () => ID, { nullable: true }) memberId: string | undefined,
    @Ctx() ctx: GraphQLContext,
  ): Promise<ProrationOutcome[]> {
    assertCommunityAdmin(ctx.caller, communityId);
    return ctx.services.prorationOutcomes(communityId, memberId ?? undefined);
  }

  @Query(() => [UpsellOffer])
  async upsellOffers(
    @Arg('communityId', () => ID) communityId: string,
    @Arg('memberId', () => ID) memberId: string,
    @Ctx() ctx: GraphQLContext,
  ): Promise<UpsellOffer[]> {
    assertAdminOrSelf(ctx.caller, communityId, memberId);
    return ctx.services.upsellOffers(communityId, memberId);
  }

  @Query(() => [PromoCode], { description: "A community's promo codes and how often each was redeemed." })
  async promoCodes(
    @Arg('communityId', () => ID) communityId: string,
    @Ctx() ctx: GraphQLContext,
  ): Promise<PromoCode[]> {
    assertCommunityAdmin(ctx.caller, communityId);
    return ctx.services.promoCodes(communityId);
  }

  // ---------------------------------------------------------------- mutations

  @Mutation(() => Community)
  async createCommunity(
    @Arg('input') input: CreateCommunityInput,
    @Ctx() ctx: GraphQLContext,
  ): Promise<Community> {
    assertPlatformAdmin(ctx.caller);
    return ctx.services.createCommunity(signedIn(ctx.caller), input);
  }

  @Mutation(() => Tier)
  async createTier(@Arg('input') input: CreateTierInput, @Ctx() ctx: GraphQLContext): Promise<Tier> {
    assertCommunityAdmin(ctx.caller, input.communityId);
    return ctx.services.createTier(signedIn(ctx.caller), input);
  }

  @Mutation(() => Group)
  async createGroup(@Arg('input') input: CreateGroupInput, @Ctx() ctx: GraphQLContext): Promise<Group> {
    assertCommunityAdmin(ctx.caller, input.communityId);
    return ctx.services.createGroup(signedIn(ctx.caller), input);
  }

  @Mutation(() => Event)
  async createEvent(@Arg('input') input: CreateEventInput, @Ctx() ctx: GraphQLContext): Promise<Event> {
    assertCommunityAdmin(ctx.caller, input.communityId);
    return ctx.services.createEvent(signedIn(ctx.caller), input);
  }

  @Mutation(() => Price)
  async createPrice(@Arg('input') input: CreatePriceInput, @Ctx() ctx: GraphQLContext): Promise<Price> {
    assertCommunityAdmin(ctx.caller, input.communityId);
    return ctx.services.createPrice(signedIn(ctx.caller), input);
  }

  @Mutation(() => Price)
  async changePrice(@Arg('input') input: ChangePriceInput, @Ctx() ctx: GraphQLContext): Promise<Price> {
    assertCommunityAdmin(ctx.caller, input.communityId);
    return ctx.services.changePrice(signedIn(ctx.caller), input);
  }

  @Mutation(() => PromoCode)
  async createPromoCode(
    @Arg('input') input: CreatePromoCodeInput,
    @Ctx() ctx: GraphQLContext,
  ): Promise<PromoCode> {
    assertCommunityAdmin(ctx.caller, input.communityId);
    return ctx.services.createPromoCode(signedIn(ctx.caller), input);
  }

  @Mutation(() => InvitationLink)
  async createInvitationLink(
    @Arg('input') input: CreateInvitationLinkInput,
    @Ctx() ctx: GraphQLContext,
  ): Promise<InvitationLink> {
    assertCommunityAdmin(ctx.caller, input.communityId);
    return ctx.services.createInvitationLink(signedIn(ctx.caller), input);
  }

  @Mutation(() => CheckoutSession)
  async startCheckout(
    @Arg('input') input: StartCheckoutInput,
    @Ctx() ctx: GraphQLContext,
  ): Promise<CheckoutSession> {
    // Without a token only an invitation link may start a checkout.
    if (!ctx.caller) {
      if (!input.invitationToken)
        throw new AuthError('UNAUTHENTICATED', 'sign in, or use an invitation link');
    } else if (input.memberId) {
      assertAdminOrSelf(ctx.caller, input.communityId, input.memberId);
    } else {
      assertCommunityAdmin(ctx.caller, input.communityId);
    }
    return ctx.services.startCheckout(ctx.caller, input);
  }

  @Mutation(() => Membership)
  async changeTier(@Arg('input') input: ChangeTierInput, @Ctx() ctx: GraphQLContext): Promise<Membership> {
    assertAdminOrSelf(ctx.caller, input.communityId, input.memberId);
    return ctx.services.changeTier(signedIn(ctx.caller), input);
  }

  @Mutation(() => String)
  async billingPortalUrl(
    @Arg('communityId', () => ID) communityId: string,
    @Arg('memberId', () => ID) memberId: string,
    @Arg('returnUrl') returnUrl: string,
    @Ctx() ctx: GraphQLContext,
  ): Promise<string> {
    assertAdminOrSelf(ctx.caller, communityId, memberId);
    return ctx.services.billingPortalUrl(signedIn(ctx.caller), communityId, memberId, returnUrl);
  }

  @Mutation(() => AccessDecision)
  async grantComplimentaryAccess(
    @Arg('input') input: GrantAccessInput,
    @Ctx() ctx: GraphQLContext,
  ): Promise<AccessDecision> {
    assertCommunityAdmin(ctx.caller, input.communityId);
    return ctx.services.grantComplimentaryAccess(signedIn(ctx.caller), input);
  }

  @Mutation(() => AccessDecision)
  async revokeComplimentaryAccess(
    @Arg('communityId', () => ID) communityId: string,
    @Arg('memberId', () => ID) memberId: string,
    @Arg('resource', () => ResourceInput) resource: ResourceInput,
    @Arg('reason') reason: string,
    @Ctx() ctx: GraphQLContext,
  ): Promise<AccessDecision> {
    assertCommunityAdmin(ctx.caller, communityId);
    return ctx.services.revokeComplimentaryAccess(
      signedIn(ctx.caller),
      communityId,
      memberId,
      resource,
      reason,
    );
  }

  @Mutation(() => Community)
  async setPaidOnly(@Arg('input') input: SetPaidOnlyInput, @Ctx() ctx: GraphQLContext): Promise<Community> {
    assertCommunityAdmin(ctx.caller, input.communityId);
    return ctx.services.setPaidOnly(signedIn(ctx.caller), input);
  }

  @Mutation(() => ImportReport)
  async importStripeSubscriptions(
    @Arg('input') input: ImportStripeSubscriptionsInput,
    @Ctx() ctx: GraphQLContext,
  ): Promise<ImportReport> {
    assertCommunityAdmin(ctx.caller, input.communityId);
    return ctx.services.importStripeSubscriptions(signedIn(ctx.caller), input);
  }

  @Mutation(() => AccessDecision, {
    description: 'A free member joins the community; answers their access to it.',
  })
  async joinCommunity(
    @Arg('input') input: JoinCommunityInput,
    @Ctx() ctx: GraphQLContext,
  ): Promise<AccessDecision> {
    assertCommunityAdmin(ctx.caller, input.communityId);
    return ctx.services.joinCommunity(signedIn(ctx.caller), input);
  }

  @Mutation(() => ImportReport)
  async migrateGroupToTiers(
    @Arg('input') input: MigrateGroupToTiersInput,
    @Ctx() ctx: GraphQLContext,
  ): Promise<ImportReport> {
    assertCommunityAdmin(ctx.caller, input.communityId);
    return ctx.services.migrateGroupToTiers(signedIn(ctx.caller), input);
  }

  @Mutation(() => [RebuildReport])
  async rebuildProjections(
    @Arg('communityId', () => ID, { nullable: true }) communityId: string | undefined,
    @Ctx() ctx: GraphQLContext,
  ): Promise<RebuildReport[]> {
    assertPlatformAdmin(ctx.caller);
    return ctx.services.rebuildProjections(signedIn(ctx.caller), communityId ?? undefined);
  }
}

@Resolver(() => Price)
export class PriceResolver {
  @FieldResolver(() => Product)
  async product(@Root() price: Price, @Ctx() ctx: GraphQLContext): Promise<typeof Product> {
    const p = await ctx.services.product(price.communityId, price.productKind, price.productId);
    if (!p) throw new Error(`price ${price.id} refers to a missing ${price.productKind} ${price.productId}`);
    return p;
  }

  @FieldResolver(() => Price, { nullable: true })
  async supersededBy(@Root() price: Price, @Ctx() ctx: GraphQLContext): Promise<Price | null> {
    return price.supersededById ? ctx.services.price(price.communityId, price.supersededById) : null;
  }
}
