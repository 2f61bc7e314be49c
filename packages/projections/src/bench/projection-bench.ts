import pino from 'pino';
import { archiveProjection } from '../archive/archive.projection';
import { Projector } from '../runtime/projector';
import { InMemoryLedger } from '../testing/in-memory-ledger';
import { freshReadModels } from '../testing/projection-store';

export type ProjectionBenchOptions = {
  databaseUrl: string;
  /** Events per run (default 50,000). */
  events?: number;
  /** Events per transaction (default 2,000). */
  batch?: number;
  communities?: number;
  runs?: number;
  log?: (line: string) => void;
};

export type ProjectionBenchResult = {
  projection: string;
  events: number;
  batch: number;
  /** events/s of each run */
  runs: number[];
  median: number;
};

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/**
 * Archive projection throughput: the ledger is held in memory so the figure is the projector's
 * (batching, hashing, one multi-row INSERT and the checkpoint per transaction), each run into a
 * fresh schema of `databaseUrl`. Not a test: prints figures.
 */
export async function runProjectionBench(options: ProjectionBenchOptions): Promise<ProjectionBenchResult> {
  const total = options.events ?? 50_000;
  const batch = options.batch ?? 2000;
  const communities = options.communities ?? 50;
  const runs = options.runs ?? 3;
  const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`));

  const ledger = new InMemoryLedger();
  const chunk = 5000;
  for (let start = 0; start < total; start += chunk) {
    const events = Array.from({ length: Math.min(chunk, total - start) }, (_, k) => {
      const i = start + k;
      return {
        type: i % 10 === 0 ? 'invoice.paid' : 'customer.subscription.updated',
        communityId: `com_bench_${i % communities}`,
        subject: `cus_${i % 5000}`,
        occurredAt: new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString(),
        source: 'stripe' as const,
        data: {
          object: {
            id: `sub_${i % 5000}`,
            status: 'active',
            items: [{ price: 'price_gold', quantity: 1 }],
            current_period_end: 1767225600 + i,
          },
        },
      };
    });
    await ledger.append(events);
  }
  const lastId = (await lastEvent(ledger)).id;

  const figures: number[] = [];
  for (let run = 1; run <= runs; run++) {
    const store = await freshReadModels(options.databaseUrl, 'bench');
    const projector = new Projector({
      dataSource: store.ds,
      ledger,
      projections: [archiveProjection()],
      logger: pino({ level: 'silent' }),
      maxBatch: batch,
    });
    try {
      const started = process.hrtime.bigint();
      projector.start();
      const done = await projector.waitFor({ eventIds: [lastId] }, 600_000);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      if (!done) throw new Error('Projection bench did not catch up within 10 minutes');
      const rate = total / seconds;
      figures.push(rate);
      log(
        `run ${run}: ${total} events in ${seconds.toFixed(2)} s = ${Math.round(rate)} events/s (archive, batch ${batch})`,
      );
    } finally {
      await projector.stop();
      await store.ds.query(`DROP SCHEMA ${store.schema} CASCADE`);
      await store.close();
    }
  }
  const result = {
    projection: 'ledger-archive',
    events: total,
    batch,
    runs: figures,
    median: median(figures),
  };
  log(`median of ${runs}: ${Math.round(result.median)} events/s`);
  return result;
}

async function lastEvent(ledger: InMemoryLedger) {
  let last;
  for await (const e of ledger.read()) last = e;
  if (!last) throw new Error('empty ledger');
  return last;
}
