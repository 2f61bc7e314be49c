import type { IngestFigure } from './ingest.bench';

/** What the ingest bench aims at: webhooks at this share of a plain INSERT's rate, on PostgreSQL. */
export const RATE_GOAL = 0.8;
/** And a grown ledger's rate no more than this much below the empty ledger's. */
export const GROWTH_TOLERANCE = 0.1;

const verdict = (met: boolean) => (met ? 'met' : 'not met');

/**
 * The goals' lines, from the PostgreSQL figures of one run: the rate against the INSERT with the
 * projector and without it (the webhook path alone), and each grown ledger's rate against the empty
 * one's. Nothing for what the run did not measure.
 */
export function ingestGoalLines(figures: readonly IngestFigure[], accounts: number): string[] {
  const pg = figures.filter((f) => f.adapter === 'postgres');
  const find = (scenario: string) => pg.find((f) => f.scenario === scenario);
  const projected = find(`${accounts} accounts`);
  const alone = find(`${accounts} acc, no projector`);
  const lines: string[] = [];
  if (projected && alone) {
    lines.push(
      `goal: webhooks at ≥ ${RATE_GOAL}× a plain INSERT (PostgreSQL, ${accounts} accounts): ` +
        `with the projector ${projected.ratio.toFixed(2)} (${verdict(projected.ratio >= RATE_GOAL)}), ` +
        `the webhook path alone ${alone.ratio.toFixed(2)} (${verdict(alone.ratio >= RATE_GOAL)})`,
    );
  }
  const grown = pg.filter((f) => /\d+k$/.test(f.scenario));
  if (grown.length > 0 && projected && alone) {
    const sizes = [...new Set(grown.map((f) => /(\d+k)$/.exec(f.scenario)![1]))];
    // The lowest grown rate against the empty one measured the same way, with the INSERT's own change
    // at that moment: a machine that slowed down slows both.
    const lowest = (projecting: boolean) => {
      const base = projecting ? projected : alone;
      const ofSize = grown
        .filter((f) => (f.projectedPerSecond !== null) === projecting)
        .map((f) => ({
          rate: f.webhooksPerSecond / base.webhooksPerSecond,
          insert: f.baselinePerSecond / base.baselinePerSecond,
        }));
      return ofSize.length > 0 ? ofSize.reduce((a, b) => (b.rate < a.rate ? b : a)) : null;
    };
    const parts = (
      [
        ['with the projector', lowest(true)],
        ['the webhook path alone', lowest(false)],
      ] as const
    ).flatMap(([what, low]) =>
      low === null
        ? []
        : [
            `${what} ${low.rate.toFixed(2)} (${verdict(low.rate >= 1 - GROWTH_TOLERANCE)}; ` +
              `the INSERT then ${low.insert.toFixed(2)} of its own)`,
          ],
    );
    lines.push(
      `goal: the rate at ${sizes.join(' / ')} events ≥ ${1 - GROWTH_TOLERANCE} of the empty ledger's, ` +
        `lowest: ${parts.join(', ')}`,
    );
  }
  return lines;
}
