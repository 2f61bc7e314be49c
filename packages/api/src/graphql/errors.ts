import { randomUUID } from 'node:crypto';
import type { GraphQLFormattedError } from 'graphql';
import { unwrapResolverError } from '@apollo/server/errors';
import { ArgumentValidationError } from 'type-graphql';
import type { Logger } from 'pino';

// Errors are mapped to stable codes once, here. Anything without a public code is masked and logged
// with a correlation id the caller can quote.

export const PUBLIC_CODES = new Set([
  'BAD_USER_INPUT',
  'UNAUTHENTICATED',
  'FORBIDDEN',
  'NOT_FOUND',
  'CONFLICT',
  'STRIPE_ERROR',
  'NOT_IMPLEMENTED',
]);

// Apollo's own request-level codes pass through untouched.
const APOLLO_CODES = new Set([
  'GRAPHQL_PARSE_FAILED',
  'GRAPHQL_VALIDATION_FAILED',
  'BAD_REQUEST',
  'PERSISTED_QUERY_NOT_FOUND',
  'PERSISTED_QUERY_NOT_SUPPORTED',
  'OPERATION_RESOLUTION_FAILURE',
]);

/** An error with a stable public code (the domain's DomainError has the same shape). */
export class GatehouseError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly fields?: Record<string, string>,
  ) {
    super(message);
    this.name = 'GatehouseError';
  }
}

type Coded = { code?: unknown; message?: unknown; fields?: unknown };

export function createFormatError(log: Logger) {
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    const original = unwrapResolverError(error);
    if (original instanceof ArgumentValidationError) {
      const fields: Record<string, string> = {};
      const walk = (errs: typeof original.extensions.validationErrors, prefix: string) => {
        for (const e of errs) {
          const key = prefix ? `${prefix}.${e.property}` : e.property;
          if (e.constraints) fields[key] = Object.values(e.constraints).join('; ');
          if (e.children?.length) walk(e.children, key);
        }
      };
      walk(original.extensions.validationErrors, '');
      return {
        message: `Invalid input: ${Object.entries(fields)
          .map(([k, v]) => `${k}: ${v}`)
          .join('; ')}`,
        path: formatted.path,
        extensions: { code: 'BAD_USER_INPUT', fields },
      };
    }
    const coded = (original ?? {}) as Coded;
    if (typeof coded.code === 'string' && PUBLIC_CODES.has(coded.code)) {
      return {
        message: String(coded.message ?? formatted.message),
        path: formatted.path,
        locations: formatted.locations,
        extensions: { code: coded.code, ...(coded.fields ? { fields: coded.fields } : {}) },
      };
    }
    const apolloCode = formatted.extensions?.code;
    if (typeof apolloCode === 'string' && (APOLLO_CODES.has(apolloCode) || PUBLIC_CODES.has(apolloCode))) {
      const { stacktrace: _s, ...extensions } = formatted.extensions ?? {};
      return { ...formatted, extensions };
    }
    const correlationId = randomUUID();
    log.error(
      { err: original, correlationId, path: formatted.path },
      'unexpected error in a GraphQL request',
    );
    return {
      message: `Internal error (correlation id ${correlationId})`,
      path: formatted.path,
      extensions: { code: 'INTERNAL_SERVER_ERROR', correlationId },
    };
  };
}
