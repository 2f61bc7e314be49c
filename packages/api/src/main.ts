import type { Server } from 'node:http';
import net from 'node:net';
import Stripe from 'stripe';
import pino, { type Logger } from 'pino';
import { PostgresQuarantineStore, createWebhookIngestor, releaseQuarantine } from '@gatehouse/stripe';
import {
  AccessIndex,
  CatalogProjection,
  CommerceProjection,
  MembershipProjection,
  Projector,
  TiersProjection,
  archiveProjection,
  pendingMigrations,
} from '@gatehouse/projections';
import type { Config } from './config';
import { openStores } from './stores';
import { buildGatehouseSchema } from './graphql/schema';
import { createApp } from './http/app';
import { joinRoutes } from './http/join.routes';
import { createMetrics } from './http/metrics';
import { createGatehouseServices } from './services';

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
  close(): Promise<void>;
};

export function createLogger(config: Pick<Config, 'logLevel'>): Logger {
  return pino({
    level: config.logLevel,
    base: { service: 'gatehouse' },
    // Secrets never reach a log line, whatever object is logged.
    redact: {
      paths: ['*.authorization', '*.headers.authorization', '*["stripe-signature"]', '*.password', '*.secret', '*.jwtSecret', '*.stripeSecretKey', '*.stripeWebhookSecrets'],
      censor: '[redacted]',
    },
  });
}

async function assertPortFree(host: string, port: number): Promise<void> {
  if (port === 0) return;
  await new Promise<void>((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', (err: NodeJS.ErrnoException) => reject(err.code === 'EADDRINUSE' ? new PortInUseError(port) : err));
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

export async function startGatehouse(config: Config, log: Logger = createLogger(config)): Promise<RunningGatehouse> {
  const cleanups: (() => Promise<void> | void)[] = [];
  const close = async () => {
    for (const fn of cleanups.splice(0).reverse()) {
      try {
        await fn();
      } catch (err) {
        log.warn({ err }, 'error while shutting down');
      }
    }
  };

  try {
    await assertPortFree(config.host, config.port);
    const stores = await openStores(config, log);
    cleanups.push(() => stores.close());
    const { ledger, dataSource, databaseUrl } = stores;

    // The access index is loaded before the projector starts, then follows its commits.
    const accessIndex = new AccessIndex();
    await accessIndex.load(dataSource);
    const projectionLog = log.child({ component: 'projector' });
    const projector = new Projector({
      dataSource,
      ledger,
      logger: projectionLog,
      projections: [
        archiveProjection(),
        new CatalogProjection(),
        new MembershipProjection({ index: accessIndex, logger: projectionLog }),
        new CommerceProjection({ logger: projectionLog }),
        new TiersProjection({ logger: projectionLog }),
      ],
    });
    projector.start();
    cleanups.push(() => projector.stop());

    const metrics = createMetrics();
    const stripe = createStripeClient(config);
    const quarantine = new PostgresQuarantineStore({ connectionString: databaseUrl });
    await quarantine.init();
    cleanups.push(() => quarantine.close());
    const services = createGatehouseServices({
      dataSource,
      ledger,
      projector,
      stripe,
      log,
      publicUrl: config.publicUrl,
      accessIndex,
      // Events held for an unknown connected account join the ledger once a community links it.
      onStripeAccountLinked: async (accountId, communityId) => {
        const report = await releaseQuarantine({ ledger, quarantine }, accountId, communityId);
        log.info({ accountId, communityId, report }, 'quarantined Stripe events released');
      },
    });
    const ingestWebhook =
      config.stripeWebhookSecrets.length > 0
        ? createWebhookIngestor({
            ledger,
            secrets: config.stripeWebhookSecrets,
            toleranceSeconds: config.stripeWebhookToleranceSeconds,
            directory: {
              communityForStripeAccount: (account) => services.catalogQuery.communityForStripeAccount(account),
              platformCommunity: async () => config.stripePlatformCommunityId ?? null,
            },
            quarantine,
            logger: log.child({ component: 'webhooks' }),
            clock: () => new Date(),
          })
        : undefined;

    const url = databaseUrl;
    const { app, apollo } = await createApp({
      schema: await buildGatehouseSchema(),
      services,
      log,
      metrics,
      jwtSecret: config.jwtSecret,
      production: config.production,
      ingestWebhook,
      extraRoutes: joinRoutes({
        commerce: services.commerce,
        log,
        // The join form posts and redirects to Checkout: Stripe's origin, or the fake's in tests and demos.
        checkoutOrigins: ['https://checkout.stripe.com', ...(config.stripeApiBase ? [config.stripeApiBase.origin] : [])],
      }),
      readiness: [
        { name: 'database', check: async () => void (await dataSource.query('SELECT 1')) },
        { name: 'ledger', check: () => ledger.ping() },
        {
          name: 'migrations',
          check: async () => {
            const pending = await pendingMigrations(url);
            if (pending.length) throw new Error(`pending: ${pending.join(', ')}`);
          },
        },
        {
          name: 'projector',
          check: async () => {
            const lag = await projector.lag();
            const behind = Math.max(0, ...lag.map((l) => l.behind));
            metrics.projectorLag.set(behind);
            const stopped = projector.status().filter((s) => !s.running);
            if (stopped.length) throw new Error(`stopped: ${stopped.map((s) => s.projection).join(', ')}`);
          },
        },
      ],
    });
    cleanups.push(() => apollo.stop());

    const server: Server = await new Promise((resolve, reject) => {
      const s = app.listen(config.port, config.host);
      s.once('listening', () => resolve(s));
      s.once('error', (err: NodeJS.ErrnoException) => reject(err.code === 'EADDRINUSE' ? new PortInUseError(config.port) : err));
    });
    cleanups.push(
      () =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        }),
    );
    const port = (server.address() as net.AddressInfo).port;
    const base = `http://${config.host === '0.0.0.0' ? 'localhost' : config.host}:${port}`;
    log.info({ url: `${base}/graphql`, port, ledger: ledger.kind }, 'Gatehouse is listening');
    return { url: base, port, log, close };
  } catch (err) {
    await close();
    throw err;
  }
}
