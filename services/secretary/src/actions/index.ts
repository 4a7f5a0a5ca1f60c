export * from './action-policy.js';
export * from './action-hooks.js';
export * from './action-routes.js';
export * from './communicator-client.js';
export * from './execution-repository.js';
export * from './executors.js';
export * from './jira-client.js';
export * from './worker.js';
