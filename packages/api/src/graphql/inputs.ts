import {
  ArrayMaxSize,
  ArrayMinSize,
  IsEmail,
  IsInt,
  IsOptional,
  IsUrl,
  Length,
  Matches,
  Max,
  MaxLength,
  Min,
  ValidateNested,
} from 'class-validator';
import { Field, Float, ID, InputType, Int } from 'type-graphql';
import {
  BillingFrequency,
  ChangeTiming,
  CouponDuration,
  ExistingSubscribers,
  InvitationAudience,
  ProductKind,
  Region,
  ResourceKind,
} from './enums';

// Inputs are validated by class-validator before any resolver runs (`validateArgument` in schema.ts).

const urlOptions = { require_tld: false, require_protocol: true, protocols: ['http', 'https'] };

@InputType()
export class ResourceInput {
  @Field(() => ResourceKind) kind!: ResourceKind;
  @Field(() => ID, { nullable: true, description: 'Omitted for COMMUNITY.' })
  @IsOptional()
  @MaxLength(100)
  id?: string;
}

@InputType()
export class ProductInput {
  @Field(() => ProductKind) kind!: ProductKind;
  @Field(() => ID) @MaxLength(100) id!: string;
}

@InputType()
export class CreateCommunityInput {
  @Field() @Length(1, 200) name!: string;
  @Field(() => Region) region!: Region;
  @Field(() => String, { nullable: true })
  @IsOptional()
  @Matches(/^acct_[A-Za-z0-9]+$/)
  stripeAccountId?: string;
  @Field(() => Boolean, { nullable: true }) paidOnly?: boolean;
  @Field(() => Int, { nullable: true }) @IsOptional() @IsInt() @Min(0) @Max(60) pastDueGraceDays?: number;
}

@InputType()
export class CreateTierInput {
  @Field(() => ID) communityId!: string;
  @Field() @Length(1, 200) name!: string;
  @Field(() => Int) @IsInt() @Min(0) @Max(1000) rank!: number;
  @Field(() => [ID], { nullable: true }) @IsOptional() @ArrayMaxSize(200) groupIds?: string[];
  @Field(() => String, { nullable: true })
  @IsOptional()
  @Matches(/^prod_[A-Za-z0-9]+$/)
  stripeProductId?: string;
}

@InputType()
export class CreateGroupInput {
  @Field(() => ID) communityId!: string;
  @Field() @Length(1, 200) name!: string;
  @Field(() => String, { nullable: true })
  @IsOptional()
  @Matches(/^prod_[A-Za-z0-9]+$/)
  stripeProductId?: string;
}

@InputType()
export class CreateEventInput {
  @Field(() => ID) communityId!: string;
  @Field() @Length(1, 200) name!: string;
  @Field() startsAt!: Date;
  @Field() endsAt!: Date;
  @Field(() => Int, { nullable: true }) @IsOptional() @IsInt() @Min(1) @Max(1_000_000) capacity?: number;
  @Field(() => String, { nullable: true })
  @IsOptional()
  @Matches(/^prod_[A-Za-z0-9]+$/)
  stripeProductId?: string;
}

@InputType({
  description: 'With stripePriceId an existing Stripe price is linked; without it a Stripe price is created.',
})
export class CreatePriceInput {
  @Field(() => ID) communityId!: string;
  @Field(() => ProductInput) @ValidateNested() product!: ProductInput;
  @Field(() => Int) @IsInt() @Min(0) @Max(99_999_999) amount!: number;
  @Field()
  @Matches(/^[A-Za-z]{3}$/, { message: 'currency must be a three-letter ISO code' })
  currency!: string;
  @Field(() => BillingFrequency) frequency!: BillingFrequency;
  @Field(() => Int, { nullable: true }) @IsOptional() @IsInt() @Min(2) @Max(120) installments?: number;
  @Field(() => Int, { nullable: true }) @IsOptional() @IsInt() @Min(1) @Max(730) trialDays?: number;
  @Field(() => String, { nullable: true })
  @IsOptional()
  @Matches(/^price_[A-Za-z0-9]+$/)
  stripePriceId?: string;
}

@InputType()
export class ChangePriceInput {
  @Field(() => ID) communityId!: string;
  @Field(() => ID) priceId!: string;
  @Field(() => Int) @IsInt() @Min(0) @Max(99_999_999) amount!: number;
  @Field(() => ExistingSubscribers) existingSubscribers!: ExistingSubscribers;
}

@InputType()
export class CreatePromoCodeInput {
  @Field(() => ID) communityId!: string;
  @Field()
  @Matches(/^[A-Za-z0-9-]{1,200}$/, { message: 'code may only contain letters, digits and dashes' })
  code!: string;
  @Field(() => Float, { nullable: true }) @IsOptional() @Min(0.01) @Max(100) percentOff?: number;
  @Field(() => Int, { nullable: true }) @IsOptional() @IsInt() @Min(1) amountOff?: number;
  @Field(() => String, { nullable: true }) @IsOptional() @Matches(/^[A-Za-z]{3}$/) currency?: string;
  @Field(() => CouponDuration) duration!: CouponDuration;
  @Field(() => Int, { nullable: true }) @IsOptional() @IsInt() @Min(1) @Max(36) durationInMonths?: number;
  @Field(() => Int, { nullable: true }) @IsOptional() @IsInt() @Min(1) maxRedemptions?: number;
  @Field(() => Date, { nullable: true }) expiresAt?: Date;
  @Field(() => [ProductInput], { nullable: true })
  @IsOptional()
  @ValidateNested({ each: true })
  appliesTo?: ProductInput[];
  @Field(() => Boolean, { nullable: true }) firstTimeOnly?: boolean;
}

@InputType()
export class CreateInvitationLinkInput {
  @Field(() => ID) communityId!: string;
  @Field(() => [ID]) @ArrayMinSize(1) @ArrayMaxSize(10) priceIds!: string[];
  @Field(() => InvitationAudience) audience!: InvitationAudience;
  @Field(() => String, { nullable: true }) @IsOptional() @Matches(/^[A-Za-z0-9-]{1,200}$/) promoCode?: string;
  @Field(() => Date, { nullable: true }) expiresAt?: Date;
  @Field(() => Int, { nullable: true }) @IsOptional() @IsInt() @Min(1) maxUses?: number;
}

@InputType()
export class StartCheckoutInput {
  @Field(() => ID) communityId!: string;
  @Field(() => ID) priceId!: string;
  @Field(() => ID, { nullable: true }) memberId?: string;
  @Field(() => String, { nullable: true }) @IsOptional() @IsEmail() email?: string;
  @Field(() => String, { nullable: true }) @IsOptional() @Matches(/^[A-Za-z0-9-]{1,200}$/) promoCode?: string;
  @Field(() => String, { nullable: true }) @IsOptional() @MaxLength(200) invitationToken?: string;
  @Field() @IsUrl(urlOptions) successUrl!: string;
  @Field() @IsUrl(urlOptions) cancelUrl!: string;
}

@InputType()
export class ChangeTierInput {
  @Field(() => ID) communityId!: string;
  @Field(() => ID) memberId!: string;
  @Field(() => ID) toPriceId!: string;
  @Field(() => ChangeTiming, { nullable: true }) timing?: ChangeTiming;
  @Field(() => Date, { nullable: true }) prorationDate?: Date;
}

@InputType()
export class GrantAccessInput {
  @Field(() => ID) communityId!: string;
  @Field(() => ID) memberId!: string;
  @Field(() => ResourceInput) @ValidateNested() resource!: ResourceInput;
  @Field(() => Date, { nullable: true }) until?: Date;
  @Field() @Length(1, 500) reason!: string;
}

/** A free member joins a community (no payment); refused once a paid-only community stops free joining. */
@InputType()
export class JoinCommunityInput {
  @Field(() => ID) communityId!: string;
  @Field(() => ID) @Length(1, 200) memberId!: string;
  @Field({ nullable: true }) @IsOptional() @IsEmail() email?: string;
}

@InputType()
export class SetPaidOnlyInput {
  @Field(() => ID) communityId!: string;
  @Field() paidOnly!: boolean;
  @Field(() => Date, { nullable: true }) freeMembersUntil?: Date;
}

@InputType()
export class ImportStripeSubscriptionsInput {
  @Field(() => ID) communityId!: string;
  @Field(() => [String])
  @ArrayMinSize(1)
  @ArrayMaxSize(100)
  @Matches(/^price_[A-Za-z0-9]+$/, { each: true })
  stripePriceIds!: string[];
  @Field() dryRun!: boolean;
}

@InputType()
export class PriceMapping {
  @Field(() => ID) fromPriceId!: string;
  @Field(() => ID) toPriceId!: string;
}

@InputType()
export class MigrateGroupToTiersInput {
  @Field(() => ID) communityId!: string;
  @Field(() => ID) groupId!: string;
  @Field(() => [PriceMapping]) @ArrayMinSize(1) @ValidateNested({ each: true }) priceMap!: PriceMapping[];
  @Field(() => ChangeTiming) timing!: ChangeTiming;
}
