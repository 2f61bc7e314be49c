import { EventEmitter } from 'node:events';
import {
  createMetrics,
  observeStripeRequests,
  stripePathTemplate,
  registerProjectorLagGauge,
  registerQuarantineGauge,
  registerQuarantineAgeGauge,
  registerReconcileWindowAgeGauge,
  registerUnlinkedGauge,
} from './metrics';

// The gauges read the database at scrape time; /metrics needs no token, so reads are shared and
// kept for a while rather than made once per request.

const valueOf = (text: string, line: RegExp) => Number(line.exec(text)?.[1]);

describe('gauges read at scrape time', () => {
  it('share one read between scrapes within the cache time, and read again after it', async () => {
    const metrics = createMetrics();
    let reads = 0;
    registerQuarantineGauge(metrics, async () => ++reads * 10, 100);
    const held = /^gatehouse_stripe_quarantined_events (\d+)$/m;

    const together = await Promise.all([1, 2, 3].map(() => metrics.registry.metrics()));
    expect(together.map((t) => valueOf(t, held))).toEqual([10, 10, 10]);
    expect(valueOf(await metrics.registry.metrics(), held)).toBe(10);
    expect(reads).toBe(1);

    await new Promise((r) => setTimeout(r, 150));
    expect(valueOf(await metrics.registry.metrics(), held)).toBe(20);
    expect(reads).toBe(2);
  });

  it('show how long the event held longest has waited, and 0 when none is held', async () => {
    const metrics = createMetrics();
    const holds: (Date | null)[] = [new Date(1_000_000), null];
    registerQuarantineAgeGauge(metrics, async () => holds.shift()!, { clock: () => 1_090_500, ttlMs: 1 });
    const age = /^gatehouse_stripe_quarantine_oldest_held_seconds (\S+)$/m;
    expect(valueOf(await metrics.registry.metrics(), age)).toBe(90.5);
    await new Promise((r) => setTimeout(r, 10));
    expect(valueOf(await metrics.registry.metrics(), age)).toBe(0);
  });

  it("age the reconciler's oldest window, counting from the server's start until one is kept", async () => {
    const metrics = createMetrics();
    const oldest = [null, new Date(1_000_000)];
    registerReconcileWindowAgeGauge(metrics, async () => oldest.shift()!, new Date(1_060_000), {
      clock: () => 1_090_500,
      ttlMs: 1,
    });
    const age = /^gatehouse_stripe_reconcile_window_age_seconds (\S+)$/m;
    expect(valueOf(await metrics.registry.metrics(), age)).toBe(30.5);
    await new Promise((r) => setTimeout(r, 10));
    expect(valueOf(await metrics.registry.metrics(), age)).toBe(90.5);
  });

  it('keep the last value when a read fails, and the scrape still answers', async () => {
    const metrics = createMetrics();
    const lags = [[{ region: 'in', behind: 7 }], new Error('database away')];
    registerProjectorLagGauge(
      metrics,
      async () => {
        const next = lags.shift()!;
        if (next instanceof Error) throw next;
        return next;
      },
      1,
    );
    const lag = /^gatehouse_projector_lag_events\{region="in"\} (\d+)$/m;
    expect(valueOf(await metrics.registry.metrics(), lag)).toBe(7);
    await new Promise((r) => setTimeout(r, 10));
    expect(valueOf(await metrics.registry.metrics(), lag)).toBe(7);
    expect(lags).toEqual([]);
  });

  it('answer without a read that does not come back in time (a stalled database), keeping the last value', async () => {
    const metrics = createMetrics();
    metrics.httpRequests.inc({ route: '/webhooks/stripe', status: '503' });
    let finish: (n: number) => void = () => undefined;
    const reads: Promise<number>[] = [Promise.resolve(4), new Promise<number>((r) => (finish = r))];
    let asked = 0;
    registerQuarantineGauge(
      metrics,
      () => {
        asked++;
        return reads.shift()!;
      },
      100,
      50,
    );
    const held = /^gatehouse_stripe_quarantined_events (\d+)$/m;
    expect(valueOf(await metrics.registry.metrics(), held)).toBe(4);
    await new Promise((r) => setTimeout(r, 150));

    const started = Date.now();
    const during = await metrics.registry.metrics();
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(valueOf(during, held)).toBe(4);
    expect(during).toMatch(/^gatehouse_http_requests_total\{route="\/webhooks\/stripe",status="503"\} 1$/m);
    // A second scrape meanwhile joins the read under way rather than starting another.
    expect(valueOf(await metrics.registry.metrics(), held)).toBe(4);
    expect(asked).toBe(2);

    finish(9);
    await new Promise((r) => setTimeout(r, 0));
    expect(valueOf(await metrics.registry.metrics(), held)).toBe(9);
  });

  it('give the parked Stripe events of each region, keeping the last counts when a read fails', async () => {
    const metrics = createMetrics();
    const reads: ({ region: string; events: number }[] | Error)[] = [
      [
        { region: 'eu', events: 12 },
        { region: 'in', events: 3 },
      ],
      new Error('database away'),
    ];
    registerUnlinkedGauge(
      metrics,
      async () => {
        const next = reads.shift()!;
        if (next instanceof Error) throw next;
        return next;
      },
      1,
    );
    const region = (r: string) =>
      new RegExp(`^gatehouse_stripe_unlinked_events\\{region="${r}"\\} (\\d+)$`, 'm');
    const first = await metrics.registry.metrics();
    expect([valueOf(first, region('eu')), valueOf(first, region('in'))]).toEqual([12, 3]);
    await new Promise((r) => setTimeout(r, 5));
    const second = await metrics.registry.metrics();
    expect([valueOf(second, region('eu')), valueOf(second, region('in'))]).toEqual([12, 3]);
    expect(reads).toHaveLength(0);
  });
});

describe('Stripe requests', () => {
  it('label a path by its shape: ids as :id, the query left out', () => {
    expect(stripePathTemplate('/v1/checkout/sessions')).toBe('/v1/checkout/sessions');
    expect(stripePathTemplate('/v1/subscriptions/sub_1NxYzAbC2dEfGh')).toBe('/v1/subscriptions/:id');
    expect(stripePathTemplate('/v1/subscription_items/si_Q8xA1b/usage_record_summaries')).toBe(
      '/v1/subscription_items/:id/usage_record_summaries',
    );
    expect(stripePathTemplate('/v1/coupons/LAUNCH10')).toBe('/v1/coupons/:id');
    expect(stripePathTemplate('/v1/promotion_codes/SUMMER')).toBe('/v1/promotion_codes/:id');
    expect(stripePathTemplate('/v1/events?created[gte]=1767225600&limit=100')).toBe('/v1/events');
    expect(stripePathTemplate('/v1/billing_portal/sessions')).toBe('/v1/billing_portal/sessions');
    expect(stripePathTemplate('')).toBe('/');
  });

  it('are timed by method and path, and the refusals for the rate counted', async () => {
    const metrics = createMetrics();
    const sdk = new EventEmitter();
    observeStripeRequests(sdk, metrics);
    sdk.emit('response', { method: 'POST', path: '/v1/checkout/sessions', status: 200, elapsed: 300 });
    sdk.emit('response', { method: 'GET', path: '/v1/subscriptions/sub_1AbC', status: 429, elapsed: 40 });
    sdk.emit('response', { method: 'GET', path: '/v1/subscriptions/sub_2XyZ', status: 200, elapsed: 1_200 });
    const text = await metrics.registry.metrics();
    const of = (name: string, labels: string) =>
      valueOf(
        text,
        new RegExp(`^gatehouse_stripe_request_duration_seconds_${name}\\{${labels}\\} ([0-9.]+)$`, 'm'),
      );
    expect(of('count', 'method="POST",path="/v1/checkout/sessions"')).toBe(1);
    expect(of('sum', 'method="POST",path="/v1/checkout/sessions"')).toBeCloseTo(0.3);
    expect(of('count', 'method="GET",path="/v1/subscriptions/:id"')).toBe(2);
    expect(of('bucket', 'le="0.05",method="GET",path="/v1/subscriptions/:id"')).toBe(1);
    expect(of('bucket', 'le="1",method="GET",path="/v1/subscriptions/:id"')).toBe(1);
    expect(valueOf(text, /^gatehouse_stripe_rate_limited_total (\d+)$/m)).toBe(1);
  });
});
