import { randomBytes } from 'node:crypto';
import path from 'node:path';

// The one place that reads process.env. Every key is documented where it is declared, checked at
// boot, and a bad value stops the program with a message naming the variable.

export type Region = 'us' | 'eu' | 'in';
export const REGIONS: readonly Region[] = ['us', 'eu', 'in'];

export type RegionStores = { databaseUrl?: string; kafkaBrokers?: string[] };

export type Config = {
  /** PORT: HTTP port; 0 picks a free one. Default 4000. */
  port: number;
  /** HOST: interface to listen on. Default 0.0.0.0. */
  host: string;
  /** DATABASE_URL: PostgreSQL for read models (and the ledger without Kafka). Unset → embedded. */
  databaseUrl?: string;
  /** GATEHOUSE_DATA_DIR: where the embedded PostgreSQL keeps its data. Default `.gatehouse`. */
  dataDir: string;
  /** KAFKA_BROKERS: comma-separated brokers; set → the ledger is a Kafka topic. */
  kafkaBrokers?: string[];
  /** GATEHOUSE_KAFKA_TOPIC: the ledger topic. Default `gatehouse.ledger.v1`. */
  kafkaTopic: string;
  /** GATEHOUSE_REGIONS: JSON map region → { databaseUrl, kafkaBrokers } for data residency. */
  regions?: Partial<Record<Region, RegionStores>>;
  /** GATEHOUSE_DEFAULT_REGION: the region served by DATABASE_URL / KAFKA_BROKERS. Default `us`. */
  defaultRegion: Region;
  /** STRIPE_SECRET_KEY: Stripe API key; unset → outbound Stripe calls answer a clear error. */
  stripeSecretKey?: string;
  /** STRIPE_API_BASE: base URL of the Stripe API, e.g. a fake at http://127.0.0.1:12111. */
  stripeApiBase?: URL;
  /** STRIPE_WEBHOOK_SECRET: comma-separated `whsec_…` secrets; any may match (rotation). */
  stripeWebhookSecrets: string[];
  /** STRIPE_WEBHOOK_TOLERANCE_SECONDS: max age (and future skew) of a signature. Default 300; must be > 0. */
  stripeWebhookToleranceSeconds: number;
  /** STRIPE_PLATFORM_COMMUNITY_ID: the community that receives platform events (no `account`). */
  stripePlatformCommunityId?: string;
  /** GATEHOUSE_JWT_SECRET: HS256 secret for bearer tokens; generated (and printed) outside production. */
  jwtSecret: string;
  /** True when GATEHOUSE_JWT_SECRET was not set and a development secret was generated. */
  jwtSecretGenerated: boolean;
  /** GATEHOUSE_PUBLIC_URL: base of invitation links. Default http://localhost:$PORT. */
  publicUrl: string;
  /** No GATEHOUSE_PUBLIC_URL and PORT=0: the server's address is its base once it listens. */
  publicUrlFromListener: boolean;
  /** NODE_ENV: `production` turns off introspection and requires every secret. */
  production: boolean;
  /** LOG_LEVEL: pino level. Default `info`. */
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** GATEHOUSE_RECONCILE_INTERVAL: run the Stripe reconciler every N seconds (0 = off). Default 0. */
  reconcileIntervalSeconds: number;
  /**
   * GATEHOUSE_PROJECTOR: `on` (default) — this server may take the projector lease and project;
   * `off` — it never does: it receives webhooks, answers GraphQL and follows the one that projects.
   */
  projector: boolean;
  /**
   * GATEHOUSE_SHUTDOWN_GRACE_SECONDS: on a stop signal, how long open requests are let finish before
   * their connections are closed (0 = at once). Default 15.
   */
  shutdownGraceSeconds: number;
  /**
   * GATEHOUSE_WEBHOOK_TIMEOUT_SECONDS: how long a Stripe webhook waits for the ledger to confirm it
   * before it is answered 503 (Stripe retries). Default 10.
   */
  webhookTimeoutSeconds: number;
  /**
   * GATEHOUSE_KEEP_ALIVE_SECONDS: how long an idle HTTP connection is kept open; longer than the
   * idle timeout of any load balancer in front. Default 65.
   */
  keepAliveSeconds: number;
  /**
   * GATEHOUSE_DATABASE_TIMEOUT_SECONDS: how long any query to PostgreSQL may go unanswered before its
   * connection is given up (closed; the query fails, and the next one opens a new connection);
   * 0 = no limit. Default 30.
   */
  databaseTimeoutSeconds: number;
};

export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable}: ${message}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^-?\d+$/.test(raw.trim())) throw new ConfigError(name, `must be an integer, got "${raw}"`);
  const n = Number(raw);
  if (n < min || n > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${n}`);
  return n;
}

function postgresUrl(name: string, raw: string): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new ConfigError(name, 'must be a URL like postgres://user:password@host:5432/database');
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') {
    throw new ConfigError(name, `must use the postgres:// scheme, got "${u.protocol}"`);
  }
  return raw;
}

function brokers(name: string, raw: string): string[] {
  const list = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (list.length === 0) throw new ConfigError(name, 'must list at least one host:port');
  for (const b of list) {
    if (!/^[A-Za-z0-9.\-_[\]:]+:\d{1,5}$/.test(b)) throw new ConfigError(name, `"${b}" is not host:port`);
  }
  return list;
}

function regions(name: string, raw: string): Partial<Record<Region, RegionStores>> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new ConfigError(name, 'must be JSON, e.g. {"in":{"databaseUrl":"postgres://…"}}');
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed))
    throw new ConfigError(name, 'must be a JSON object');
  const out: Partial<Record<Region, RegionStores>> = {};
  for (const [key, value] of Object.entries(parsed as Record<string, unknown>)) {
    if (!REGIONS.includes(key as Region))
      throw new ConfigError(name, `unknown region "${key}" (use ${REGIONS.join(', ')})`);
    const v = (value ?? {}) as Record<string, unknown>;
    const stores: RegionStores = {};
    if (v.databaseUrl !== undefined) {
      if (typeof v.databaseUrl !== 'string')
        throw new ConfigError(name, `${key}.databaseUrl must be a string`);
      stores.databaseUrl = postgresUrl(`${name}.${key}.databaseUrl`, v.databaseUrl);
    }
    if (v.kafkaBrokers !== undefined) {
      const b = Array.isArray(v.kafkaBrokers) ? v.kafkaBrokers.join(',') : v.kafkaBrokers;
      if (typeof b !== 'string')
        throw new ConfigError(name, `${key}.kafkaBrokers must be a string or an array`);
      stores.kafkaBrokers = brokers(`${name}.${key}.kafkaBrokers`, b);
    }
    out[key as Region] = stores;
  }
  return out;
}

/** The longest `GATEHOUSE_RECONCILE_INTERVAL`: a day. */
export const RECONCILE_INTERVAL_MAX_SECONDS = 86_400;

export function loadConfig(env: Env = process.env): Config {
  const production = env.NODE_ENV === 'production';
  const port = int(env, 'PORT', 4000, 0, 65535);

  const levels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
  const logLevel = (env.LOG_LEVEL || 'info') as Config['logLevel'];
  if (!levels.includes(logLevel)) throw new ConfigError('LOG_LEVEL', `must be one of ${levels.join(', ')}`);

  const databaseUrl = env.DATABASE_URL ? postgresUrl('DATABASE_URL', env.DATABASE_URL) : undefined;
  const kafkaBrokers = env.KAFKA_BROKERS ? brokers('KAFKA_BROKERS', env.KAFKA_BROKERS) : undefined;

  const secrets = (env.STRIPE_WEBHOOK_SECRET ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const s of secrets) {
    if (!s.startsWith('whsec_'))
      throw new ConfigError('STRIPE_WEBHOOK_SECRET', 'each secret must start with whsec_');
  }
  if (production && secrets.length === 0)
    throw new ConfigError('STRIPE_WEBHOOK_SECRET', 'is required in production');

  // A tolerance of 0 would switch off replay protection in Stripe's own scheme: refuse it.
  const tolerance = int(env, 'STRIPE_WEBHOOK_TOLERANCE_SECONDS', 300, -1_000_000, 3600);
  if (tolerance <= 0) {
    throw new ConfigError(
      'STRIPE_WEBHOOK_TOLERANCE_SECONDS',
      'must be greater than 0 (0 disables replay protection)',
    );
  }

  const stripeSecretKey = env.STRIPE_SECRET_KEY || undefined;
  if (stripeSecretKey && !/^(sk|rk)_(test|live)_/.test(stripeSecretKey)) {
    throw new ConfigError('STRIPE_SECRET_KEY', 'must start with sk_test_, sk_live_, rk_test_ or rk_live_');
  }
  let stripeApiBase: URL | undefined;
  if (env.STRIPE_API_BASE) {
    try {
      stripeApiBase = new URL(env.STRIPE_API_BASE);
    } catch {
      throw new ConfigError('STRIPE_API_BASE', 'must be a URL like http://127.0.0.1:12111');
    }
    if (stripeApiBase.protocol !== 'http:' && stripeApiBase.protocol !== 'https:') {
      throw new ConfigError('STRIPE_API_BASE', 'must be an http(s) URL');
    }
  }

  let jwtSecret = env.GATEHOUSE_JWT_SECRET ?? '';
  let jwtSecretGenerated = false;
  if (!jwtSecret) {
    if (production) throw new ConfigError('GATEHOUSE_JWT_SECRET', 'is required in production');
    jwtSecret = randomBytes(32).toString('base64url');
    jwtSecretGenerated = true;
  } else if (jwtSecret.length < 32) {
    throw new ConfigError('GATEHOUSE_JWT_SECRET', 'must be at least 32 characters');
  }

  const publicUrlRaw = env.GATEHOUSE_PUBLIC_URL || `http://localhost:${port || 4000}`;
  try {
    new URL(publicUrlRaw);
  } catch {
    throw new ConfigError('GATEHOUSE_PUBLIC_URL', 'must be a URL like https://join.example.com');
  }

  const projector = (env.GATEHOUSE_PROJECTOR || 'on').trim().toLowerCase();
  if (projector !== 'on' && projector !== 'off') {
    throw new ConfigError('GATEHOUSE_PROJECTOR', `must be on or off, got "${env.GATEHOUSE_PROJECTOR}"`);
  }

  const defaultRegion = (env.GATEHOUSE_DEFAULT_REGION || 'us') as Region;
  if (!REGIONS.includes(defaultRegion)) {
    throw new ConfigError('GATEHOUSE_DEFAULT_REGION', `must be one of ${REGIONS.join(', ')}`);
  }

  const reconcileIntervalSeconds = int(
    env,
    'GATEHOUSE_RECONCILE_INTERVAL',
    0,
    0,
    RECONCILE_INTERVAL_MAX_SECONDS,
  );
  if (reconcileIntervalSeconds > 0 && !stripeSecretKey) {
    throw new ConfigError(
      'GATEHOUSE_RECONCILE_INTERVAL',
      'needs STRIPE_SECRET_KEY: the reconciler lists Stripe’s Events API with it (set the key, or 0 for no reconciler)',
    );
  }

  return {
    port,
    host: env.HOST || '0.0.0.0',
    databaseUrl,
    dataDir: path.resolve(env.GATEHOUSE_DATA_DIR || '.gatehouse'),
    kafkaBrokers,
    kafkaTopic: env.GATEHOUSE_KAFKA_TOPIC || 'gatehouse.ledger.v1',
    regions: env.GATEHOUSE_REGIONS ? regions('GATEHOUSE_REGIONS', env.GATEHOUSE_REGIONS) : undefined,
    defaultRegion,
    stripeSecretKey,
    stripeApiBase,
    stripeWebhookSecrets: secrets,
    stripeWebhookToleranceSeconds: tolerance,
    stripePlatformCommunityId: env.STRIPE_PLATFORM_COMMUNITY_ID || undefined,
    jwtSecret,
    jwtSecretGenerated,
    publicUrl: publicUrlRaw.replace(/\/$/, ''),
    publicUrlFromListener: !env.GATEHOUSE_PUBLIC_URL && port === 0,
    production,
    logLevel,
    reconcileIntervalSeconds,
    projector: projector === 'on',
    shutdownGraceSeconds: int(env, 'GATEHOUSE_SHUTDOWN_GRACE_SECONDS', 15, 0, 3600),
    webhookTimeoutSeconds: int(env, 'GATEHOUSE_WEBHOOK_TIMEOUT_SECONDS', 10, 1, 120),
    keepAliveSeconds: int(env, 'GATEHOUSE_KEEP_ALIVE_SECONDS', 65, 1, 3600),
    databaseTimeoutSeconds: int(env, 'GATEHOUSE_DATABASE_TIMEOUT_SECONDS', 30, 0, 3600),
  };
}
