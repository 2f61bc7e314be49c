export * from './stripe-ids';
export * from './stripe-objects';
export * from './stripe-events';
export * from './sign';
export * from './memory-ledger';
export * from './fake-stripe/fake-stripe';
export * from './stripe-errors';
