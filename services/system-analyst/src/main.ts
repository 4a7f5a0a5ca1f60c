import { runLlmService } from '@workemon/llm';
import { ANALYST_SPEC } from './app.js';
import { loadConfig } from './config.js';

runLlmService(ANALYST_SPEC, loadConfig);
