export * from './errors';
export * from './time';
export * from './catalog/catalog.events';
export * from './catalog/catalog.evolve';
export * from './catalog/catalog.decide';
export * from './catalog/frequency';
