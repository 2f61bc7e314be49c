import { DAY_MS } from '@gatehouse/domain';
import type { Ledger, NewEvent } from '@gatehouse/ledger';
import pino from 'pino';
import type { DataSource } from 'typeorm';
import { createDataSource, runMigrations } from '../data-source';
import { adminLedgerEvent } from '../membership/stripe-events.builders';
import { MembershipProjection } from '../membership/membership.projection';
import { MembershipQuery } from '../membership/membership.query';
import type { Projection } from '../runtime/projection';
import { Projector } from '../runtime/projector';
import { AccessIndex } from './access-index';
import { AccessQuery } from './access.query';

/** 2026-01-01T00:00:00Z: the fixed origin of test and benchmark histories. */
export const T0 = Date.UTC(2026, 0, 1);
export const at = (days: number, hours = 0) => T0 + days * DAY_MS + hours * 3_600_000;

/**
 * A running membership-access read model over a given ledger: projector, index and queries, with a
 * settable clock for the ledger's `recordedAt`. For integration tests and the benchmark.
 */
export type AccessHarness = {
  ds: DataSource;
  ledger: Ledger;
  index: AccessIndex;
  projection: MembershipProjection;
  projector: Projector;
  access: AccessQuery;
  memberships: MembershipQuery;
  /** Appends and waits until the projection has applied the events. */
  append(events: NewEvent[]): Promise<void>;
  close(): Promise<void>;
};

export async function startAccessHarness(options: {
  databaseUrl: string;
  ledger: Ledger;
  maxBatch?: number;
  /** Run beside the membership projection (e.g. the archive, for `causedBy`). */
  alsoProject?: readonly Projection[];
}): Promise<AccessHarness> {
  await runMigrations(options.databaseUrl);
  const ds = createDataSource({ url: options.databaseUrl, poolSize: 4 });
  await ds.initialize();
  await options.ledger.init();
  const logger = pino({ level: 'silent' });
  const index = new AccessIndex();
  await index.load(ds);
  const projection = new MembershipProjection({ index, logger });
  const projector = new Projector({
    dataSource: ds,
    ledger: options.ledger,
    projections: [projection, ...(options.alsoProject ?? [])],
    logger,
    maxBatch: options.maxBatch ?? 2000,
  });
  projector.start();
  return {
    ds,
    ledger: options.ledger,
    index,
    projection,
    projector,
    access: new AccessQuery(ds, index),
    memberships: new MembershipQuery(ds, index),
    async append(events) {
      const results = await options.ledger.append(events);
      const ok = await projector.waitFor({ eventIds: results.map((r) => r.id) }, 15_000);
      if (!ok)
        throw new Error(
          `projection did not apply ${results.length} events in time: ${JSON.stringify(projector.status())}`,
        );
    },
    async close() {
      await projector.stop();
      await options.ledger.close();
      await ds.destroy();
    },
  };
}

/**
 * A community with one tier (community + the `grp_chat` group), a course group sold once, and prices:
 * monthly, a 3-installment plan, and the one-time course.
 */
export function catalogFacts(
  communityId: string,
  options: { graceDays?: number; region?: 'us' | 'eu' | 'in' } = {},
): NewEvent[] {
  const c = communityId;
  return [
    adminLedgerEvent(
      c,
      'CommunityCreated',
      {
        name: 'Makers',
        region: options.region ?? 'us',
        paidOnly: false,
        pastDueGraceDays: options.graceDays ?? 3,
        createdAt: T0 - 10 * DAY_MS,
      },
      T0 - 10 * DAY_MS,
    ),
    adminLedgerEvent(c, 'GroupDefined', { groupId: 'grp_chat', name: 'Chat' }, T0 - 10 * DAY_MS),
    adminLedgerEvent(
      c,
      'GroupDefined',
      { groupId: 'grp_course', name: 'Course', stripeProductId: 'prod_course' },
      T0 - 10 * DAY_MS,
    ),
    adminLedgerEvent(
      c,
      'TierDefined',
      { tierId: 'tier_gold', name: 'Gold', rank: 1, groupIds: ['grp_chat'], stripeProductId: 'prod_gold' },
      T0 - 10 * DAY_MS,
    ),
    adminLedgerEvent(
      c,
      'PriceAdded',
      {
        priceId: 'pr_gold_m',
        stripePriceId: 'price_gold_m',
        stripeProductId: 'prod_gold',
        product: { kind: 'TIER', id: 'tier_gold' },
        amount: 1000,
        currency: 'usd',
        frequency: 'MONTHLY',
        trialDays: 14,
      },
      T0 - 10 * DAY_MS,
    ),
    adminLedgerEvent(
      c,
      'PriceAdded',
      {
        priceId: 'pr_gold_i3',
        stripePriceId: 'price_gold_i3',
        stripeProductId: 'prod_gold',
        product: { kind: 'TIER', id: 'tier_gold' },
        amount: 5000,
        currency: 'usd',
        frequency: 'INSTALLMENTS',
        installments: 3,
      },
      T0 - 10 * DAY_MS,
    ),
    adminLedgerEvent(
      c,
      'PriceAdded',
      {
        priceId: 'pr_course',
        stripePriceId: 'price_course',
        stripeProductId: 'prod_course',
        product: { kind: 'GROUP', id: 'grp_course' },
        amount: 9900,
        currency: 'usd',
        frequency: 'ONE_TIME',
      },
      T0 - 10 * DAY_MS,
    ),
  ];
}
