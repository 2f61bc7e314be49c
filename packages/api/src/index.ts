export * from './config';
export * from './auth/auth';
export * from './embedded-postgres';
export * from './graphql/schema';
export * from './graphql/services';
export * from './graphql/errors';
export * from './http/app';
export * from './http/metrics';
