export { buildApp, SERVICE_NAME, SERVICE_VERSION, type GuesserDeps } from './app.js';
export { loadConfig, type GuesserConfig } from './config.js';
export { GUESSER_PROMPT } from './guesser-prompt.js';
export { contextSchema } from './context-routes.js';
