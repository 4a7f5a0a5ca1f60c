export { buildApp, type AppDeps } from './app.js';
export { createCommunicator, SERVICE, VERSION, type Communicator } from './communicator.js';
export { loadConfig, type Config } from './config.js';
