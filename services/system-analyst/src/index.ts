export { buildApp, SERVICE, SERVICE_VERSION, type AnalystDeps } from './app.js';
export { loadConfig, type AnalystConfig } from './config.js';
export { ANALYST_PROMPT } from './analyst-prompt.js';
export { analyticsSchema } from './analytics-routes.js';
