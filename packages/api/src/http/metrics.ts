import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export type Metrics = ReturnType<typeof createMetrics>;

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'gatehouse_' });
  return {
    registry,
    httpRequests: new Counter({
      name: 'gatehouse_http_requests_total',
      help: 'HTTP requests by route and status',
      labelNames: ['route', 'status'] as const,
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: 'gatehouse_http_request_duration_seconds',
      help: 'HTTP request duration by route',
      labelNames: ['route'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    webhooks: new Counter({
      name: 'gatehouse_stripe_webhooks_total',
      help: 'Stripe webhook deliveries by outcome',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
  };
}

/**
 * `gatehouse_projector_lag_events{region}`: events of the region's ledger that its slowest projection
 * has not applied yet (counted up to 10,000), read at each scrape.
 */
export function registerProjectorLagGauge(
  metrics: Metrics,
  lagByRegion: () => Promise<{ region: string; behind: number }[]>,
): void {
  new Gauge({
    name: 'gatehouse_projector_lag_events',
    help: 'Events appended to the ledger that the projector has not applied yet',
    labelNames: ['region'] as const,
    registers: [metrics.registry],
    async collect() {
      const lags = await lagByRegion().catch(() => undefined);
      for (const { region, behind } of lags ?? []) this.set({ region }, behind);
    },
  });
}

/**
 * `gatehouse_stripe_quarantined_events`: Stripe events held for connected accounts that no community
 * has linked yet, read at each scrape. A count that stays above zero usually means a community's
 * `stripeAccountId` is missing or mistyped (`gatehouse stripe quarantine` lists the accounts).
 */
export function registerQuarantineGauge(metrics: Metrics, heldEvents: () => Promise<number>): void {
  new Gauge({
    name: 'gatehouse_stripe_quarantined_events',
    help: 'Stripe events held for connected accounts that no community has linked yet',
    registers: [metrics.registry],
    async collect() {
      // A failed read leaves the last value: the scrape itself must not fail with the database.
      const n = await heldEvents().catch(() => undefined);
      if (n !== undefined) this.set(n);
    },
  });
}
