import { ingestGoalLines } from './ingest-goals';
import type { IngestFigure } from './ingest.bench';

const cpu = { nodeMs: 0.1, postgresMs: 0.1 };
function figure(
  scenario: string,
  webhooksPerSecond: number,
  insertPerSecond: number,
  projecting = true,
): IngestFigure {
  return {
    adapter: 'postgres',
    scenario,
    webhooksPerSecond,
    p99Ms: 10,
    baselinePerSecond: insertPerSecond,
    baselineP99Ms: 5,
    ratio: webhooksPerSecond / insertPerSecond,
    projectedPerSecond: projecting ? webhooksPerSecond * 0.9 : null,
    cpuPerWebhook: cpu,
    cpuPerInsert: cpu,
    walPerWebhook: null,
    walPerInsert: null,
  };
}

describe('ingestGoalLines', () => {
  it("says which goal a run met, from the 64 accounts' figures with and without the projector", () => {
    const lines = ingestGoalLines(
      [
        figure('1 account', 9_000, 10_000),
        figure('64 accounts', 3_000, 10_000),
        figure('64 acc, no projector', 8_100, 10_000, false),
      ],
      64,
    );
    expect(lines).toEqual([
      'goal: webhooks at ≥ 0.8× a plain INSERT (PostgreSQL, 64 accounts): with the projector 0.30 (not met), the webhook path alone 0.81 (met)',
    ]);
  });

  it('holds each grown ledger against the empty one measured the same way, and reports the lowest', () => {
    const lines = ingestGoalLines(
      [
        figure('64 accounts', 3_000, 10_000),
        figure('64 acc, no projector', 7_000, 10_000, false),
        figure('64 acc, ledger 100k', 3_100, 10_000),
        figure('no projector, 100k', 6_100, 10_000, false),
        figure('64 acc, ledger 1000k', 2_800, 9_500),
        figure('no projector, 1000k', 6_400, 10_000, false),
      ],
      64,
    );
    expect(lines[1]).toBe(
      "goal: the rate at 100k / 1000k events ≥ 0.9 of the empty ledger's, lowest: with the projector 0.93 (met; the INSERT then 0.95 of its own), the webhook path alone 0.87 (not met; the INSERT then 1.00 of its own)",
    );
  });

  it('says nothing of what the run did not measure (Kafka alone, no growth)', () => {
    expect(ingestGoalLines([{ ...figure('64 accounts', 1_000, 10_000), adapter: 'kafka' }], 64)).toEqual([]);
    expect(
      ingestGoalLines(
        [figure('64 accounts', 3_000, 10_000), figure('64 acc, no projector', 7_000, 10_000, false)],
        64,
      ),
    ).toHaveLength(1);
  });
});
