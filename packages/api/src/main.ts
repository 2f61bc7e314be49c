import { createServer, type Server } from 'node:http';
import net from 'node:net';
import Stripe from 'stripe';
import pino, { type Logger } from 'pino';
import {
  createWebhookIngestor,
  oldestListing,
  releaseQuarantine,
  type CommunityDirectory,
} from '@gatehouse/stripe';
import { AppendBatcher, PostgresLedger } from '@gatehouse/ledger';
import { countUnlinkedStripeEvents, pendingMigrationsOf } from '@gatehouse/projections';
import type { Config } from './config';
import { startRegion, regionStores, type RegionRuntime } from './region';
import { RegionRoutedLedger } from './region-ledger';
import { startReconcileInterval } from './reconcile-interval';
import { startQuarantineSweep } from './quarantine-sweep';
import { communityIdPrefix, regionOfCommunity, routeServices } from './region-router';
import type { ReadinessCheck } from './http/app';
import {
  advisoryStripeAccountLock,
  postgresReconcileWindowStore,
  stripeBulkReadLock,
  type Services,
} from './services';
import { buildGatehouseSchema } from './graphql/schema';
import { createApp } from './http/app';
import { HttpDrain } from './http/drain';
import { Closers } from './closers';
import { joinRoutes } from './http/join.routes';
import {
  createMetrics,
  observeStripeRequests,
  registerProjectorLagGauge,
  registerProjectorLeadingGauge,
  registerQuarantineGauge,
  registerQuarantineAgeGauge,
  registerReconcileWindowAgeGauge,
  registerUnlinkedGauge,
  QUARANTINE_COUNT_CAP,
  UNLINKED_COUNT_CAP,
} from './http/metrics';

// The composition root: the one place that builds concrete adapters from the configuration.

export class PortInUseError extends Error {
  readonly code = 'PORT_IN_USE';
  constructor(port: number) {
    super(`PORT ${port} is already in use (is another Gatehouse running?): stop it or set PORT`);
    this.name = 'PortInUseError';
  }
}

export type RunningGatehouse = {
  url: string;
  port: number;
  log: Logger;
  /**
   * Stops everything: the HTTP server first (open requests are answered for up to
   * `GATEHOUSE_SHUTDOWN_GRACE_SECONDS`), then GraphQL, the projector, the ledger and the databases.
   */
  close(): Promise<void>;
  /** During `close`: stop waiting for open requests and close their connections now. */
  cutOpenRequests(): void;
};

export function createLogger(config: Pick<Config, 'logLevel'>): Logger {
  return pino({
    level: config.logLevel,
    base: { service: 'gatehouse' },
    // Secrets never reach a log line, whatever object is logged.
    redact: {
      paths: [
        '*.authorization',
        '*.headers.authorization',
        '*["stripe-signature"]',
        '*.password',
        '*.secret',
        '*.jwtSecret',
        '*.stripeSecretKey',
        '*.stripeWebhookSecrets',
      ],
      censor: '[redacted]',
    },
  });
}

async function assertPortFree(host: string, port: number): Promise<void> {
  if (port === 0) return;
  await new Promise<void>((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'EADDRINUSE' ? new PortInUseError(port) : err),
    );
    probe.listen(port, host, () => probe.close(() => resolve()));
  });
}

export function createStripeClient(config: Pick<Config, 'stripeSecretKey' | 'stripeApiBase'>): Stripe | null {
  if (!config.stripeSecretKey) return null;
  const base = config.stripeApiBase;
  return new Stripe(config.stripeSecretKey, {
    maxNetworkRetries: 2,
    timeout: 20_000,
    ...(base
      ? {
          host: base.hostname,
          port: Number(base.port || (base.protocol === 'https:' ? 443 : 80)),
          protocol: base.protocol.replace(':', '') as 'http' | 'https',
        }
      : {}),
  });
}

export async function startGatehouse(
  config: Config,
  log: Logger = createLogger(config),
): Promise<RunningGatehouse> {
  const closers = new Closers(log);
  const close = () => closers.closeAll();

  try {
    await assertPortFree(config.host, config.port);
    const stripe = createStripeClient(config);
    const metrics = createMetrics();
    if (stripe) observeStripeRequests(stripe, metrics);

    // Each region runs on its own stores; without GATEHOUSE_REGIONS there is one, the default.
    const layout = regionStores(config);
    const multiRegion = layout.length > 1;
    const regions: RegionRuntime[] = [];
    const fallback = () => regions.find((r) => r.region === config.defaultRegion)!;
    let publicUrl = config.publicUrl;
    for (const { region, config: regionConfig } of layout) {
      const runtime = await startRegion(region, regionConfig, log, {
        stripe,
        publicUrl: () => publicUrl,
        communityIdPrefix: multiRegion ? communityIdPrefix(region) : undefined,
        // Events held for an unknown connected account join the owning region's ledger once a
        // community links it (they wait in the default region's quarantine until then).
        onStripeAccountLinked: async (accountId, communityId) => {
          const report = await releaseQuarantine(
            { ledger: runtime.ledger, quarantine: fallback().quarantine },
            accountId,
            communityId,
          );
          log.info({ accountId, communityId, region, report }, 'quarantined Stripe events released');
        },
        // An account linked in any region is taken.
        communityForStripeAccount: (accountId) => directory.communityForStripeAccount(accountId),
        // Linked one at a time across regions (and servers): the default region's database holds the lock.
        stripeAccountLock: (accountId, fn) => advisoryStripeAccountLock(fallback().dataSource)(accountId, fn),
      });
      regions.push(runtime);
      closers.add(`region ${region}`, () => runtime.close());
    }
    const home = fallback();
    registerProjectorLagGauge(metrics, () =>
      Promise.all(
        regions.map(async (r) => ({
          region: r.region,
          behind: Math.max(0, ...(await r.projector.lag()).map((l) => l.behind)),
        })),
      ),
    );
    registerProjectorLeadingGauge(metrics, () =>
      regions.map((r) => ({ region: r.region, leading: r.lease.isLeader() })),
    );
    registerQuarantineGauge(metrics, () => home.quarantine.count(QUARANTINE_COUNT_CAP + 1));
    registerQuarantineAgeGauge(metrics, () => home.quarantine.oldestHeldAt());
    registerUnlinkedGauge(metrics, () =>
      Promise.all(
        regions.map(async (r) => ({
          region: r.region,
          events: await countUnlinkedStripeEvents(r.dataSource, UNLINKED_COUNT_CAP),
        })),
      ),
    );
    const services = multiRegion ? routeServices(regions, config.defaultRegion) : home.services;
    const regionFor = (communityId: string) => regionOfCommunity(regions, home, communityId);

    const stripeLedger = multiRegion ? new RegionRoutedLedger(regions, home) : home.ledger;
    // A linked account never moves to another community, so a found link is kept in memory: the
    // webhook path then costs no database read. Unknown accounts are asked again each time.
    const linkedAccounts = new Map<string, string>();
    const directory: CommunityDirectory = {
      async communityForStripeAccount(account) {
        const known = linkedAccounts.get(account);
        if (known) return known;
        const found = await Promise.all(
          regions.map((r) => r.services.catalogQuery.communityForStripeAccount(account)),
        );
        const communityId = found.find((id) => id !== null) ?? null;
        if (communityId) linkedAccounts.set(account, communityId);
        return communityId;
      },
      platformCommunity: async () => config.stripePlatformCommunityId ?? null,
    };
    const ingestWebhook =
      config.stripeWebhookSecrets.length > 0
        ? createWebhookIngestor({
            // Webhooks arrive in parallel: concurrent appends share one transaction and one commit.
            // On PostgreSQL one batch at a time, taking whatever queued meanwhile: fewer, larger
            // transactions (measured on the webhook path alone: 4 % more webhooks per second and
            // 13 % less database CPU per webhook than with two in flight). Kafka's produce round trip
            // is longer, and two in flight keep its broker busy.
            ledger: new AppendBatcher(
              stripeLedger,
              500,
              regions.every((r) => r.ledger instanceof PostgresLedger) ? 1 : 2,
            ),
            secrets: config.stripeWebhookSecrets,
            toleranceSeconds: config.stripeWebhookToleranceSeconds,
            directory,
            quarantine: home.quarantine,
            logger: log.child({ component: 'webhooks' }),
            clock: () => new Date(),
            answerWithinMs: config.webhookTimeoutSeconds * 1000,
          })
        : undefined;

    const linkedStripeAccounts = async () =>
      (await Promise.all(regions.map((r) => r.services.catalogQuery.list())))
        .flat()
        .flatMap((c) => (c.stripeAccountId ? [c.stripeAccountId] : []));
    closers.add(
      'the quarantine sweep',
      startQuarantineSweep({
        ledger: stripeLedger,
        quarantine: home.quarantine,
        directory,
        linkedAccounts: linkedStripeAccounts,
        leads: () => home.lease.isLeader(),
        log: log.child({ component: 'quarantine' }),
      }),
    );

    // Missed webhooks: the Events API listed on an interval, by the server projecting the default region.
    if (config.reconcileIntervalSeconds > 0 && stripe) {
      const reconcileLog = log.child({ component: 'reconciler' });
      if (!config.projector)
        reconcileLog.warn(
          'GATEHOUSE_RECONCILE_INTERVAL is set, but the server that projects reconciles and this one never does (GATEHOUSE_PROJECTOR=off): set it there',
        );
      const windows = postgresReconcileWindowStore(
        regions.map((r) => ({ dataSource: r.dataSource, home: r === home })),
      );
      registerReconcileWindowAgeGauge(
        metrics,
        async () => oldestListing(windows, [null, ...(await linkedStripeAccounts())]),
        new Date(),
      );
      const stop = startReconcileInterval({
        intervalSeconds: config.reconcileIntervalSeconds,
        stripe,
        ledger: stripeLedger,
        directory,
        quarantine: home.quarantine,
        linkedAccounts: linkedStripeAccounts,
        leads: () => home.lease.isLeader(),
        bulkRead: stripeBulkReadLock(home.dataSource, 'server', 'gatehouse serve (reconcile interval)'),
        windows,
        log: reconcileLog,
        metrics,
      });
      closers.add('the reconciler', stop);
    }

    const joinCommerce = {
      async joinOfferOrThrow(token: string, member?: string) {
        for (const r of regions.slice(0, -1)) {
          try {
            return await r.services.commerce.joinOfferOrThrow(token, member);
          } catch (err) {
            if ((err as { code?: string }).code !== 'NOT_FOUND') throw err;
          }
        }
        return regions[regions.length - 1].services.commerce.joinOfferOrThrow(token, member);
      },
      invitationUrl: (token: string) => home.services.commerce.invitationUrl(token),
      startCheckout: (caller: null, input: Parameters<Services['commerce']['startCheckout']>[1]) =>
        regionFor(input.communityId).services.commerce.startCheckout(caller, input),
    };

    const drain = new HttpDrain();
    const { listener, apollo } = await createApp({
      schema: await buildGatehouseSchema(),
      services,
      log,
      metrics,
      jwtSecret: config.jwtSecret,
      production: config.production,
      ingestWebhook,
      extraRoutes: joinRoutes({
        commerce: joinCommerce,
        log,
        // The join form posts and redirects to Checkout: Stripe's origin, or the fake's in tests and demos.
        checkoutOrigins: [
          'https://checkout.stripe.com',
          ...(config.stripeApiBase ? [config.stripeApiBase.origin] : []),
        ],
      }),
      readiness: readinessChecks(regions, multiRegion),
    });
    closers.add('GraphQL', () => apollo.stop());

    const server: Server = await new Promise((resolve, reject) => {
      const s = createServer(
        {
          // Idle connections are kept longer than a load balancer keeps its own (AWS's: 60 s), so
          // that it never sends a request on a connection this server is closing (a 502 to the
          // caller). The headers of a request must still arrive within a minute of its first byte.
          keepAliveTimeout: config.keepAliveSeconds * 1000,
          headersTimeout: Math.max(60_000, config.keepAliveSeconds * 1000 + 1000),
        },
        drain.track(listener),
      ).listen(config.port, config.host);
      s.once('listening', () => resolve(s));
      s.once('error', (err: NodeJS.ErrnoException) =>
        reject(err.code === 'EADDRINUSE' ? new PortInUseError(config.port) : err),
      );
    });
    closers.add('open HTTP requests', () => drain.close(server, config.shutdownGraceSeconds * 1000, log));
    const port = (server.address() as net.AddressInfo).port;
    const base = `http://${config.host === '0.0.0.0' ? 'localhost' : config.host}:${port}`;
    if (config.publicUrlFromListener) publicUrl = base;
    log.info(
      { url: `${base}/graphql`, port, ledger: home.ledger.kind, regions: regions.map((r) => r.region) },
      'Gatehouse is listening',
    );
    return { url: base, port, log, close, cutOpenRequests: () => drain.cut() };
  } catch (err) {
    await close();
    throw err;
  }
}

function readinessChecks(regions: readonly RegionRuntime[], multiRegion: boolean): ReadinessCheck[] {
  return regions.flatMap((r) => {
    const name = (check: string) => (multiRegion ? `${check}:${r.region}` : check);
    return [
      { name: name('database'), check: async () => void (await r.dataSource.query('SELECT 1')) },
      { name: name('ledger'), check: () => r.ledger.ping() },
      {
        name: name('migrations'),
        check: async () => {
          const pending = await pendingMigrationsOf(r.dataSource);
          if (pending.length) throw new Error(`pending: ${pending.join(', ')}`);
        },
      },
      {
        name: name('projector'),
        check: async () => {
          const role = r.lease.role();
          // Another server projects: this one follows its commits.
          if (role === 'following') return;
          if (role === 'disconnected') throw new Error('the projector lease has no connection');
          const stopped = r.projector.status().filter((s) => !s.running);
          if (stopped.length) throw new Error(`stopped: ${stopped.map((s) => s.projection).join(', ')}`);
        },
      },
    ];
  });
}
