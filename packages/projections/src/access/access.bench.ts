import type { NewEvent } from '@gatehouse/ledger';
import pino from 'pino';
import { MembershipProjection } from '../membership/membership.projection';
import { invoiceEvent, stripeLedgerEvent, subscriptionEvent } from '../membership/stripe-events.builders';
import { Projector } from '../runtime/projector';
import { InMemoryLedger } from '../testing/in-memory-ledger';
import { freshReadModels } from '../testing/projection-store';
import { AccessIndex } from './access-index';
import { at, catalogFacts } from './access-harness';

export type AccessBenchOptions = {
  databaseUrl: string;
  /** Stripe events per run (default 20,000). */
  events?: number;
  communities?: number;
  batch?: number;
  runs?: number;
  /** In-memory `canAccess` lookups per run (default 1,000,000). */
  lookups?: number;
  log?: (line: string) => void;
};

export type AccessBenchResult = {
  events: number;
  /** events/s of each run, and their median */
  projectionRuns: number[];
  projectionMedian: number;
  /** lookups/s of each run, and their median */
  lookupRuns: number[];
  lookupMedian: number;
};

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

const EVENTS_PER_MEMBER = 10;

/** Members who subscribe, pay, and renew monthly: a subscription event and an `invoice.paid` per period. */
function stripeHistory(total: number, communities: number): NewEvent[] {
  const members = Math.ceil(total / EVENTS_PER_MEMBER);
  const out: NewEvent[] = [];
  for (let i = 0; i < members; i++) {
    const c = `com_bench_${i % communities}`;
    const spec = {
      id: `sub_b${i}`,
      customer: `cus_b${i}`,
      status: 'active',
      price: 'price_gold_m',
      product: 'prod_gold',
      memberId: `mem_${i}`,
    };
    for (let p = 0; p < EVENTS_PER_MEMBER / 2; p++) {
      const period = { periodStart: at(30 * p), periodEnd: at(30 * (p + 1)) };
      const type = p === 0 ? 'customer.subscription.created' : 'customer.subscription.updated';
      out.push(stripeLedgerEvent(c, subscriptionEvent(type, at(30 * p, i % 24), { ...spec, ...period })));
      out.push(
        stripeLedgerEvent(
          c,
          invoiceEvent('invoice.paid', at(30 * p, i % 24), {
            id: `in_b${i}_${p}`,
            subscription: spec.id,
            customer: spec.customer,
            billingReason: p === 0 ? 'subscription_create' : 'subscription_cycle',
          }),
        ),
      );
    }
  }
  return out.slice(0, total);
}

/**
 * Membership-access projection throughput (generated Stripe events through the projector into a
 * fresh schema; the ledger is in memory so the figure is the projection's) and the in-memory
 * `canAccess` lookup rate. Medians of `runs`. Not a test: prints figures.
 */
export async function runAccessBench(options: AccessBenchOptions): Promise<AccessBenchResult> {
  const total = options.events ?? 20_000;
  const communities = options.communities ?? 10;
  const runs = options.runs ?? 3;
  const lookups = options.lookups ?? 1_000_000;
  const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`));

  const ledger = new InMemoryLedger();
  for (let c = 0; c < communities; c++) await ledger.append(catalogFacts(`com_bench_${c}`));
  const history = stripeHistory(total, communities);
  for (let i = 0; i < history.length; i += 5000) await ledger.append(history.slice(i, i + 5000));
  const lastId = history[history.length - 1].id as string;

  const projectionRuns: number[] = [];
  const lookupRuns: number[] = [];
  for (let run = 1; run <= runs; run++) {
    const store = await freshReadModels(options.databaseUrl, 'accessbench');
    const index = new AccessIndex();
    await index.load(store.ds);
    const logger = pino({ level: 'silent' });
    const projector = new Projector({
      dataSource: store.ds,
      ledger,
      projections: [new MembershipProjection({ index, logger })],
      logger,
      maxBatch: options.batch ?? 2000,
    });
    try {
      const started = process.hrtime.bigint();
      projector.start();
      const done = await projector.waitFor({ eventIds: [lastId] }, 600_000);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      if (!done) throw new Error('Access bench projection did not catch up within 10 minutes');
      const rate = total / seconds;
      projectionRuns.push(rate);

      const members = Math.ceil(total / EVENTS_PER_MEMBER);
      let allowed = 0;
      const t0 = process.hrtime.bigint();
      for (let k = 0; k < lookups; k++) {
        const i = (k * 7919) % members;
        if (
          index.decide(
            `com_bench_${i % communities}`,
            `mem_${i}`,
            { kind: 'GROUP', id: 'grp_chat' },
            at(k % 150),
          ).allowed
        )
          allowed++;
      }
      const lookupSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
      lookupRuns.push(lookups / lookupSeconds);
      log(
        `run ${run}: ${total} Stripe events in ${seconds.toFixed(2)} s = ${Math.round(rate)} events/s; ` +
          `${lookups} canAccess lookups in ${lookupSeconds.toFixed(2)} s = ${Math.round(lookups / lookupSeconds)}/s (${allowed} allowed)`,
      );
    } finally {
      await projector.stop();
      await store.ds.query(`DROP SCHEMA ${store.schema} CASCADE`);
      await store.close();
    }
  }
  const result = {
    events: total,
    projectionRuns,
    projectionMedian: median(projectionRuns),
    lookupRuns,
    lookupMedian: median(lookupRuns),
  };
  log(
    `median of ${runs}: projection ${Math.round(result.projectionMedian)} events/s (goal >= 30,000); ` +
      `canAccess ${Math.round(result.lookupMedian)} lookups/s`,
  );
  return result;
}
