export * from './commerce.events';
export * from './promo-code.decide';
export * from './invitation.decide';
export * from './checkout.decide';
export * from './price-words';
