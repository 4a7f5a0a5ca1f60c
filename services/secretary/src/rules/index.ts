export * from './rules.js';
export * from './rule-repository.js';
export * from './rule-routes.js';
