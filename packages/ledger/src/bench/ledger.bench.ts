import { randomBytes } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import { Pool } from 'pg';
import { v7 as uuidv7 } from 'uuid';
import { KafkaLedger } from '../adapters/kafka/kafka-ledger';
import { readPartitions } from '../adapters/kafka/kafka-partition-reader';
import { PostgresLedger } from '../adapters/postgres/postgres-ledger';
import type { Ledger, NewEvent } from '../ledger.port';

export type LedgerBenchOptions = {
  databaseUrl: string;
  /** Also measure the Kafka adapter (its id index lives in `databaseUrl`). */
  kafkaBrokers?: string[];
  /** Events per measured run. */
  events: number;
  log: (line: string) => void;
  /** Runs per figure; the median is reported. At least 3. */
  runs?: number;
  /** Events are spread over this many communities. */
  communities?: number;
};

export type BenchFigure = {
  adapter: 'postgres' | 'kafka';
  scenario: string;
  /** Events per second, median of the runs. */
  adapter_per_s: number;
  baseline_per_s: number;
  /** adapter / baseline */
  ratio: number;
};

type Runner = (events: NewEvent[]) => Promise<void>;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function makeEvents(n: number, communities: string[]): NewEvent[] {
  return Array.from({ length: n }, (_, i) => ({
    id: uuidv7(),
    type: 'customer.subscription.updated',
    communityId: communities[i % communities.length],
    subject: `sub_${i}`,
    source: 'stripe' as const,
    occurredAt: '2026-01-01T00:00:00.000Z',
    correlationId: `corr-${i}`,
    data: {
      object: {
        id: `sub_${i}`,
        status: 'active',
        items: [{ price: 'price_123', quantity: 1 }],
        current_period_end: 1767225600,
      },
    },
  }));
}

/** Run `one` over the events with `concurrency` workers, each taking the next event. */
function concurrently(concurrency: number, one: (e: NewEvent) => Promise<unknown>): Runner {
  return async (events) => {
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < events.length) await one(events[next++]);
      }),
    );
  };
}

function batched(size: number, many: (es: NewEvent[]) => Promise<unknown>): Runner {
  return async (events) => {
    for (let i = 0; i < events.length; i += size) await many(events.slice(i, i + size));
  };
}

async function timed(fn: () => Promise<number>): Promise<number> {
  const started = process.hrtime.bigint();
  const count = await fn();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return count / seconds;
}

function asEnvelope(e: NewEvent) {
  return {
    id: e.id,
    type: e.type,
    communityId: e.communityId,
    subject: e.subject ?? null,
    occurredAt: e.occurredAt,
    recordedAt: new Date().toISOString(),
    source: e.source,
    actor: e.actor ?? null,
    causationId: e.causationId ?? null,
    correlationId: e.correlationId ?? null,
    schemaVersion: e.schemaVersion ?? 1,
    data: e.data,
  };
}

/**
 * Append and read throughput of each adapter beside a raw baseline measured in the same run (plain
 * `pg` INSERTs into a plain table; plain kafkajs produce and consume), as medians of several runs.
 */
export async function runLedgerBench(options: LedgerBenchOptions): Promise<BenchFigure[]> {
  const runs = Math.max(3, options.runs ?? 3);
  const communities = Array.from({ length: options.communities ?? 100 }, (_, i) => `bench-community-${i}`);
  const tag = randomBytes(4).toString('hex');
  const figures: BenchFigure[] = [];
  const report = (f: BenchFigure) => {
    figures.push(f);
    options.log(
      `${f.adapter.padEnd(8)} ${f.scenario.padEnd(18)} adapter ${f.adapter_per_s.toFixed(0).padStart(8)}/s   baseline ${f.baseline_per_s
        .toFixed(0)
        .padStart(8)}/s   ratio ${f.ratio.toFixed(2)}`,
    );
  };

  const compare = async (
    adapter: 'postgres' | 'kafka',
    scenario: string,
    mine: Runner,
    raw: Runner,
    n: number,
  ) => {
    const a: number[] = [];
    const b: number[] = [];
    for (let r = 0; r < runs; r++) {
      // alternate which goes first so warm-up and background load fall on both
      const order: [Runner, number[]][] =
        r % 2 === 0
          ? [
              [mine, a],
              [raw, b],
            ]
          : [
              [raw, b],
              [mine, a],
            ];
      for (const [run, into] of order) {
        const events = makeEvents(n, communities);
        into.push(await timed(async () => (await run(events), n)));
      }
    }
    report({
      adapter,
      scenario,
      adapter_per_s: median(a),
      baseline_per_s: median(b),
      ratio: median(a) / median(b),
    });
  };

  const scenarios = async (
    adapter: 'postgres' | 'kafka',
    ledger: Ledger,
    raw: { one: (e: NewEvent) => Promise<unknown>; many: (es: NewEvent[]) => Promise<unknown> },
  ) => {
    for (const c of [1, 16, 64]) {
      await compare(
        adapter,
        `append c=${c}`,
        concurrently(c, (e) => ledger.append([e])),
        concurrently(c, raw.one),
        options.events,
      );
    }
    const batchEvents = Math.max(1_000, Math.ceil(options.events / 1_000) * 1_000);
    await compare(
      adapter,
      'append batch=1000',
      batched(1_000, (es) => ledger.append(es)),
      batched(1_000, raw.many),
      batchEvents,
    );
  };

  // PostgreSQL
  options.log(
    `ledger bench: ${options.events} events per run, ${runs} runs, ${communities.length} communities`,
  );
  const pgPrefix = `bench_${tag}`;
  // one pool for the adapter and the baseline: same connections, and within max_connections
  const pool = new Pool({ connectionString: options.databaseUrl, max: 64 });
  const ledger = new PostgresLedger({ pool, prefix: pgPrefix });
  const rawTable = `${pgPrefix}_raw`;
  try {
    await ledger.init();
    await pool.query(`CREATE TABLE ${rawTable} (
      id text PRIMARY KEY, type text NOT NULL, community_id text NOT NULL, subject text, occurred_at timestamptz NOT NULL,
      recorded_at timestamptz NOT NULL, source text NOT NULL, actor text, causation_id text, correlation_id text,
      schema_version integer NOT NULL, data json NOT NULL)`);
    const insertOne = `INSERT INTO ${rawTable} VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`;
    await scenarios('postgres', ledger, {
      one: (e) => {
        const v = asEnvelope(e);
        return pool.query(insertOne, [
          v.id,
          v.type,
          v.communityId,
          v.subject,
          v.occurredAt,
          v.recordedAt,
          v.source,
          v.actor,
          v.causationId,
          v.correlationId,
          v.schemaVersion,
          JSON.stringify(v.data),
        ]);
      },
      many: (es) =>
        pool.query(
          `INSERT INTO ${rawTable} SELECT r.id, r.type, r."communityId", r.subject, r."occurredAt", r."recordedAt", r.source, r.actor,
             r."causationId", r."correlationId", r."schemaVersion", r.data
             FROM json_to_recordset($1::json) AS r(id text, type text, "communityId" text, subject text, "occurredAt" timestamptz,
               "recordedAt" timestamptz, source text, actor text, "causationId" text, "correlationId" text, "schemaVersion" integer, data json)`,
          [JSON.stringify(es.map(asEnvelope))],
        ),
    });
    const reads: number[] = [];
    const rawReads: number[] = [];
    for (let r = 0; r < runs; r++) {
      reads.push(
        await timed(async () => {
          let n = 0;
          for await (const e of ledger.read({ pageSize: 5_000 })) if (e) n++;
          return n;
        }),
      );
      rawReads.push(
        await timed(async () => {
          let n = 0;
          let after = '';
          for (;;) {
            const { rows } = await pool.query(
              `SELECT * FROM ${rawTable} WHERE id > $1 ORDER BY id LIMIT 5000`,
              [after],
            );
            n += rows.length;
            if (rows.length < 5_000) return n;
            after = rows[rows.length - 1].id;
          }
        }),
      );
    }
    report({
      adapter: 'postgres',
      scenario: 'read',
      adapter_per_s: median(reads),
      baseline_per_s: median(rawReads),
      ratio: median(reads) / median(rawReads),
    });
  } finally {
    await ledger.close();
    await pool
      .query(
        `DROP TABLE IF EXISTS ${rawTable}; DROP TABLE IF EXISTS ${pgPrefix}_log CASCADE; DROP FUNCTION IF EXISTS ${pgPrefix}_append(json, text[], text[])`,
      )
      .catch(() => undefined);
    await pool.end();
  }

  if (!options.kafkaBrokers) {
    options.log('kafka: skipped (no brokers given)');
    return figures;
  }

  // Kafka
  const topic = `gatehouse.ledger.bench.${tag}`;
  const rawTopic = `${topic}.raw`;
  const kPrefix = `bench_${tag}_k`;
  const kafka = new Kafka({
    clientId: 'gatehouse-bench',
    brokers: options.kafkaBrokers,
    logLevel: logLevel.NOTHING,
  });
  const admin = kafka.admin();
  const producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
  });
  const kLedger = new KafkaLedger({
    brokers: options.kafkaBrokers,
    databaseUrl: options.databaseUrl,
    topic,
    prefix: kPrefix,
  });
  const idxPool = new Pool({ connectionString: options.databaseUrl, max: 2 });
  try {
    await admin.connect();
    await kLedger.init();
    await admin.createTopics({
      waitForLeaders: true,
      topics: [{ topic: rawTopic, numPartitions: 6, replicationFactor: 1 }],
    });
    await producer.connect();
    const message = (e: NewEvent) => ({ key: e.communityId, value: JSON.stringify(asEnvelope(e)) });
    await scenarios('kafka', kLedger, {
      one: (e) => producer.send({ topic: rawTopic, acks: -1, messages: [message(e)] }),
      many: (es) => producer.send({ topic: rawTopic, acks: -1, messages: es.map(message) }),
    });
    const reads: number[] = [];
    const rawReads: number[] = [];
    const rawEnds = new Map(
      (await admin.fetchTopicOffsets(rawTopic)).map((o) => [o.partition, BigInt(o.high)]),
    );
    for (let r = 0; r < runs; r++) {
      reads.push(
        await timed(async () => {
          let n = 0;
          for await (const e of kLedger.read()) if (e) n++;
          return n;
        }),
      );
      rawReads.push(
        await timed(async () => {
          let n = 0;
          const read = readPartitions(kafka, {
            topic: rawTopic,
            partitionCount: 6,
            start: new Map([...rawEnds.keys()].map((p) => [p, 0n])),
            end: rawEnds,
            onRecords: async (_p, records) => {
              for (const rec of records) if (JSON.parse(rec.value!.toString('utf8'))) n++;
            },
          });
          await read.done;
          return n;
        }),
      );
    }
    report({
      adapter: 'kafka',
      scenario: 'read',
      adapter_per_s: median(reads),
      baseline_per_s: median(rawReads),
      ratio: median(reads) / median(rawReads),
    });
  } finally {
    await kLedger.close();
    await producer.disconnect().catch(() => undefined);
    await admin.deleteTopics({ topics: [topic, rawTopic] }).catch(() => undefined);
    await admin.disconnect().catch(() => undefined);
    await idxPool.query(`DROP TABLE IF EXISTS ${kPrefix}_kafka_ids`).catch(() => undefined);
    await idxPool.end();
  }
  return figures;
}
