/**
 * Which community a Stripe event belongs to. Implemented by the projections (from the catalog);
 * the webhook only asks.
 */
export interface CommunityDirectory {
  /** The community connected through this Stripe account (`acct_…`), or null when none is known. */
  communityForStripeAccount(accountId: string): Promise<string | null>;
  /** The community that owns events of the platform account itself (no `event.account`). */
  platformCommunity(): Promise<string | null>;
}
