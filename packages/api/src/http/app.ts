import type { IncomingMessage, ServerResponse } from 'node:http';
import { ApolloServer } from '@apollo/server';
import { expressMiddleware } from '@as-integrations/express5';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { ApolloArmor } from '@escape.tech/graphql-armor';
import express, { type Express, type Request, type Response } from 'express';
import type { GraphQLSchema } from 'graphql';
import type { Logger } from 'pino';
import { withDeadline } from '@gatehouse/ledger';
import { AuthError, callerFromAuthorization } from '../auth/auth';
import { createFormatError } from '../graphql/errors';
import type { GatehouseServices, GraphQLContext } from '../graphql/services';
import type { Metrics } from './metrics';
import { requestIdOf, trackRequest, webhookEndpoint, type WebhookIngest } from './webhook-endpoint';

export type { WebhookIngest } from './webhook-endpoint';

export type ReadinessCheck = { name: string; check: () => Promise<void> };

export type AppOptions = {
  schema: GraphQLSchema;
  services: GatehouseServices;
  log: Logger;
  metrics: Metrics;
  jwtSecret: string;
  production: boolean;
  readiness: ReadinessCheck[];
  /** How long `/readyz` waits for each check before reporting it failed (default 3 s). */
  readinessCheckMs?: number;
  ingestWebhook?: WebhookIngest;
  /** Extra routes (invitation pages and the like), mounted after the core ones. */
  extraRoutes?: (app: Express) => void;
  graphqlBodyLimit?: string;
  webhookBodyLimitBytes?: number;
};

export type App = {
  /** Every route but the Stripe webhook. */
  app: Express;
  /** What the HTTP server listens with: the Stripe webhook endpoint, then `app`. */
  listener: (req: IncomingMessage, res: ServerResponse) => void;
  apollo: ApolloServer<GraphQLContext>;
};

export async function createApp(opts: AppOptions): Promise<App> {
  const { log, metrics } = opts;
  const app = express();
  app.disable('x-powered-by');
  // Nothing here is revalidated by a cache (GraphQL POSTs, no-store pages, probes): an ETag per
  // response would only cost a hash of its body.
  app.set('etag', false);
  app.set('trust proxy', false);

  // One access-log line per request (not for probes) and the HTTP metrics.
  app.use((req: Request & { id?: string }, res, next) => {
    const id = requestIdOf(req);
    req.id = id;
    res.setHeader('x-request-id', id);
    const probe = req.url === '/healthz' || req.url === '/metrics';
    trackRequest(req, res, id, routeLabel(req.path), log, metrics, { logged: !probe });
    next();
  });

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  const checkMs = opts.readinessCheckMs ?? 3_000;
  app.get('/readyz', async (_req, res) => {
    const results = await Promise.all(
      opts.readiness.map(async (r) => {
        try {
          // A stalled database answers nothing: the probe says so rather than hanging with it.
          await withDeadline(r.check(), checkMs);
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

  // The raw bytes are what Stripe signed: the webhook is answered before Express or any JSON parser.
  const webhook = webhookEndpoint({
    ingest: opts.ingestWebhook,
    log,
    metrics,
    bodyLimitBytes: opts.webhookBodyLimitBytes ?? 1024 * 1024,
  });
  const listener = (req: IncomingMessage, res: ServerResponse) => {
    if (!webhook(req, res)) void app(req, res);
  };
  return { app, listener, apollo };
}

function routeLabel(path: string): string {
  if (path.startsWith('/graphql')) return '/graphql';
  if (path.startsWith('/webhooks/stripe')) return '/webhooks/stripe';
  if (path.startsWith('/join/')) return '/join/:token';
  if (path.startsWith('/upsell/')) return '/upsell/:communityId';
  if (['/healthz', '/readyz', '/metrics'].includes(path)) return path;
  return 'other';
}
