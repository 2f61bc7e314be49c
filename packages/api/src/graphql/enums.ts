import { registerEnumType } from 'type-graphql';

export enum Region {
  US = 'US',
  EU = 'EU',
  IN = 'IN',
}
export enum BillingFrequency {
  ONE_TIME = 'ONE_TIME',
  INSTALLMENTS = 'INSTALLMENTS',
  WEEKLY = 'WEEKLY',
  MONTHLY = 'MONTHLY',
  QUARTERLY = 'QUARTERLY',
  ANNUAL = 'ANNUAL',
}
export enum ProductKind {
  TIER = 'TIER',
  GROUP = 'GROUP',
  EVENT = 'EVENT',
}
export enum ResourceKind {
  COMMUNITY = 'COMMUNITY',
  GROUP = 'GROUP',
  EVENT = 'EVENT',
}
export enum MembershipStatus {
  NONE = 'NONE',
  INCOMPLETE = 'INCOMPLETE',
  TRIALING = 'TRIALING',
  ACTIVE = 'ACTIVE',
  PAST_DUE = 'PAST_DUE',
  PAUSED = 'PAUSED',
  CANCELED = 'CANCELED',
  EXPIRED = 'EXPIRED',
}
export enum AccessSource {
  SUBSCRIPTION = 'SUBSCRIPTION',
  ONE_TIME = 'ONE_TIME',
  INSTALLMENT_PLAN = 'INSTALLMENT_PLAN',
  COMPLIMENTARY = 'COMPLIMENTARY',
  FREE_MEMBERSHIP = 'FREE_MEMBERSHIP',
  MIGRATION = 'MIGRATION',
}
export enum AccessChangeKind {
  GRANTED = 'GRANTED',
  EXTENDED = 'EXTENDED',
  SHORTENED = 'SHORTENED',
  SUSPENDED = 'SUSPENDED',
  RESTORED = 'RESTORED',
  REVOKED = 'REVOKED',
}
export enum ChangeTiming {
  IMMEDIATE = 'IMMEDIATE',
  PERIOD_END = 'PERIOD_END',
}
export enum ExistingSubscribers {
  GRANDFATHER = 'GRANDFATHER',
  MIGRATE_AT_RENEWAL = 'MIGRATE_AT_RENEWAL',
}
export enum InvitationAudience {
  NEW_MEMBERS = 'NEW_MEMBERS',
  EXISTING_MEMBERS = 'EXISTING_MEMBERS',
  ANYONE = 'ANYONE',
}
export enum CouponDuration {
  ONCE = 'ONCE',
  REPEATING = 'REPEATING',
  FOREVER = 'FOREVER',
}

registerEnumType(Region, { name: 'Region', description: 'Where a community keeps its data.' });
registerEnumType(BillingFrequency, { name: 'BillingFrequency' });
registerEnumType(ProductKind, { name: 'ProductKind' });
registerEnumType(ResourceKind, { name: 'ResourceKind' });
registerEnumType(MembershipStatus, { name: 'MembershipStatus' });
registerEnumType(AccessSource, { name: 'AccessSource' });
registerEnumType(AccessChangeKind, { name: 'AccessChangeKind' });
registerEnumType(ChangeTiming, { name: 'ChangeTiming' });
registerEnumType(ExistingSubscribers, { name: 'ExistingSubscribers' });
registerEnumType(InvitationAudience, { name: 'InvitationAudience' });
registerEnumType(CouponDuration, { name: 'CouponDuration' });
