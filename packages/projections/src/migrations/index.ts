import { ProjectorRuntime1764230400000 } from './1764230400000-projector-runtime';
import { LedgerEvents1764230400001 } from './1764230400001-ledger-events';
import { Catalog1764230400100 } from './1764230400100-catalog';
import { MembershipAccess1764230400200 } from './1764230400200-membership-access';
import { Commerce1764230400300 } from './1764230400300-commerce';
import { Tiers1764230400600 } from './1764230400600-tiers';
import { InstallmentPlans1764230400700 } from './1764230400700-installment-plans';
import { StripeUnlinkedKeys1764230400800 } from './1764230400800-stripe-unlinked-keys';
import { LedgerEventsLz41764230400900 } from './1764230400900-ledger-events-lz4';
import { CheckoutExpiry1764230401000 } from './1764230401000-checkout-expiry';
import { LedgerEventsJson1764230401100 } from './1764230401100-ledger-events-json';
import { StripeReconcileWindows1764230401200 } from './1764230401200-stripe-reconcile-windows';

/** Every read-model migration, oldest first. New ones are appended here. */
export const migrations = [
  ProjectorRuntime1764230400000,
  LedgerEvents1764230400001,
  Catalog1764230400100,
  MembershipAccess1764230400200,
  Commerce1764230400300,
  Tiers1764230400600,
  InstallmentPlans1764230400700,
  StripeUnlinkedKeys1764230400800,
  LedgerEventsLz41764230400900,
  CheckoutExpiry1764230401000,
  LedgerEventsJson1764230401100,
  StripeReconcileWindows1764230401200,
];
