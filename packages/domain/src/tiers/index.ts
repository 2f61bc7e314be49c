export * from './tiers.events';
export * from './tier-change';
export * from './upsell';
export * from './price-migration';
