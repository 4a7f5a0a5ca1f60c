export { buildApp, SERVICE, SERVICE_VERSION, type GuesserDeps } from './app.js';
export { loadConfig, type GuesserConfig } from './config.js';
export { GUESSER_PROMPT } from './guesser-prompt.js';
export { contextSchema, classifiedContextSchema } from './context-routes.js';
export {
  DEFAULT_CATEGORIES_TEXT,
  loadCategories,
  parseCategories,
  categoriesPromptSection,
  type Category,
} from './categories.js';
