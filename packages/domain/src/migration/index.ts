export * from './migration.events';
export * from './import.decide';
