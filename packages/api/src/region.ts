import type Stripe from 'stripe';
import type { Logger } from 'pino';
import type { DataSource } from 'typeorm';
import type { Ledger } from '@gatehouse/ledger';
import {
  AccessIndex,
  CatalogProjection,
  CommerceProjection,
  MembershipProjection,
  Projector,
  ProjectorLease,
  TiersProjection,
  peerFollower,
  archiveProjection,
  withMigrationFacts,
} from '@gatehouse/projections';
import { PostgresQuarantineStore } from '@gatehouse/stripe';
import type { Config, Region } from './config';
import {
  createGatehouseServices,
  startInstallmentPlans,
  type Services,
  type StripeAccountLock,
} from './services';
import { openStores } from './stores';
import { Closers } from './closers';

// One region's stores and everything that runs on them: its own database, its own ledger (table or
// topic), its projector and read models. Nothing of one region is written to another's stores.

export type RegionRuntime = {
  region: Region;
  databaseUrl: string;
  ledger: Ledger;
  dataSource: DataSource;
  projector: Projector;
  /** Whether this server projects the region's read models or follows the one that does. */
  lease: ProjectorLease;
  services: Services;
  quarantine: PostgresQuarantineStore;
  close(): Promise<void>;
};

/** The projector of one region's read models, over its ledger and database (not started). */
export function regionProjector(deps: {
  dataSource: DataSource;
  ledger: Ledger;
  accessIndex: AccessIndex;
  log: Logger;
  /** Shared read models (a server): only the lease holder projects. */
  lease?: ProjectorLease;
}): Projector {
  const projectionLog = deps.log.child({ component: 'projector' });
  return new Projector({
    dataSource: deps.dataSource,
    ledger: deps.ledger,
    logger: projectionLog,
    lease: deps.lease,
    // Batches small enough that folding one never holds the event loop for long: webhooks and
    // GraphQL share it (measured: p99 of webhooks at concurrency 32 fell from ~190 to ~90 ms).
    maxBatch: 250,
    projections: [
      archiveProjection(),
      new CatalogProjection(),
      withMigrationFacts(new MembershipProjection({ index: deps.accessIndex, logger: projectionLog })),
      new CommerceProjection({ logger: projectionLog }),
      new TiersProjection({ logger: projectionLog }),
    ],
  });
}

/** The stores of each configured region; the default region uses DATABASE_URL / KAFKA_BROKERS. */
export function regionStores(config: Config): { region: Region; config: Config }[] {
  const extra = config.regions ?? {};
  const defaultStores = extra[config.defaultRegion];
  const out: { region: Region; config: Config }[] = [
    {
      region: config.defaultRegion,
      config: defaultStores
        ? {
            ...config,
            databaseUrl: defaultStores.databaseUrl ?? config.databaseUrl,
            kafkaBrokers: defaultStores.kafkaBrokers ?? config.kafkaBrokers,
          }
        : config,
    },
  ];
  for (const [region, stores] of Object.entries(extra) as [
    Region,
    NonNullable<Config['regions']>[Region],
  ][]) {
    if (region === config.defaultRegion || !stores) continue;
    if (!stores.databaseUrl) {
      throw new Error(
        `GATEHOUSE_REGIONS.${region}.databaseUrl is required: each region keeps its own database`,
      );
    }
    out.push({
      region,
      config: {
        ...config,
        databaseUrl: stores.databaseUrl,
        kafkaBrokers: stores.kafkaBrokers,
        kafkaTopic: `${config.kafkaTopic}.${region}`,
      },
    });
  }
  return out;
}

export async function startRegion(
  region: Region,
  config: Config,
  log: Logger,
  shared: {
    stripe: Stripe | null;
    /** Base of invitation links (default: `config.publicUrl`). */
    publicUrl?: () => string;
    /** Prefix of the ids of communities created here (set when several regions run). */
    communityIdPrefix?: string;
    onStripeAccountLinked?: (accountId: string, communityId: string) => Promise<void>;
    communityForStripeAccount?: (accountId: string) => Promise<string | null>;
    stripeAccountLock?: StripeAccountLock;
  },
): Promise<RegionRuntime> {
  const regionLog = log.child({ region });
  const stores = await openStores(config, regionLog);
  const closers = new Closers(regionLog);
  closers.add('the databases and the ledger', () => stores.close());
  const close = () => closers.closeAll();
  try {
    const { ledger, dataSource, readSource, databaseUrl } = stores;
    // The access index is loaded before the projector starts, then follows its commits.
    const accessIndex = new AccessIndex();
    await accessIndex.load(dataSource);
    // Servers sharing these read models (replicas, a rolling deploy) take turns: one projects and
    // asks Stripe to end installment plans, the others follow its commits. One started with
    // GATEHOUSE_PROJECTOR=off only ever follows.
    const lease = new ProjectorLease(dataSource, {
      log: regionLog.child({ component: 'projector-lease' }),
      lead: config.projector,
    });
    const projector = regionProjector({ dataSource, ledger, accessIndex, log: regionLog, lease });
    await assertCheckpointsFit(dataSource, ledger);
    let installmentPlans: ReturnType<typeof startInstallmentPlans> | null = null;
    await lease.start({
      async lead() {
        projector.start();
        installmentPlans = startInstallmentPlans({
          ledger,
          dataSource,
          stripe: shared.stripe,
          log: regionLog,
        });
      },
      async lose() {
        await projector.stop();
        await installmentPlans?.stop();
        installmentPlans = null;
      },
      ...peerFollower({ dataSource, index: accessIndex, projector }),
    });
    closers.add('the projector', () => lease.stop());
    if (!config.projector)
      regionLog.info('GATEHOUSE_PROJECTOR=off: this server does not project; it follows the one that does');

    const quarantine = new PostgresQuarantineStore({
      connectionString: databaseUrl,
      poolConfig: { Client: stores.client },
    });
    await quarantine.init();
    closers.add('the quarantine store', () => quarantine.close());

    const services = createGatehouseServices({
      dataSource,
      readSource,
      ledger,
      projector,
      stripe: shared.stripe,
      log: regionLog,
      publicUrl: shared.publicUrl ?? config.publicUrl,
      accessIndex,
      communityIdPrefix: shared.communityIdPrefix,
      onStripeAccountLinked: shared.onStripeAccountLinked,
      communityForStripeAccount: shared.communityForStripeAccount,
      stripeAccountLock: shared.stripeAccountLock,
    });
    return { region, databaseUrl, ledger, dataSource, projector, lease, services, quarantine, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/**
 * Checkpoints written against another kind of ledger (PostgreSQL positions vs Kafka offsets) cannot
 * be resumed: say so at start instead of retrying forever.
 */
async function assertCheckpointsFit(dataSource: DataSource, ledger: Ledger): Promise<void> {
  const rows = await dataSource.query<{ name: string; position: string | null }[]>(
    'SELECT name, position FROM projection_checkpoints WHERE position IS NOT NULL',
  );
  for (const r of rows) {
    try {
      ledger.comparePositions(r.position!, r.position!);
    } catch {
      throw new Error(
        `the read models in this database were built from another ledger (projection ${r.name} is at ` +
          `"${r.position}", which is not a ${ledger.kind} position): use the ledger they came from, a fresh database, or ` +
          '`npx gatehouse replay` to rebuild them from this ledger',
      );
    }
  }
}
