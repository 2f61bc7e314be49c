import { randomUUID } from 'node:crypto';
import { ApolloServer } from '@apollo/server';
import { expressMiddleware } from '@as-integrations/express5';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { ApolloArmor } from '@escape.tech/graphql-armor';
import express, { type Express, type Request, type Response } from 'express';
import type { GraphQLSchema } from 'graphql';
import type { Logger } from 'pino';
import { AuthError, callerFromAuthorization } from '../auth/auth';
import { createFormatError } from '../graphql/errors';
import type { GatehouseServices, GraphQLContext } from '../graphql/services';
import type { Metrics } from './metrics';

export type ReadinessCheck = { name: string; check: () => Promise<void> };

/** The Stripe webhook ingestor (from @gatehouse/stripe), framework-free. */
export type WebhookIngest = (
  raw: Buffer,
  signature: string | undefined,
) => Promise<{ status: number; body: unknown }>;

export type AppOptions = {
  schema: GraphQLSchema;
  services: GatehouseServices;
  log: Logger;
  metrics: Metrics;
  jwtSecret: string;
  production: boolean;
  readiness: ReadinessCheck[];
  ingestWebhook?: WebhookIngest;
  /** Extra routes (invitation pages and the like), mounted after the core ones. */
  extraRoutes?: (app: Express) => void;
  graphqlBodyLimit?: string;
  webhookBodyLimit?: string;
};

export type App = { app: Express; apollo: ApolloServer<GraphQLContext> };

export async function createApp(opts: AppOptions): Promise<App> {
  const { log, metrics } = opts;
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', false);

  // One access-log line per request, without a child logger per request (the hot path: every
  // GraphQL call and webhook); headers are never logged — they carry tokens and Stripe signatures.
  app.use((req: Request & { id?: string }, res, next) => {
    const given = req.headers['x-request-id'];
    const id = typeof given === 'string' && /^[A-Za-z0-9._-]{1,100}$/.test(given) ? given : randomUUID();
    req.id = id;
    res.setHeader('x-request-id', id);
    if (req.url === '/healthz' || req.url === '/metrics') return next();
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const level = res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'info';
      if (!log.isLevelEnabled(level)) return;
      const responseTime = Number(process.hrtime.bigint() - started) / 1e6;
      log[level](
        { req: { id, method: req.method, url: req.url }, res: { statusCode: res.statusCode }, responseTime },
        'request completed',
      );
    });
    next();
  });
  app.use((req, res, next) => {
    const route = routeLabel(req.path);
    const end = metrics.httpDuration.startTimer({ route });
    res.on('finish', () => {
      end();
      metrics.httpRequests.inc({ route, status: String(res.statusCode) });
    });
    next();
  });

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  app.get('/readyz', async (_req, res) => {
    const results = await Promise.all(
      opts.readiness.map(async (r) => {
        try {
          await r.check();
          return { name: r.name, ok: true as const };
        } catch (err) {
          return { name: r.name, ok: false as const, error: (err as Error).message };
        }
      }),
    );
    const ready = results.every((r) => r.ok);
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not ready', checks: results });
  });

  app.get('/metrics', async (_req, res) => {
    res.setHeader('content-type', metrics.registry.contentType);
    res.send(await metrics.registry.metrics());
  });

  // The raw bytes are what Stripe signed: this route is mounted before any JSON parser.
  app.post(
    '/webhooks/stripe',
    express.raw({ type: () => true, limit: opts.webhookBodyLimit ?? '1mb' }),
    async (req, res) => {
      if (!opts.ingestWebhook) {
        res.status(503).json({ error: 'webhooks are not configured: set STRIPE_WEBHOOK_SECRET' });
        return;
      }
      const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const result = await opts.ingestWebhook(raw, req.header('stripe-signature') ?? undefined);
      metrics.webhooks.inc({ outcome: String(result.status) });
      res.status(result.status).json(result.body);
    },
  );

  // Abuse limits are checked during validation, before any resolver runs.
  const armor = new ApolloArmor({
    maxDepth: { n: 12 },
    maxAliases: { n: 20 },
    // The token limit is the parser's own (below), which answers 400 like any parse failure.
    maxTokens: { enabled: false },
    maxDirectives: { n: 20 },
    costLimit: { maxCost: 8000, objectCost: 2, scalarCost: 1, depthCostFactor: 1.5 },
    blockFieldSuggestion: { enabled: opts.production },
  });
  const protection = armor.protect();
  const apollo = new ApolloServer<GraphQLContext>({
    schema: opts.schema,
    introspection: !opts.production,
    csrfPrevention: true,
    // The process owns shutdown order (HTTP, projector, ledger, database); Apollo must not re-raise signals.
    stopOnTerminationSignals: false,
    allowBatchedHttpRequests: false,
    includeStacktraceInErrorResponses: false,
    validationRules: protection.validationRules,
    parseOptions: { maxTokens: 3000 },
    formatError: createFormatError(log),
    plugins: [...protection.plugins, ...(opts.production ? [ApolloServerPluginLandingPageDisabled()] : [])],
  });
  await apollo.start();

  app.use(
    '/graphql',
    express.json({ limit: opts.graphqlBodyLimit ?? '256kb' }),
    expressMiddleware(apollo, {
      context: async ({ req, res }) => {
        let caller = null;
        try {
          caller = callerFromAuthorization(opts.jwtSecret, req.headers.authorization);
        } catch (err) {
          if (err instanceof AuthError) {
            // Apollo turns a thrown context error into a 500 unless it carries its own status.
            const { GraphQLError } = await import('graphql');
            throw new GraphQLError(err.message, { extensions: { code: err.code, http: { status: 401 } } });
          }
          throw err;
        }
        return {
          caller,
          requestId: String((res as Response & { req: Request & { id?: unknown } }).req.id ?? ''),
          services: opts.services,
        };
      },
    }),
  );

  opts.extraRoutes?.(app);

  app.use((_req, res) => {
    res.status(404).json({ error: 'not found' });
  });
  app.use(
    (
      err: Error & { status?: number; type?: string },
      req: Request,
      res: Response,
      _next: express.NextFunction,
    ) => {
      const status = err.status && err.status >= 400 && err.status < 500 ? err.status : 500;
      if (status === 500) log.error({ err, url: req.url }, 'unhandled HTTP error');
      res.status(status).json({
        error: status === 413 ? 'request body too large' : status === 500 ? 'internal error' : err.message,
      });
    },
  );

  return { app, apollo };
}

function routeLabel(path: string): string {
  if (path.startsWith('/graphql')) return '/graphql';
  if (path.startsWith('/webhooks/stripe')) return '/webhooks/stripe';
  if (path.startsWith('/join/')) return '/join/:token';
  if (path.startsWith('/upsell/')) return '/upsell/:communityId';
  if (['/healthz', '/readyz', '/metrics'].includes(path)) return path;
  return 'other';
}
