import { runIngestBench, type IngestFigure } from '../packages/cli/src/bench/ingest.bench';
import { describeKafka, testDatabaseServerUrl } from '@test/support';

// `npm run bench -- ingest` at a size CI can afford: every scenario runs to the end against the real
// server, PostgreSQL and Kafka, with the figures it reports well formed. Not a measurement.

const small = { requests: 150, runs: 3, concurrency: 16 } as const;

function expectFigure(f: IngestFigure, projecting: boolean) {
  expect(f.webhooksPerSecond).toBeGreaterThan(0);
  expect(f.baselinePerSecond).toBeGreaterThan(0);
  expect(f.ratio).toBeCloseTo(f.webhooksPerSecond / f.baselinePerSecond, 10);
  expect(f.p99Ms).toBeGreaterThan(0);
  expect(f.cpuPerWebhook.nodeMs).toBeGreaterThan(0);
  expect(f.cpuPerInsert.nodeMs).toBeGreaterThan(0);
  if (projecting) expect(f.projectedPerSecond).toBeGreaterThan(0);
  else expect(f.projectedPerSecond).toBeNull();
}

describe('ingest bench', () => {
  it('runs every PostgreSQL scenario, the projector stopped and the grown ledger included', async () => {
    const lines: string[] = [];
    const figures = await runIngestBench({
      databaseUrl: testDatabaseServerUrl(),
      log: (l) => lines.push(l),
      growth: [3_000],
      ...small,
    });
    expect(figures.map((f) => `${f.adapter} ${f.scenario}`)).toEqual([
      'postgres 1 account',
      'postgres 64 accounts',
      'postgres 64 acc, no projector',
      'postgres 64 acc, ledger 3k',
      'postgres no projector, 3k',
    ]);
    figures.forEach((f) => expectFigure(f, !f.scenario.includes('no projector')));
    expect(lines.some((l) => /ledger holds 3000 events/.test(l))).toBe(true);
    // each grown figure against its own empty one: with the projector and without it
    expect(lines.filter((l) => /rate vs the empty ledger \d/.test(l))).toEqual([
      expect.stringMatching(/^postgres 64 acc, ledger 3k /),
      expect.stringMatching(/^postgres no projector, 3k /),
    ]);
    // and the goals, from the same figures
    const ratio = (scenario: string) => figures.find((f) => f.scenario === scenario)!.ratio.toFixed(2);
    expect(lines.filter((l) => l.startsWith('goal: '))).toEqual([
      expect.stringContaining(`with the projector ${ratio('64 accounts')} (`),
      expect.stringMatching(
        /^goal: the rate at 3k events ≥ 0\.9 of the empty ledger's, lowest: with the projector \d\.\d\d \((met|not met); the INSERT then \d\.\d\d of its own\), the webhook path alone \d\.\d\d \((met|not met); the INSERT then \d\.\d\d of its own\)$/,
      ),
    ]);
    expect(lines.find((l) => l.startsWith('goal: webhooks'))).toContain(
      `the webhook path alone ${ratio('64 acc, no projector')} (`,
    );
  }, 300_000);
});

describeKafka('ingest bench on the Kafka ledger', (brokers) => {
  it('runs every Kafka scenario, the projector stopped included', async () => {
    const figures = await runIngestBench({
      databaseUrl: testDatabaseServerUrl(),
      kafkaBrokers: brokers,
      log: () => undefined,
      growth: [],
      ...small,
    });
    const kafka = figures.filter((f) => f.adapter === 'kafka');
    expect(kafka.map((f) => f.scenario)).toEqual(['1 account', '64 accounts', '64 acc, no projector']);
    kafka.forEach((f) => expectFigure(f, f.scenario !== '64 acc, no projector'));
  }, 300_000);
});
