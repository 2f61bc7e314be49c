import type { StripeEvent } from '../stripe-event';

/** The account the platform's own events (they name none) are held for. */
export const PLATFORM_HOLD = 'platform';

/** Stripe events of a connected account Gatehouse does not know yet, held until the account is linked. */
export interface QuarantineStore {
  /** Create the backing table when missing. Idempotent. */
  init(): Promise<void>;
  /** Hold an event; holding the same event id twice keeps one copy. */
  put(accountId: string, event: StripeEvent): Promise<void>;
  /** The events held for an account, oldest first. They stay held until `discard`. */
  take(accountId: string): Promise<StripeEvent[]>;
  /** Forget held events (after they were appended to the ledger). */
  discard(accountId: string, eventIds: readonly string[]): Promise<void>;
  /** The accounts among `accountIds` with events held. */
  heldAmong(accountIds: readonly string[]): Promise<string[]>;
}
